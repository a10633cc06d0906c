"""Show an item blinded, store a label, revise it.

What an annotator's browser receives is built here and only here
(``item_for_annotator``), so blinding is one function to audit: the prompt
and the four response texts under display letters. The winner, the style
profiles, the record's ``models``/``source`` and everyone's labels stay on
the server; even the response keys are kept out of what a page displays.

The order of the four responses is shuffled per (annotator, item) from a
hash of both ids: stable across refreshes and devices, different between
annotators (so position bias averages out), and stored with every label.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from rmgap_annot.assignment import _study_for_update, get_study, release_lease
from rmgap_annot.db import session_scope
from rmgap_annot.db_guard import ensure_unchanged
from rmgap_annot.models import (
    AnnotatorSetting,
    Benchmark,
    Draft,
    Flag,
    GuidelinesConfirmation,
    Item,
    Label,
    Lease,
    Record,
    Response,
    Skip,
    Study,
    User,
    utcnow,
)
from rmgap_annot.studies import default_study, ensure_member, label_refusal

LETTERS = ("A", "B", "C", "D", "E", "F", "G", "H")  # up to formats.common.MAX_CANDIDATES
# A two-candidate item may be answered with a tie; each benchmark maps it to its own rule.
TIES = {"tie_good": "Both equally good", "tie_bad": "Both bad"}
REASONS = {
    "none_fits": "None of the responses fits",
    "several_fit": "Several fit equally well",
    "prompt_unclear": "The prompt is unclear",
}
NATURALNESS = {
    1: "No real user would write this",
    2: "Unlikely: reads as machine-written",
    3: "Plausible, but stilted or odd",
    4: "Natural, with minor oddities",
    5: "Indistinguishable from a real request",
}
FLAG_REASONS = {
    "broken_text": "Broken text",
    "offensive": "Offensive",
    "gives_away": "Gives away the answer",
}
MAX_COMMENT_CHARS = 5_000
DEFAULT_GUIDELINES = """\
### What you do

Each item is a **request** a user wrote and **its responses** (two to
eight of them). Read the request carefully: it often asks
for a particular style (formal or casual, short or detailed, technical or
plain, neutral or opinionated, structured or free). When the item is a
conversation, the responses answer the user's **last message**; when the
user's past posts are shown, judge the fit to *this* user.

1. **Which response fits the user's request best?** Judge the fit to *this*
   user's request, style included, not which response you like best.
   If none fits, several fit equally, or the request is unclear, choose
   **Can't decide** and say why. With two responses, **Both equally good**
   (`T`) and **Both bad** (`N`) are answers too.
2. **How natural is the request?** Could a real person have written it?
   1: no real user would write this ... 5: indistinguishable from a real request.
3. Add a comment if something is off (a broken text, a request that gives
   away the answer).

The order of the responses is shuffled for you. Take your time; **Back**
re-opens your previous label if you want to correct it.
"""
RANKING_GUIDELINES = """\
### Ranking mode

This study asks for a **ranking**: order all responses from the best fit to
the worst. Press the letters in order (or click them): the first letter is
first place, the next second place, and the last place fills itself.
**Backspace** removes the last place. If you cannot order them, choose
**Can't decide** and say why.
"""


NATURALNESS_STEP = """\
2. **How natural is the request?** Could a real person have written it?
   1: no real user would write this ... 5: indistinguishable from a real request.
