"""The answer being made, and what each key does to it.

One key map for every format (2 to 8 candidates, any rating questions), kept
apart from the page so it is tested without a browser and the page only
draws what this module decides:

- letters ``A``-``H`` choose that candidate (ranking mode: append it to the
  ranking; the last one left is added by itself); with two candidates ``T``
  is "both equally good" and ``N`` "both bad" (the choice values
  ``tie_good``/``tie_bad``, ``annotation.TIES``); ``X`` is Can't decide;
- digits answer the *current* question, which then moves to the next
  unanswered one: after ``X`` the reason (1-3), then the study's rating
  questions in order (``rmgap_annot.questions``: RMGAP's naturalness 1-5; a
  question about each response is asked once per letter); a digit picks the
  scale's level in the order shown, so ``1`` is "Yes" on a yes/no scale;
- ``Enter`` submits once the required answers are given; ``Backspace``
  removes the last ranked candidate; ``U`` back, ``S`` skip, ``Q`` flag
  (then a digit for the reason), ``Z`` then a letter opens a response full
  width, ``Escape`` closes what is open, ``?`` toggles the key map.

A draft holds display letters, never response keys: it is server-side, and
the letters of one (annotator, item) never change (``displayed_order``).
``submission`` turns a finished draft into ``annotation.submit_label``'s
arguments (letters to keys), and ``Draft.from_label`` goes back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from typing import Any

from rmgap_annot.annotation import FLAG_REASONS, NATURALNESS, REASONS, TIES
from rmgap_annot.questions import PRESETS, Question

LETTERS = "ABCDEFGH"
CANT_DECIDE = "X"
TIE_KEYS = {"T": "tie_good", "N": "tie_bad"}  # two candidates only
# What a study asks when the caller names nothing: RMGAP's naturalness (as before questions were configurable).
DEFAULT_ASKS: tuple[Question, ...] = PRESETS["rmgap"]
REASON_KEYS = tuple(REASONS)  # digits 1..3
NATURALNESS_LEVELS = len(NATURALNESS)
KEY_HELP = (
    ("A-H", "choose that response (ranking: next place)"),
    ("T / N", "two responses: both equally good / both bad"),
    ("X", "Can't decide"),
    ("1-9", "answer the marked question (the level in the order shown)"),
    ("Enter", "submit (in the comment: Ctrl+Enter)"),
    ("Backspace", "ranking: remove the last place"),
    ("U", "back to your previous label"),
    ("S", "skip this item"),
    ("Q", "flag this item, then 1-3 for the reason"),
    ("Z, then a letter", "open that response full width (Esc closes)"),
    ("?", "show or hide this key map"),
)


@dataclass(frozen=True)
class Draft:
    """A half-made answer: what the annotator chose so far on one item."""

    pick: str | None = None  # a display letter, "X" for Can't decide, or a tie value (two candidates)
    reason: str | None = None  # one of REASON_KEYS, with Can't decide
    naturalness: int | None = None
    ranking: tuple[str, ...] = field(default_factory=tuple)  # display letters, best first
    comment: str = ""
    current: str | None = None  # the slot digits answer (see ``slots``); None: the first unanswered
    # The study's other rating questions: {name: value} about the prompt, {name: {letter: value}} per response.
    ratings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self) | {"ranking": list(self.ranking)}

    @classmethod
    def from_json(cls, data: dict | None) -> Draft:
        data = data or {}
        nat = data.get("naturalness")
        current = data.get("current")
        return cls(
            pick=data.get("pick") if isinstance(data.get("pick"), str) else None,
            reason=data.get("reason") if data.get("reason") in REASON_KEYS else None,
            naturalness=nat if isinstance(nat, int) and 1 <= nat <= NATURALNESS_LEVELS else None,
            ranking=tuple(x for x in data.get("ranking") or () if isinstance(x, str)),
            comment=data.get("comment") if isinstance(data.get("comment"), str) else "",
            current=current if isinstance(current, str) else None,
            ratings=_ratings_from_json(data.get("ratings")),
        )

    @classmethod
    def from_label(cls, label: Any, keys: tuple[str, ...]) -> Draft:
        """The draft of a label being corrected (``annotation.LabelView``), in this annotator's letters."""
        letter = {k: LETTERS[i] for i, k in enumerate(keys)}
        ratings: dict[str, Any] = {}
        for name, value in (label.ratings or {}).items():
            if isinstance(value, dict):
                ratings[name] = {letter[k]: v for k, v in value.items() if k in letter}
            else:
                ratings[name] = value
        choice = label.choice_key
        return cls(
            pick=CANT_DECIDE if choice is None else (choice if choice in TIES else letter.get(choice)),
            reason=label.reason,
            naturalness=label.naturalness,
            ranking=tuple(letter[k] for k in label.ranking or () if k in letter),
            comment=label.comment or "",
            ratings=ratings,
        )


