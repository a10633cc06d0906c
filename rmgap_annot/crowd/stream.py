"""A crowd participant's stream: consent, the qualification round, attention checks among real items, the end.

What a participant sees next is decided here, in one place: the
qualification items first (``--qualification-items``), then real items from
``assignment.next_item`` with attention checks mixed in on the seeded
schedule of ``crowd.schedule`` (the quota counts real items only). A check
or qualification item travels through the page as a *stream entry*: the
negative of its CheckItem id, where a real item has its positive Item id.
The page passes entries to ``annotation``'s functions as item ids, and those
hand the negative ones to this module, so the page draws a check with the
very code that draws a real item (``AnnotatorItem``, shuffled the same way)
and nothing the browser receives tells the two apart: widget keys are
HMACs of the entry (``annotation.opaque_key``), never the entry itself.

A check's answer goes to CheckLabel, never to Label: no statistic, export
or report reads that table. The CheckLabel row is created when the check is
first shown (``after_labels`` records where it sits in the stream) and
filled when answered; a check shown but not answered stays due, so a
refresh cannot dodge it. Neither checks nor qualification items can be
revised (Back walks real labels only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from rmgap_annot.annotation import (  # annotation hands check entries here with a lazy import: no cycle
    LETTERS,
    TIES,
    AnnotatorItem,
    LabelError,
    conversation_of,
    displayed_order,
    profile_of,
)
from rmgap_annot.crowd.quality import annotator_status
from rmgap_annot.crowd.schedule import check_slots, next_check, qualification_items, qualification_state
from rmgap_annot.db import session_scope
from rmgap_annot.studies import label_refusal
from rmgap_annot.models import CheckItem, CheckLabel, Label, Study, StudyItem, StudyMember, utcnow

SCREENED_QUALIFICATION = "failed the qualification"
SCREENED_CHECKS = "failed attention checks"
SCREENED_DECLINED = "declined consent"
DRAFT = "draft"  # CheckLabel.ratings_json holds {"draft": ...} until the answer is stored


def is_check_entry(item_id: Optional[int]) -> bool:
    """Whether a stream entry is a check or qualification item (a negative CheckItem id)."""
    return item_id is not None and item_id < 0


def _seed(study: Study) -> str:
    """The schedule's seed: fixed for the study's life, different between studies."""
    return f"{study.id}:{study.sample_seed}"


@dataclass(frozen=True)
class CrowdState:
    """Where a participant stands in their study, read fresh from the database."""

    study_id: int
    user_id: int
    platform: Optional[str]
    status: str  # quality.annotator_status: qualifying | active | completed | screened out | blocked
    consented: bool
    declined: bool
    screened_out_reason: Optional[str]
    completed_at: Optional[datetime]
    real_done: int
    quota: Optional[int]
    qualification: str  # pending | passed | failed
    qualification_done: int
    qualification_n: int
    checks_passed: int
    checks_failed: int
    checks_answered: int
    checks_planned: int  # checks within the quota (what the progress bar counts on)
    completion_code: Optional[str]
    screenout_code: Optional[str]
    check_action: str
    check_fail_limit: Optional[int]
    last_feedback: Optional["Feedback"] = None
    reasons: dict = field(default_factory=dict)

    @property
    def needs_consent(self) -> bool:
        return not self.consented and not self.declined

    @property
    def warned(self) -> bool:
        """With --check-action warn: the failed-check limit is reached (the page shows the guidelines again)."""
        return (self.check_action == "warn" and self.check_fail_limit is not None
                and self.checks_failed >= self.check_fail_limit)


@dataclass(frozen=True)
class Feedback:
    """A qualification item's answer, for the participant only after their label is stored."""

    label_id: int
    correct: bool
    expected_letters: tuple[str, ...]  # in the letters the participant saw
    explanation: Optional[str]


def _member(session, study_id: int, user_id: int) -> Optional[StudyMember]:  # noqa: ANN001
    return session.execute(select(StudyMember).where(
        StudyMember.study_id == study_id, StudyMember.user_id == user_id)).scalars().first()


def crowd_study_of(*, engine: Engine, user_id: int) -> Optional[int]:
    """The study a crowd participant came through (their latest link); None for a lab account."""
    with session_scope(engine) as session:
        return session.execute(
            select(StudyMember.study_id).where(StudyMember.user_id == user_id, StudyMember.platform.is_not(None))
            .order_by(StudyMember.joined_at.desc(), StudyMember.id.desc()).limit(1)
        ).scalar_one_or_none()