"""


def guidelines_text(guidelines_md: str | None, *, mode: str, questions: tuple | None) -> str:
    """The study's guidelines as annotators read them; ranking mode adds its own paragraph.

    The default text names the study's own rating questions (``questions``;
    required, so no page can forget them: a study that does not ask for
    naturalness must not tell people to rate it; None keeps RMGAP's text).
    A researcher's own text is shown as written.
    """
    text = guidelines_md or DEFAULT_GUIDELINES
    if not guidelines_md and questions is not None and not any(q.name == "naturalness" for q in questions):
        asked = "; ".join(f"*{q.text}*" + (" (for each response)" if q.about == "response" else "")
                          + ("" if q.required else " (optional)") for q in questions)
        step = (f"2. **Answer the study's questions**: {asked}. A digit answers the marked one.\n" if questions
                else "2. **Submit** (`Enter`) once you have picked (or ranked).\n")
        text = text.replace(NATURALNESS_STEP, step)
    return text + "\n\n" + RANKING_GUIDELINES if mode == "ranking" else text


class LabelError(ValueError):
    """A label that cannot be stored as given; the message says what to fix."""


@dataclass(frozen=True)
class AnnotatorItem:
    """The blinded view of one item for one annotator."""

    item_id: int
    prompt: str
    responses: tuple[tuple[str, str], ...]  # (display letter, text), in displayed order
    keys: tuple[str, ...]  # response key behind each letter: server-side only, never rendered
    mode: str  # "pick" | "ranking"
    # The conversation before the answer ({role, content}, the last turn the user's), when there is one.
    conversation: tuple[tuple[str, str], ...] | None = None
    # The user's profile shown above the question: their posts' texts.
    profile: tuple[str, ...] | None = None
    study_id: int = 0  # server-side only, like item_id

    @property
    def ties_allowed(self) -> bool:
        return len(self.keys) == 2

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(letter for letter, _ in self.responses)

    @property
    def transcript(self) -> tuple[tuple[str, str, bool], ...] | None:
        """The conversation as (role, text, is the final user turn), when there is more than the
        request itself to show (a one-turn conversation reads as a plain request)."""
        turns = self.conversation or ()
        if len(turns) < 2:  # noqa: PLR2004 - one turn is just the request
            return None
        last_user = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=len(turns) - 1)
        return tuple((role, text, i == last_user) for i, (role, text) in enumerate(turns))

    def key_for(self, letter: str) -> str:
        return self.keys[LETTERS.index(letter)]

    def letter_for(self, key: str) -> str:
        return LETTERS[self.keys.index(key)]


@dataclass(frozen=True)
class LabelView:
    """An annotator's own label, to pre-fill the form when they go back."""

    label_id: int
    item_id: int
    choice_key: str | None
    reason: str | None
    ranking: list[str] | None
    naturalness: int | None
    comment: str | None
    revisions: int
    ratings: dict | None = None  # answers to the study's other questions, by response key


def displayed_order(*, user_id: int, item_id: int, keys: list[str] | tuple[str, ...]) -> list[str]:
    """The response keys in the order this annotator sees them (slots A..D)."""
    return _shuffled(user_id, item_id, keys)


def _shuffled(user_id: int, item_id: int, keys) -> list[str]:  # noqa: ANN001
    # Sorted first, so the order depends on the ids only, not on storage order.
    digest = hashlib.sha256(f"rmgap-annot:{user_id}:{item_id}".encode()).digest()
    order = sorted(keys)
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def _study_of(session, item: Item, study_id: int | None) -> Study | None:  # noqa: ANN001
    return session.get(Study, study_id) if study_id is not None else default_study(session, item.benchmark_id)


def conversation_of(context_json: str | None) -> tuple[tuple[str, str], ...] | None:
    if not context_json:
        return None
    return tuple((str(m.get("role", "")), str(m.get("content", ""))) for m in json.loads(context_json))


def profile_of(profile_json: str | None) -> tuple[str, ...] | None:
    """Only the posts' texts: a profile's other fields (a narrative, a style) are researcher-only."""
    if not profile_json:
        return None
    posts = json.loads(profile_json)
    return tuple(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in posts)


