"""The answer being made, and what each key does to it.

One key map for every format (2 to 8 candidates, any rating questions), kept
apart from the page so it is tested without a browser and the page only
draws what this module decides:

- letters ``A``-``H`` choose that candidate (ranking mode: append it to the
  ranking; the last one left is added by itself); with two candidates ``T``
  is "both equally good" and ``N`` "both bad"; ``X`` is Can't decide;
- digits answer the *current* question, which then moves to the next
  unanswered one (after ``X`` the reason, 1-3; then naturalness, 1-5);
- ``Enter`` submits once the required answers are given; ``Backspace``
  removes the last ranked candidate; ``U`` back, ``S`` skip, ``Q`` flag
  (then a digit for the reason), ``Z`` then a letter opens a response full
  width, ``Escape`` closes what is open, ``?`` toggles the key map.

A draft holds display letters, never response keys: it is server-side, and
the letters of one (annotator, item) never change (``displayed_order``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from rmgap_annot.annotation import FLAG_REASONS, NATURALNESS, REASONS

LETTERS = "ABCDEFGH"
CANT_DECIDE = "X"
REASON_KEYS = tuple(REASONS)  # digits 1..3
NATURALNESS_LEVELS = len(NATURALNESS)
KEY_HELP = (
    ("A-H", "choose that response (ranking: next place)"),
    ("T / N", "two responses: both equally good / both bad"),
    ("X", "Can't decide"),
    ("1-5", "answer the marked question"),
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

    pick: str | None = None  # a display letter, or "X" for Can't decide
    reason: str | None = None  # one of REASON_KEYS, with Can't decide
    naturalness: int | None = None
    ranking: tuple[str, ...] = field(default_factory=tuple)  # display letters, best first
    comment: str = ""
    current: str | None = None  # the question digits answer; None: the first unanswered

    def to_json(self) -> dict:
        return asdict(self) | {"ranking": list(self.ranking)}

    @classmethod
    def from_json(cls, data: dict | None) -> Draft:
        data = data or {}
        nat = data.get("naturalness")
        return cls(
            pick=data.get("pick") if isinstance(data.get("pick"), str) else None,
            reason=data.get("reason") if data.get("reason") in REASON_KEYS else None,
            naturalness=nat if isinstance(nat, int) and 1 <= nat <= NATURALNESS_LEVELS else None,
            ranking=tuple(x for x in data.get("ranking") or () if isinstance(x, str)),
            comment=data.get("comment") if isinstance(data.get("comment"), str) else "",
            current=data.get("current") if data.get("current") in ("reason", "naturalness") else None,
        )


def questions(draft: Draft) -> list[str]:
    """The questions digits can answer, in order (the reason only after Can't decide)."""
    return (["reason"] if draft.pick == CANT_DECIDE else []) + ["naturalness"]


def _answered(draft: Draft, question: str) -> bool:
    return getattr(draft, question) is not None


def current_question(draft: Draft) -> str:
    """The question the next digit answers (the one the page marks)."""
    qs = questions(draft)
    if draft.current in qs:
        return draft.current
    return next((q for q in qs if not _answered(draft, q)), qs[-1])


def after_answer(draft: Draft, question: str) -> Draft:
    """Move the current question on to the next unanswered one (or stay when all are answered)."""
    qs = questions(draft)
    rest = qs[qs.index(question) + 1:] + qs[: qs.index(question)] if question in qs else qs
    nxt = next((q for q in rest if not _answered(draft, q)), question if question in qs else None)
    return replace(draft, current=nxt)


def missing(draft: Draft, *, mode: str, n_candidates: int) -> str | None:
    """What still has to be answered before Submit, in words; None when the answer is complete."""
    if draft.pick == CANT_DECIDE:
        if draft.reason is None:
            return "Say why you can't decide (1-3)."
    elif mode == "ranking":
        if len(draft.ranking) != n_candidates:
            return f"Rank all {n_candidates} responses (letters in order), or press X for Can't decide."
    elif draft.pick is None:
        return "Choose the response that fits best (a letter), or X for Can't decide."
    if draft.naturalness is None:
        return "Rate how natural the request is (1-5)."
    return None


def choose(draft: Draft, letter: str, *, mode: str, n_candidates: int) -> Draft:
    """A candidate chosen by key or click: the pick, or the next place of the ranking."""
    letters = LETTERS[:n_candidates]
    if letter == CANT_DECIDE:
        return after_answer(replace(draft, pick=CANT_DECIDE, ranking=()), "pick")
    if letter not in letters:
        return draft
    if mode != "ranking":
        return after_answer(replace(draft, pick=letter, reason=None), "pick")
    if letter in draft.ranking:
        return draft
    ranking = draft.ranking + (letter,)
    left = [x for x in letters if x not in ranking]
    if len(left) == 1:  # the last place has one candidate: no key needed for it
        ranking += (left[0],)
    return after_answer(replace(draft, ranking=ranking, pick=None, reason=None), "pick")


def answer_digit(draft: Draft, digit: int) -> Draft:
    """A digit answers the current question, if it is in range; then the next one is current."""
    question = current_question(draft)
    if question == "reason" and 1 <= digit <= len(REASON_KEYS):
        return after_answer(replace(draft, reason=REASON_KEYS[digit - 1]), "reason")
    if question == "naturalness" and 1 <= digit <= NATURALNESS_LEVELS:
        return after_answer(replace(draft, naturalness=digit), "naturalness")
    return draft


@dataclass(frozen=True)
class KeyResult:
    draft: Draft
    action: str | None = None  # submit | back | skip | flag:<reason> | zoom:<letter> | help | close | pending:<what>


def apply_key(draft: Draft, key: str, *, mode: str, n_candidates: int, pending: str | None = None) -> KeyResult:
    """What one key press does. ``pending`` is "flag" after Q and "zoom" after Z (the next key completes it)."""
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
        return KeyResult(choose(draft, key, mode=mode, n_candidates=n_candidates))
    if n_candidates == 2 and key in ("T", "N"):  # noqa: PLR2004 - the two-candidate keys
        reason = "several_fit" if key == "T" else "none_fits"
        return KeyResult(after_answer(replace(draft, pick=CANT_DECIDE, reason=reason, ranking=()), "reason"))
    if key.isdigit():
        return KeyResult(answer_digit(draft, int(key)))
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