def _real_done(session, study_id: int, user_id: int) -> int:  # noqa: ANN001
    return session.execute(
        select(func.count()).select_from(Label)
        .join(StudyItem, and_(StudyItem.item_id == Label.item_id, StudyItem.study_id == study_id))
        .where(Label.user_id == user_id, Label.study_id == study_id)
    ).scalar_one()


def _answers(session, study_id: int, user_id: int, kind: str) -> list:  # noqa: ANN001
    """(CheckLabel, CheckItem) of this kind, in the order shown."""
    return session.execute(
        select(CheckLabel, CheckItem).join(CheckItem, CheckItem.id == CheckLabel.check_item_id)
        .where(CheckLabel.study_id == study_id, CheckLabel.user_id == user_id, CheckItem.kind == kind)
        .order_by(CheckLabel.shown_at, CheckLabel.id)
    ).all()


def _check_ids(session, study_id: int, kind: str) -> list[str]:  # noqa: ANN001
    return list(session.execute(select(CheckItem.check_id).where(
        CheckItem.study_id == study_id, CheckItem.kind == kind).order_by(CheckItem.position)).scalars())


def _state(session, study: Study, user_id: int) -> CrowdState:  # noqa: ANN001
    member = _member(session, study.id, user_id)
    real_done = _real_done(session, study.id, user_id)
    quals = [(cl, ci) for cl, ci in _answers(session, study.id, user_id, "qualification") if cl.submitted_at]
    n_qual = min(study.qualification_items or 0, len(_check_ids(session, study.id, "qualification")))
    qualification = qualification_state(results=[bool(cl.correct) for cl, _ in quals], n_items=n_qual,
                                        pass_share=study.qualification_pass if study.qualification_pass is not None else 1)
    checks = [cl for cl, _ in _answers(session, study.id, user_id, "check") if cl.submitted_at]
    passed = sum(cl.correct is True for cl in checks)
    failed = sum(cl.correct is False for cl in checks)
    n_checks = len(_check_ids(session, study.id, "check"))
    planned = len(check_slots(seed=_seed(study), annotator=user_id, quota=study.quota_per_annotator,
                              rate=study.check_rate or 0, n_checks=n_checks)) if study.quota_per_annotator else 0
    # The one permission check (a block in this study, a disabled account) that assignment and labels use.
    blocked = label_refusal(session, study_id=study.id, user_id=user_id) is not None
    declined = member is not None and member.declined_at is not None
    status = annotator_status(
        blocked=blocked, qualification=qualification, checks_failed=failed, check_fail_limit=study.check_fail_limit,
        check_action=study.check_action, real_done=real_done, quota=study.quota_per_annotator,
        consent_declined=declined,
    )
    if member is not None and member.screened_out_at is not None and status not in ("blocked",):
        status = "screened out"  # a screen-out stands even if the settings change later
    feedback = None
    if quals:
        cl, ci = quals[-1]
        order = json.loads(cl.displayed_order_json or "[]")
        letters = tuple(LETTERS[order.index(k)] for k in json.loads(ci.expected_json) if k in order)
        feedback = Feedback(label_id=cl.id, correct=bool(cl.correct), expected_letters=letters, explanation=ci.explanation)
    return CrowdState(
        study_id=study.id, user_id=user_id, platform=member.platform if member else None, status=status,
        consented=member is not None and member.consented_at is not None, declined=declined,
        screened_out_reason=(member.screened_out_reason if member and member.screened_out_at else
                             SCREENED_DECLINED if declined else None),
        completed_at=member.completed_at if member else None, real_done=real_done,
        quota=study.quota_per_annotator, qualification=qualification, qualification_done=len(quals),
        # A skipped check (neither passed nor failed) does not move the counter, as a skipped item does not.
        qualification_n=n_qual, checks_passed=passed, checks_failed=failed, checks_answered=passed + failed,
        checks_planned=planned, completion_code=study.completion_code, screenout_code=study.screenout_code,
        check_action=study.check_action, check_fail_limit=study.check_fail_limit, last_feedback=feedback,
    )


@dataclass(frozen=True)
class StreamProgress:
    done: int
    target: int

    @property
    def fraction(self) -> float:
        return 1.0 if self.target <= 0 else min(1.0, self.done / self.target)


def stream_progress(state: CrowdState) -> Optional[StreamProgress]:
    """Progress over everything shown, checks included, so the count moves on every item alike
    (a counter that stood still after a check would tell it apart); None without a quota."""
    if state.qualification == "pending":
        return StreamProgress(state.qualification_done, state.qualification_n)
    if state.quota is None:
        return None
    return StreamProgress(state.real_done + state.checks_answered, state.quota + state.checks_planned)