def item_for_annotator(*, engine: Engine, user_id: int, item_id: int, study_id: int | None = None) -> AnnotatorItem:
    if (item_id or 0) < 0:  # a crowd study's check or qualification item, drawn exactly like a real one
        from rmgap_annot.crowd.stream import check_view

        return check_view(engine=engine, user_id=user_id, entry=item_id)
    with session_scope(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            raise LabelError(f"no item with id {item_id}")
        texts = dict(session.execute(select(Response.key, Response.text).where(Response.record_pk == item.record_pk)).all())
        study = _study_of(session, item, study_id)
        prompt = item.text
        conversation, profile = conversation_of(item.context_json), profile_of(item.profile_json)
    order = displayed_order(user_id=user_id, item_id=item_id, keys=list(texts))
    mode = study.mode if study is not None else "pick"
    return AnnotatorItem(
        item_id=item_id,
        prompt=prompt,
        responses=tuple((LETTERS[i], texts[k]) for i, k in enumerate(order)),
        keys=tuple(order),
        mode=mode if len(order) > 2 else "pick",  # two candidates: a pick (with ties) is a full ranking
        conversation=conversation,
        profile=profile,
        study_id=study.id if study is not None else 0,
    )


def study_questions(*, engine: Engine, study_id: int):  # noqa: ANN201 - tuple[questions.Question, ...]
    """The rating questions a study asks: its own, else its benchmark format's default."""
    from rmgap_annot.questions import questions_for

    with session_scope(engine) as session:
        row = session.execute(
            select(Study.questions_json, Benchmark.format).join(Benchmark, Benchmark.id == Study.benchmark_id)
            .where(Study.id == study_id)
        ).first()
    if row is None:
        raise LabelError(f"no study with id {study_id}")
    return questions_for(row[0], row[1])


def submit_label(
    *,
    engine: Engine,
    user_id: int,
    item_id: int,
    choice_key: str | None,
    naturalness: int | None = None,
    reason: str | None = None,
    ranking: list[str] | None = None,
    comment: str | None = None,
    displayed_order: list[str] | None = None,
    shown_at: datetime | None = None,
    study_id: int | None = None,
    ratings: dict | None = None,
) -> int:
    """Store (or revise) this annotator's label on an item; returns the label id.

    A second submit for the same (annotator, item) replaces the answer but
    keeps ``first_submitted_at`` and counts the revision, so both times are
    known. The annotator's lease on the item is released in the same
    transaction, and their draft of it deleted.

    A first label given without a live lease (it expired while the annotator
    was reading, and someone else may have filled the item meanwhile) is
    stored all the same and marked ``late``: a person's work is never
    dropped, and the study counts such labels apart.

    The label belongs to ``study_id`` (the item's benchmark's first study
    when None); the study's rating questions decide what ``naturalness``
    and ``ratings`` must hold (``rmgap_annot.questions``).
    """
    if (item_id or 0) < 0:  # a check's answer goes to CheckLabel, never to Label
        from rmgap_annot.crowd.stream import submit_check

        return submit_check(engine=engine, user_id=user_id, entry=item_id, choice_key=choice_key,
                            naturalness=naturalness, ranking=ranking, ratings=ratings, displayed_order=displayed_order)
    from rmgap_annot.questions import check_answers, questions_for

    if naturalness is not None and (isinstance(naturalness, bool) or not isinstance(naturalness, int)
                                    or not 1 <= naturalness <= 5):
        raise LabelError(f"naturalness must be an integer from 1 to 5, not {naturalness!r}")
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise LabelError(f"the comment is too long ({len(comment)} characters; at most {MAX_COMMENT_CHARS})")
    if choice_key is None:
        if reason not in REASONS:
            raise LabelError("With \"Can't decide\", say why: " + ", ".join(REASONS.values()) + ".")
    else:
        reason = None
    now = utcnow()
    with session_scope(engine, write=True) as session:
        # Inside the write turn: a file deleted or replaced since the app
        # started would take this label into a file nobody will read.
        ensure_unchanged(engine, session=session)
        item = session.get(Item, item_id)
        if item is None:
            raise LabelError(f"no item with id {item_id}")
        study = _study_for_update(session, item.benchmark_id, study_id)
        if study.benchmark_id != item.benchmark_id:
            raise LabelError(f"item {item_id} is not in study {study.name!r}")
        # Checked inside the write: a browser that was open when the account
        # was disabled, or its owner blocked in this study, stores nothing more.
        refusal = label_refusal(session, study_id=study.id, user_id=user_id)
        if refusal is not None:
            raise LabelError(f"{refusal}; the label was not stored")
        fmt = session.execute(select(Benchmark.format).where(Benchmark.id == item.benchmark_id)).scalar_one()
        questions = questions_for(study.questions_json, fmt)
        keys = set(session.execute(select(Response.key).where(Response.record_pk == item.record_pk)).scalars())
        tie = choice_key in TIES and choice_key not in keys
        if tie and len(keys) != 2:
            raise LabelError("A tie is an answer for two responses only.")
        if choice_key is not None and not tie and choice_key not in keys:
            raise LabelError(f"unknown response key {choice_key!r} for item {item_id}")
        try:
            naturalness, ratings_text = check_answers(questions, naturalness=naturalness, ratings=ratings, keys=keys)
        except ValueError as exc:
            raise LabelError(str(exc)) from None
        if ranking is not None:
            ranking = list(ranking)
            if tie:
                raise LabelError("A tie has no ranking.")
            if sorted(ranking) != sorted(keys):
                raise LabelError(f"A ranking must order all {len(keys)} responses, each once.")
            if choice_key is not None and ranking[0] != choice_key:
                raise LabelError("The first place of the ranking must be the pick.")
            if choice_key is None:
                raise LabelError("With \"Can't decide\", leave the ranking empty.")
        order = list(displayed_order) if displayed_order is not None else None
        if order is not None and sorted(order) != sorted(keys):
            raise LabelError(f"displayed_order must list the item's {len(keys)} response keys")
        if order is None:
            order = _shuffled(user_id, item_id, keys)
        label = session.execute(select(Label).where(
            Label.user_id == user_id, Label.item_id == item_id, Label.study_id == study.id)).scalars().first()
        if label is None:
            leased = session.execute(
                select(Lease.id).where(Lease.user_id == user_id, Lease.item_id == item_id, Lease.study_id == study.id,
                                       Lease.expires_at > now)
            ).first()
            ensure_member(session, study_id=study.id, user_id=user_id)
            label = Label(study_id=study.id, user_id=user_id, item_id=item_id, first_submitted_at=now,
                          shown_at=shown_at, late=leased is None)
        else:
            label.revisions += 1
        label.choice_key = choice_key
        label.reason = reason
        label.ranking_json = json.dumps(ranking) if ranking is not None else None
        label.displayed_order_json = json.dumps(order)
        label.naturalness = naturalness
        label.ratings_json = ratings_text
        label.comment = comment
        label.submitted_at = now
        label.source = "ui"
        if label.shown_at is None:
            label.shown_at = shown_at
        session.add(label)
        session.flush()
        release_lease(session=session, user_id=user_id, item_id=item_id, study_id=study.id)
        session.execute(delete(Draft).where(Draft.user_id == user_id, Draft.item_id == item_id,
                                            Draft.study_id == study.id))
        return label.id


def _item_study_id(session, item_id: int, study_id: int | None) -> int | None:  # noqa: ANN001
    if study_id is not None:
        return study_id
    item = session.get(Item, item_id)
    study = default_study(session, item.benchmark_id) if item is not None else None
    return study.id if study is not None else None


def _bench_study_id(session, benchmark_id: int | None, study_id: int | None) -> int | None:  # noqa: ANN001
    if study_id is not None or benchmark_id is None:
        return study_id
    study = default_study(session, benchmark_id)
    return study.id if study is not None else None


def label_for(*, engine: Engine, user_id: int, item_id: int, study_id: int | None = None) -> LabelView | None:
    """This annotator's own label on an item in a study (never anyone else's)."""
    if (item_id or 0) < 0:
        return None  # a check's answer is never revised
    with session_scope(engine) as session:
        sid = _item_study_id(session, item_id, study_id)
        label = session.execute(select(Label).where(
            Label.user_id == user_id, Label.item_id == item_id, Label.study_id == sid)).scalars().first()
        if label is None:
            return None
        return LabelView(
            label.id, label.item_id, label.choice_key, label.reason,
            json.loads(label.ranking_json) if label.ranking_json else None,
            label.naturalness, label.comment, label.revisions,
            json.loads(label.ratings_json) if label.ratings_json else None,
        )


def previous_label(*, engine: Engine, user_id: int, benchmark_id: int | None = None, before_item_id: int | None = None,
                   study_id: int | None = None) -> int | None:
    """The item of the annotator's label just before ``before_item_id`` (their latest when None).

    Ordered by first submission, so revising a label does not move it: going
    Back twice always walks further into the past.
    """
    with session_scope(engine) as session:
        sid = _bench_study_id(session, benchmark_id, study_id)
        rows = session.execute(
            select(Label.item_id)
            .where(Label.user_id == user_id, Label.study_id == sid)
            .order_by(Label.first_submitted_at.desc(), Label.id.desc())
        ).scalars().all()
    if not rows:
        return None
    if before_item_id is None or before_item_id not in rows:
        return rows[0]
    i = rows.index(before_item_id)
    return rows[i + 1] if i + 1 < len(rows) else None


def opaque_key(*, secret: bytes, parts: tuple[object, ...]) -> str:
    """A widget or form key that tells the browser nothing.

    Streamlit sends a form's key to the browser and hashes it into every
    widget id inside; a key built from an item id would reveal the id, and
    ids follow file order (base prompt or rewrite, group). An HMAC under a
    secret the browser never gets (a random value per session) keeps keys
    distinct per item and revision, so each item gets a fresh form, without
    being reversible or comparable across sessions.
    """
    message = "\x1f".join(str(p) for p in parts).encode()
    return "k" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:20]