def _is_value(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ratings_from_json(data: object) -> dict[str, Any]:
    """Only well-shaped answers survive a stored draft: {name: int} or {name: {letter: int}}."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for name, value in data.items():
        if not isinstance(name, str):
            continue
        if _is_value(value):
            out[name] = value
        elif isinstance(value, dict):
            per = {x: v for x, v in value.items() if x in LETTERS and _is_value(v)}
            if per:
                out[name] = per
    return out


def slots(draft: Draft, *, asks: tuple[Question, ...] = DEFAULT_ASKS, n_candidates: int = 0) -> list[str]:
    """The answers digits can give, in order: the reason (only after Can't decide), then each
    question; a question about each response is one slot per letter (``name:A``)."""
    out = ["reason"] if draft.pick == CANT_DECIDE else []
    for q in asks:
        if q.about == "response":
            out += [f"{q.name}:{x}" for x in LETTERS[:n_candidates]]
        else:
            out.append(q.name)
    return out


def questions(draft: Draft) -> list[str]:
    """The slots of RMGAP's default questions (kept for callers that ask nothing else)."""
    return slots(draft)


def slot_value(draft: Draft, slot: str) -> Any:
    """The answer in one slot, or None."""
    if slot == "reason":
        return draft.reason
    if slot == "naturalness":
        return draft.naturalness
    name, _, letter = slot.partition(":")
    value = draft.ratings.get(name)
    if letter:
        return value.get(letter) if isinstance(value, dict) else None
    return value if _is_value(value) else None


def with_answer(draft: Draft, slot: str, value: Any) -> Draft:
    """The draft with one slot answered (the current slot does not move: see ``after_answer``)."""
    if slot == "reason":
        return replace(draft, reason=value)
    if slot == "naturalness":
        return replace(draft, naturalness=value)
    name, _, letter = slot.partition(":")
    ratings = dict(draft.ratings)
    if letter:
        per = dict(ratings.get(name)) if isinstance(ratings.get(name), dict) else {}
        per[letter] = value
        ratings[name] = per
    else:
        ratings[name] = value
    return replace(draft, ratings=ratings)


def _answered(draft: Draft, slot: str) -> bool:
    return slot_value(draft, slot) is not None


def current_question(draft: Draft, *, asks: tuple[Question, ...] = DEFAULT_ASKS, n_candidates: int = 0) -> str | None:
    """The slot the next digit answers (the one the page marks); None when nothing is asked."""
    qs = slots(draft, asks=asks, n_candidates=n_candidates)
    if not qs:
        return None
    if draft.current in qs:
        return draft.current
    return next((q for q in qs if not _answered(draft, q)), qs[-1])


def after_answer(draft: Draft, question: str, *, asks: tuple[Question, ...] = DEFAULT_ASKS,
                 n_candidates: int = 0) -> Draft:
    """Move the current slot on to the next unanswered one (or stay when all are answered)."""
    qs = slots(draft, asks=asks, n_candidates=n_candidates)
    rest = qs[qs.index(question) + 1:] + qs[: qs.index(question)] if question in qs else qs
    nxt = next((q for q in rest if not _answered(draft, q)), question if question in qs else None)
    return replace(draft, current=nxt)


def missing(draft: Draft, *, mode: str, n_candidates: int, asks: tuple[Question, ...] = DEFAULT_ASKS) -> str | None:
    """What still has to be answered before Submit, in words; None when the answer is complete."""
    if draft.pick == CANT_DECIDE:
        if draft.reason is None:
            return "Say why you can't decide (1-3)."
    elif draft.pick in TIES and n_candidates == 2:  # noqa: PLR2004 - ties exist for two candidates only
        pass
    elif mode == "ranking":
        if len(draft.ranking) != n_candidates:
            return f"Rank all {n_candidates} responses (letters in order), or press X for Can't decide."
    elif draft.pick not in tuple(LETTERS[:n_candidates]):  # nothing yet, or a stale value (a tie on more than two)
        return "Choose the response that fits best (a letter), or X for Can't decide."
    for q in asks:
        if not q.required:
            continue
        if q.name == "naturalness":
            if draft.naturalness is None:
                return "Rate how natural the request is (1-5)."
        elif q.about == "response":
            left = [x for x in LETTERS[:n_candidates] if slot_value(draft, f"{q.name}:{x}") is None]
            if left:
                return f"Answer for every response: {q.text} (still open: {', '.join(left)})"
        elif slot_value(draft, q.name) is None:
            return f"Answer: {q.text}"
    return None


def choose(draft: Draft, letter: str, *, mode: str, n_candidates: int, asks: tuple[Question, ...] = DEFAULT_ASKS) -> Draft:
    """A candidate chosen by key or click: the pick, or the next place of the ranking (or a tie, of two)."""
    letters = LETTERS[:n_candidates]
    if letter == CANT_DECIDE:
        return after_answer(replace(draft, pick=CANT_DECIDE, ranking=()), "pick", asks=asks, n_candidates=n_candidates)
    if letter in TIES and n_candidates == 2:  # noqa: PLR2004 - ties exist for two candidates only
        return after_answer(replace(draft, pick=letter, reason=None, ranking=()), "pick", asks=asks,
                            n_candidates=n_candidates)
    if letter not in letters:
        return draft
    if mode != "ranking":
        return after_answer(replace(draft, pick=letter, reason=None), "pick", asks=asks, n_candidates=n_candidates)
    if letter in draft.ranking:
        return draft
    ranking = draft.ranking + (letter,)
    left = [x for x in letters if x not in ranking]
    if len(left) == 1:  # the last place has one candidate: no key needed for it
        ranking += (left[0],)
    return after_answer(replace(draft, ranking=ranking, pick=None, reason=None), "pick", asks=asks,
                        n_candidates=n_candidates)


def answer_digit(draft: Draft, digit: int, *, asks: tuple[Question, ...] = DEFAULT_ASKS, n_candidates: int = 0) -> Draft:
    """A digit answers the current slot, if it is in range; then the next one is current.

    The digit is the level's position as shown (1 = the first level), so a
    1-5 scale reads as its values and a yes/no scale as 1 = Yes, 2 = No.
    """
    slot = current_question(draft, asks=asks, n_candidates=n_candidates)
    if slot is None:
        return draft
    if slot == "reason":
        values: tuple = REASON_KEYS
    else:
        question = next((q for q in asks if q.name == slot.partition(":")[0]), None)
        if question is None:
            return draft
        values = question.values
    if not 1 <= digit <= len(values):
        return draft
    return after_answer(with_answer(draft, slot, values[digit - 1]), slot, asks=asks, n_candidates=n_candidates)


@dataclass(frozen=True)
class KeyResult:
    draft: Draft
    action: str | None = None  # submit | back | skip | flag:<reason> | zoom:<letter> | help | close | pending:<what>


def apply_key(draft: Draft, key: str, *, mode: str, n_candidates: int, pending: str | None = None,
              asks: tuple[Question, ...] = DEFAULT_ASKS) -> KeyResult:
    """What one key press does. ``pending`` is "flag" after Q and "zoom" after Z (the next key completes it);
    ``asks`` are the study's rating questions (digits answer them)."""
    letters = LETTERS[:n_candidates]
    if key == "Escape":
        return KeyResult(draft, "close")
    if pending == "zoom":
        return KeyResult(draft, f"zoom:{key}" if key in letters else "close")
    if pending == "flag":
        if key.isdigit() and 1 <= int(key) <= len(FLAG_REASONS):
            return KeyResult(draft, f"flag:{list(FLAG_REASONS)[int(key) - 1]}")
        return KeyResult(draft, "close")
    if key in letters or key == CANT_DECIDE:
        return KeyResult(choose(draft, key, mode=mode, n_candidates=n_candidates, asks=asks))
    if n_candidates == 2 and key in TIE_KEYS:  # noqa: PLR2004 - the two-candidate keys
        return KeyResult(choose(draft, TIE_KEYS[key], mode=mode, n_candidates=n_candidates, asks=asks))
    if key.isdigit():
        return KeyResult(answer_digit(draft, int(key), asks=asks, n_candidates=n_candidates))
    if key == "Backspace" and mode == "ranking" and draft.ranking:
        # An auto-filled last place goes with the one before it, so Backspace undoes one key press.
        drop = 2 if len(draft.ranking) == n_candidates else 1
        return KeyResult(replace(draft, ranking=draft.ranking[:-drop]))
    if key in ("Enter", "Ctrl+Enter"):
        return KeyResult(draft, "submit")
    actions = {"U": "back", "S": "skip", "Q": "pending:flag", "Z": "pending:zoom", "?": "help"}
    return KeyResult(draft, actions.get(key))


def with_mode(draft: Draft, *, mode: str, n_candidates: int) -> Draft:
    """A draft carried into another study mode: the pick survives as first place and back.

    Returns the draft unchanged when there is nothing to carry.
    """
    if mode == "ranking" and draft.pick not in (None, CANT_DECIDE) and not draft.ranking:
        return choose(replace(draft, pick=None), draft.pick, mode="ranking", n_candidates=n_candidates)
    if mode == "pick" and draft.ranking and draft.pick is None:
        return replace(draft, pick=draft.ranking[0], ranking=())
    return draft


def submission(draft: Draft, *, keys: tuple[str, ...], mode: str, asks: tuple[Question, ...] = DEFAULT_ASKS) -> dict:
    """``annotation.submit_label``'s answer arguments from a finished draft: letters become response keys.

    Only the study's current questions are sent (a draft may still hold an
    answer to a question the researcher has since removed).
    """
    key_of = {LETTERS[i]: k for i, k in enumerate(keys)}
    cant = draft.pick == CANT_DECIDE
    tie = draft.pick in TIES and len(keys) == 2  # noqa: PLR2004 - ties exist for two candidates only
    ranking = None if cant or tie or mode != "ranking" else [key_of[x] for x in draft.ranking]
    if cant:
        choice = None
    elif tie:
        choice = draft.pick
    else:
        choice = ranking[0] if ranking else key_of.get(draft.pick)
    ratings: dict[str, Any] = {}
    asked = {q.name: q for q in asks}
    for name, value in draft.ratings.items():
        q = asked.get(name)
        if q is None or name == "naturalness":
            continue
        if q.about == "response" and isinstance(value, dict):
            ratings[name] = {key_of[x]: v for x, v in value.items() if x in key_of}
        elif q.about == "prompt" and _is_value(value):
            ratings[name] = value
    return {
        "choice_key": choice,
        "reason": draft.reason if cant else None,
        "ranking": ranking,
        "naturalness": draft.naturalness if "naturalness" in asked else None,
        "ratings": ratings or None,
        "comment": draft.comment,
    }