def crowd_state(*, engine: Engine, user_id: int, study_id: int) -> CrowdState:
    with session_scope(engine) as session:
        study = session.get(Study, study_id)
        return _state(session, study, user_id)


def _stamp(*, engine: Engine, user_id: int, study_id: int, **fields) -> None:  # noqa: ANN003
    """Set member timestamps that are still empty (the first consent, completion or screen-out stands)."""
    with session_scope(engine, write=True) as session:
        member = _member(session, study_id, user_id)
        if member is None:
            return
        for name, value in fields.items():
            if getattr(member, name) is None:
                setattr(member, name, value)
        session.add(member)


def give_consent(*, engine: Engine, user_id: int, study_id: int) -> None:
    """The participant pressed Start on the consent screen (their guidelines are confirmed with it)."""
    from rmgap_annot.annotation import confirm_guidelines

    _stamp(engine=engine, user_id=user_id, study_id=study_id, consented_at=utcnow())
    confirm_guidelines(engine=engine, user_id=user_id, study_id=study_id)


def decline_consent(*, engine: Engine, user_id: int, study_id: int) -> None:
    """The participant declined: no items, the screen-out code."""
    now = utcnow()
    _stamp(engine=engine, user_id=user_id, study_id=study_id, declined_at=now)


def mark_completed(*, engine: Engine, user_id: int, study_id: int) -> None:
    """The completion code was shown (quota done, or nothing left to label)."""
    _stamp(engine=engine, user_id=user_id, study_id=study_id, completed_at=utcnow())


# --- what comes next -------------------------------------------------------------


def next_entry(*, engine: Engine, user_id: int, study_id: int) -> Optional[int]:
    """The next stream entry: a qualification item, a due check, else a real item; None when nothing is for them.

    Returns None for anyone who may not label (screened out, blocked,
    completed, not yet consented).
    """
    from rmgap_annot.assignment import next_item

    with session_scope(engine, write=True) as session:
        study = session.execute(select(Study).where(Study.id == study_id).with_for_update()).scalars().one()
        state = _state(session, study, user_id)
        if not state.consented or state.status not in ("qualifying", "active"):
            return None
        entry = _due_check(session, study, state)
        if entry is not None:
            return entry
        if state.qualification != "passed":
            return None  # pending with no item left cannot happen: n_qual is capped by the pool
    return next_item(engine=engine, user_id=user_id, study_id=study_id)


def _due_check(session, study: Study, state: CrowdState) -> Optional[int]:  # noqa: ANN001
    """A check or qualification item to show now (creating its CheckLabel row when first shown), or None."""
    kind = "qualification" if state.qualification == "pending" else "check"
    shown = _answers(session, study.id, state.user_id, kind)
    for cl, ci in shown:
        if cl.submitted_at is None:
            return -ci.id  # shown, not answered: still due
    done = [ci.check_id for _, ci in shown]
    if kind == "qualification":
        order = qualification_items(seed=_seed(study), annotator=state.user_id,
                                    item_ids=_check_ids(session, study.id, kind), n_items=state.qualification_n)
        wanted = next((c for c in order if c not in done), None)
    else:
        if not study.check_rate:
            return None
        wanted = next_check(seed=_seed(study), annotator=state.user_id, quota=study.quota_per_annotator,
                            rate=study.check_rate, check_ids=_check_ids(session, study.id, kind),
                            real_done=state.real_done, checks_done=done)
    if wanted is None:
        return None
    ci = session.execute(select(CheckItem).where(
        CheckItem.study_id == study.id, CheckItem.kind == kind, CheckItem.check_id == wanted)).scalars().one()
    session.add(CheckLabel(study_id=study.id, user_id=state.user_id, check_item_id=ci.id,
                           after_labels=state.real_done, shown_at=utcnow()))
    session.flush()
    return -ci.id


# --- a check drawn and answered like a real item --------------------------------------


def _owned(session, user_id: int, entry: int) -> tuple[CheckLabel, CheckItem]:  # noqa: ANN001
    """The participant's own CheckLabel for an entry: a check is only ever served to whom it was scheduled for."""
    found = session.execute(
        select(CheckLabel, CheckItem).join(CheckItem, CheckItem.id == CheckLabel.check_item_id)
        .where(CheckLabel.user_id == user_id, CheckItem.id == -entry)
    ).first()
    if found is None:
        raise LabelError("this item is not open for you")
    return found[0], found[1]