# --- drafts: the answer while it is being made -----------------------------------


def save_draft(*, engine: Engine, user_id: int, item_id: int, state: dict, study_id: int | None = None) -> None:
    """Keep this annotator's half-made answer on the server (one row per study, annotator and item)."""
    if (item_id or 0) < 0:  # a check's draft is kept as a real item's is (a difference would tell it apart)
        from rmgap_annot.crowd.stream import save_check_draft

        save_check_draft(engine=engine, user_id=user_id, entry=item_id, state=state)
        return
    text = json.dumps(state, sort_keys=True)
    with session_scope(engine, write=True) as session:
        sid = _item_study_id(session, item_id, study_id)
        row = session.execute(select(Draft).where(
            Draft.user_id == user_id, Draft.item_id == item_id, Draft.study_id == sid)).scalars().first()
        if row is None:
            row = Draft(study_id=sid, user_id=user_id, item_id=item_id)
        row.state_json = text
        row.updated_at = utcnow()
        session.add(row)


def load_draft(*, engine: Engine, user_id: int, item_id: int, study_id: int | None = None) -> dict | None:
    """The annotator's own draft of an item, or None."""
    if (item_id or 0) < 0:
        from rmgap_annot.crowd.stream import load_check_draft

        return load_check_draft(engine=engine, user_id=user_id, entry=item_id)
    with session_scope(engine) as session:
        sid = _item_study_id(session, item_id, study_id)
        text = session.execute(
            select(Draft.state_json).where(Draft.user_id == user_id, Draft.item_id == item_id, Draft.study_id == sid)
        ).scalar_one_or_none()
    return json.loads(text) if text else None


# --- skip and flag -------------------------------------------------------------------


def skip_item(*, engine: Engine, user_id: int, item_id: int, study_id: int | None = None) -> None:
    """Pass an item over: its lease goes back to the pool and assignment offers it to this
    annotator again only when nothing else is left. The draft is kept for that day."""
    if (item_id or 0) < 0:  # a skipped check is met, neither passed nor failed
        from rmgap_annot.crowd.stream import submit_check

        submit_check(engine=engine, user_id=user_id, entry=item_id, choice_key=None, skipped=True)
        return
    with session_scope(engine, write=True) as session:
        sid = _item_study_id(session, item_id, study_id)
        exists = session.execute(select(Skip.id).where(
            Skip.user_id == user_id, Skip.item_id == item_id, Skip.study_id == sid)).first()
        if exists is None:
            session.add(Skip(study_id=sid, user_id=user_id, item_id=item_id))
        release_lease(session=session, user_id=user_id, item_id=item_id, study_id=sid)


def flag_item(*, engine: Engine, user_id: int, item_id: int, reason: str) -> None:
    """Report an item as unfit to label; it leaves this annotator's queue for good."""
    if reason not in FLAG_REASONS:
        raise LabelError(f"a flag's reason is one of {', '.join(FLAG_REASONS)}, not {reason!r}")
    if (item_id or 0) < 0:  # a flagged check counts as a skipped one
        from rmgap_annot.crowd.stream import submit_check

        submit_check(engine=engine, user_id=user_id, entry=item_id, choice_key=None, skipped=True)
        return
    with session_scope(engine, write=True) as session:
        row = session.execute(select(Flag).where(Flag.user_id == user_id, Flag.item_id == item_id)).scalars().first()
        if row is None:
            row = Flag(user_id=user_id, item_id=item_id, reason=reason)
        row.reason = reason
        row.flagged_at = utcnow()
        session.add(row)
        release_lease(session=session, user_id=user_id, item_id=item_id)