def check_view(*, engine: Engine, user_id: int, entry: int) -> AnnotatorItem:
    """The blinded view of a check: built exactly as ``annotation.item_for_annotator`` builds a real item's."""
    with session_scope(engine) as session:
        _, ci = _owned(session, user_id, entry)
        return view_of_check(ci, session.get(Study, ci.study_id), user_id=user_id)


def view_of_check(ci: CheckItem, study: Study, *, user_id: int) -> AnnotatorItem:
    """A CheckItem as ``user_id`` sees it (also the researcher's preview, which stores nothing)."""
    entry = -ci.id
    texts = dict(tuple(r) for r in json.loads(ci.responses_json))
    order = displayed_order(user_id=user_id, item_id=entry, keys=list(texts))
    return AnnotatorItem(
        item_id=entry, prompt=ci.prompt, responses=tuple((LETTERS[i], texts[k]) for i, k in enumerate(order)),
        keys=tuple(order), mode=study.mode if len(order) > 2 else "pick", conversation=conversation_of(ci.context_json),
        profile=profile_of(ci.profile_json), study_id=study.id,
    )


def submit_check(
    *, engine: Engine, user_id: int, entry: int, choice_key: Optional[str], naturalness: Optional[int] = None,
    ranking: Optional[list[str]] = None, ratings: Optional[dict] = None, displayed_order: Optional[list[str]] = None,
    skipped: bool = False,
) -> int:
    """Store a check's answer in CheckLabel (never Label), once; then screen out or qualify as the answers say.

    ``skipped`` (Skip or Flag on a check): the check counts as met but
    neither passed nor failed, except in the qualification round, where a
    skipped item counts as not right (the round needs all its answers).
    """
    with session_scope(engine, write=True) as session:
        label, ci = _owned(session, user_id, entry)
        if label.submitted_at is not None:
            raise LabelError("This answer is stored and cannot be changed.")
        keys = [k for k, _ in json.loads(ci.responses_json)]
        tie = choice_key in TIES and choice_key not in keys and len(keys) == 2  # as a real two-response item allows
        if choice_key is not None and not tie and choice_key not in keys:
            raise LabelError(f"unknown response key {choice_key!r}")
        if ranking is not None and sorted(ranking) != sorted(keys):
            raise LabelError(f"A ranking must order all {len(keys)} responses, each once.")
        expected = json.loads(ci.expected_json)
        answers = dict(ratings or {})
        if naturalness is not None:
            answers["naturalness"] = naturalness
        label.choice_key = None if skipped else choice_key
        label.ranking_json = json.dumps(ranking) if ranking is not None else None
        label.ratings_json = json.dumps(answers, sort_keys=True) if answers else None
        label.displayed_order_json = json.dumps(list(displayed_order) if displayed_order is not None
                                                else [k for k in keys])
        if skipped:
            label.correct = False if ci.kind == "qualification" else None
        else:
            label.correct = choice_key is not None and choice_key in expected
        label.submitted_at = utcnow()
        session.add(label)
        session.flush()
        study = session.get(Study, ci.study_id)
        state = _state(session, study, user_id)
        member = _member(session, study.id, user_id)
        if member is not None:
            if ci.kind == "qualification" and state.qualification == "passed" and member.qualified_at is None:
                member.qualified_at = utcnow()
            if state.status == "screened out" and member.screened_out_at is None:
                member.screened_out_at = utcnow()
                member.screened_out_reason = (SCREENED_QUALIFICATION if state.qualification == "failed"
                                              else SCREENED_CHECKS)
            session.add(member)
        return label.id


def save_check_draft(*, engine: Engine, user_id: int, entry: int, state: dict) -> None:
    """The half-made answer to a check, kept on the server like a real item's draft.

    A refresh that kept a real item's answer but lost a check's would tell
    the two apart. Kept in the CheckLabel row until the answer replaces it.
    """
    with session_scope(engine, write=True) as session:
        label, _ = _owned(session, user_id, entry)
        if label.submitted_at is None:
            label.ratings_json = json.dumps({DRAFT: state}, sort_keys=True)
            session.add(label)


def load_check_draft(*, engine: Engine, user_id: int, entry: int) -> Optional[dict]:
    with session_scope(engine) as session:
        try:
            label, _ = _owned(session, user_id, entry)
        except LabelError:
            return None
        if label.submitted_at is not None or not label.ratings_json:
            return None
        return json.loads(label.ratings_json).get(DRAFT)