@dataclass(frozen=True)
class FlagRow:
    """One flag, for researchers (never shown to annotators)."""

    item_id: int
    record_id: str
    domain: str
    prompt: str
    reason: str
    annotator: str
    flagged_at: datetime


def flags_for_benchmark(*, engine: Engine, benchmark_id: int) -> list[FlagRow]:
    """Every flag on a benchmark's items, newest first."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Flag.item_id, Record.record_id, Item.domain, Item.text, Flag.reason, User.name, Flag.flagged_at)
            .join(Item, Item.id == Flag.item_id)
            .join(Record, Record.id == Item.record_pk)
            .join(User, User.id == Flag.user_id)
            .where(Item.benchmark_id == benchmark_id)
            .order_by(Flag.flagged_at.desc(), Flag.id.desc())
        ).all()
    return [FlagRow(*r) for r in rows]


def flag_counts(*, engine: Engine, benchmark_id: int) -> dict[int, int]:
    """Item id -> number of flags (for the researchers' item table)."""
    with session_scope(engine) as session:
        return dict(
            session.execute(
                select(Flag.item_id, func.count())
                .join(Item, Item.id == Flag.item_id)
                .where(Item.benchmark_id == benchmark_id)
                .group_by(Flag.item_id)
            ).all()
        )


# --- guidelines gate and annotator settings ----------------------------------------


def guidelines_confirmed(*, engine: Engine, user_id: int, benchmark_id: int | None = None,
                         study_id: int | None = None) -> bool:
    """Whether the annotator confirmed this study's guidelines (asked before their first item)."""
    with session_scope(engine) as session:
        sid = _bench_study_id(session, benchmark_id, study_id)
        return session.execute(
            select(GuidelinesConfirmation.id)
            .where(GuidelinesConfirmation.user_id == user_id, GuidelinesConfirmation.study_id == sid)
        ).first() is not None


def confirm_guidelines(*, engine: Engine, user_id: int, benchmark_id: int | None = None,
                       study_id: int | None = None) -> None:
    study_id = get_study(engine=engine, benchmark_id=benchmark_id, study_id=study_id).id
    with session_scope(engine, write=True) as session:
        exists = session.execute(
            select(GuidelinesConfirmation.id).where(
                GuidelinesConfirmation.user_id == user_id, GuidelinesConfirmation.study_id == study_id
            )
        ).first()
        if exists is None:
            session.add(GuidelinesConfirmation(user_id=user_id, study_id=study_id))


def keyboard_shortcuts(*, engine: Engine, user_id: int) -> bool:
    """Whether single-key shortcuts are on for this annotator (on unless they switched them off)."""
    with session_scope(engine) as session:
        row = session.get(AnnotatorSetting, user_id)
        return True if row is None else bool(row.keyboard_shortcuts)


def set_keyboard_shortcuts(*, engine: Engine, user_id: int, enabled: bool) -> None:
    with session_scope(engine, write=True) as session:
        row = session.get(AnnotatorSetting, user_id) or AnnotatorSetting(user_id=user_id)
        row.keyboard_shortcuts = enabled
        session.add(row)
