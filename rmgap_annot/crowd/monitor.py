"""Live quality control: one row per person in a study, read from the database.

The figures come from ``crowd.quality`` (pure); this module only gathers
what they need: each member's labels and check answers with their times,
the study's settings, the stored exclusions, and a cached Dawid-Skene/MACE
fit when one exists for the study's counted labels (a fit takes seconds, so
the page never fits: it shows the competence once ``rmgap-annot report
--study NAME --fit-truth`` or the Results page has fitted). Agreement with
the others is computed over every real label in the study, excluded
annotators' included (the researcher is deciding about them); check and
qualification answers never enter it.

Platform ids appear here and in the payment CSV only: this is the
researcher's view for approving and paying people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.crowd import quality as q
from rmgap_annot.crowd.payment import PaymentRow
from rmgap_annot.db import session_scope
from rmgap_annot.models import CheckItem, CheckLabel, Label, Study, StudyMember, User
from rmgap_annot.studies import pseudonyms


def crowd_state_in(session, study: Study, user_id: int):  # noqa: ANN001, ANN201
    """``crowd.stream``'s state of one participant (imported here: stream pulls in the annotate flow)."""
    from rmgap_annot.crowd.stream import _state  # noqa: PLC0415

    return _state(session, study, user_id)

EXCLUDED = "excluded from analysis: their labels are not in the fit"


@dataclass
class AnnotatorRow:
    """One person's row on the Quality page and in ``crowd report``; ``reasons`` says why a None is None."""

    pseudonym: str
    name: str
    status: str
    labels: int
    checks_passed: int
    checks_failed: int
    qualification: str  # pending | passed | failed
    median_seconds: Optional[float]
    fast_share: Optional[float]
    minutes_worked: Optional[float]
    loo_alpha: Optional[float]  # the study's pick alpha without them
    loo_delta: Optional[float]  # alpha with everyone minus without them (negative: they lower agreement)
    agreement: Optional[float]  # mean share of the others' picks equal to theirs
    competence: dict[str, Optional[float]]  # dawid-skene / mace -> estimate
    excluded: bool
    exclusion_reason: Optional[str]
    blocked: bool
    completion_code_given: bool
    platform: Optional[str]
    participant_id: Optional[str]
    platform_study_id: Optional[str]
    platform_session_id: Optional[str]
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def payment_row(self) -> PaymentRow:
        return PaymentRow(
            participant_id=self.participant_id or self.name, platform=self.platform or "account",
            status=self.status, labels=self.labels, minutes_worked=self.minutes_worked,
            completion_code_given=self.completion_code_given,
        )


@dataclass
class StudyQuality:
    study_id: int
    study: str
    alpha: Optional[float]  # the study's pick alpha with everyone
    alpha_reason: Optional[str]
    truth_status: dict[str, str]  # method -> "fitted" or why not
    annotators: list[AnnotatorRow]


def _aware(t: Optional[datetime]) -> Optional[datetime]:
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=timezone.utc)
    return t


def _competence(engine: Engine, study: Study) -> tuple[dict[str, dict], dict[str, str]]:
    """Per user id: each method's cached competence (None when not fitted); and the methods' status."""
    from rmgap_annot.exclusions import counted_labels
    from rmgap_annot.stats import truth

    counted = counted_labels(engine=engine, benchmark_id=study.benchmark_id, study_ids=[study.id])
    labels = counted.labels
    status: dict[str, str] = {}
    fitted: dict[str, dict] = {}
    if labels.empty:
        return {m: {} for m in truth.FITTED}, {m: "no counted labels in this study yet" for m in truth.FITTED}
    positions = truth.key_positions(engine=engine, benchmark_id=study.benchmark_id)
    data = truth.crowd_frame(labels, positions)
    for method in truth.FITTED:
        found = truth.cached_fit(engine=engine, benchmark_id=study.benchmark_id, method=method,
                                 fp=truth.fingerprint(data, method))
        if found is None:
            status[method] = (f"not fitted yet for these labels: run `rmgap-annot report --study {study.name} "
                              "--fit-truth` (or Fit on the Results page)")
        else:
            status[method] = "fitted"
            fitted[method] = found["competence"]
    # The fit names annotators as the report does (their pseudonym); back to user ids.
    by_name = dict(zip(labels["annotator"], labels["user_id"]))
    out = {m: {int(by_name[n]): v for n, v in comp.items() if n in by_name} for m, comp in fitted.items()}
    return out, status


def study_quality(*, engine: Engine, study_id: int, now: Optional[datetime] = None) -> StudyQuality:
    """Every member of the study with their status and figures, in pseudonym order."""
    from rmgap_annot.exclusions import active_exclusions
    from rmgap_annot.stats import truth

    with session_scope(engine) as session:
        study = session.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        members = session.execute(
            select(StudyMember, User.name).join(User, User.id == StudyMember.user_id)
            .where(StudyMember.study_id == study_id).order_by(StudyMember.pseudonym_no)
        ).all()
        labels = session.execute(
            select(Label.user_id, Label.item_id, Label.choice_key, Label.shown_at, Label.first_submitted_at,
                   Label.submitted_at, Label.revisions)
            .where(Label.study_id == study_id).order_by(Label.id)
        ).all()
        checks = session.execute(
            select(CheckLabel.user_id, CheckItem.kind, CheckLabel.correct, CheckLabel.shown_at, CheckLabel.submitted_at)
            .join(CheckItem, CheckItem.id == CheckLabel.check_item_id)
            .where(CheckLabel.study_id == study_id).order_by(CheckLabel.id)
        ).all()
        # Status, qualification and check counts exactly as the participant's own page decides them.
        states = {m.user_id: crowd_state_in(session, study, m.user_id) for m, _ in members}
    names = pseudonyms(engine=engine, study_ids=[study_id])
    excluded = {e.user_id: e.reason for e in active_exclusions(engine=engine)}
    loo = q.leave_one_out((uid, item, choice) for uid, item, choice, *_ in labels)
    competence, truth_status = _competence(engine, study)

    labels_of: dict[int, list] = {}
    for r in labels:
        labels_of.setdefault(r.user_id, []).append(r)
    checks_of: dict[int, list] = {}
    for c in checks:
        checks_of.setdefault(c.user_id, []).append(c)
    rows = []
    for member, name in members:
        uid = member.user_id
        mine = labels_of.get(uid, [])
        events: list[q.Event] = []
        for r in mine:
            events.append((_aware(r.shown_at), _aware(r.first_submitted_at)))
            if r.revisions:
                events.append((None, _aware(r.submitted_at)))  # a revision is work too
        my_checks = checks_of.get(uid, [])
        events += [(_aware(c.shown_at), _aware(c.submitted_at)) for c in my_checks]
        check_results = [bool(c.correct) for c in my_checks if c.kind == "check" and c.correct is not None]
        figures = q.quality(events=events, labels=len(mine), check_results=check_results)
        state = states[uid]
        qualification, status = state.qualification, state.status
        if status in ("active", "qualifying") and member.completed_at is not None:
            status = "completed"  # shown the completion code (ran out of items, or the study was full)
        reasons = dict(figures.reasons)
        agree = loo.annotators.get(uid)
        if agree is None:
            reasons.update(loo_alpha="no label yet", loo_delta="no label yet", agreement="no label yet")
        else:
            reasons.update({f"loo_{k}" if k != "agreement" else k: v for k, v in agree.reasons.items()})
            if "loo_alpha_without" in reasons:
                reasons["loo_alpha"] = reasons.pop("loo_alpha_without")
        comp: dict[str, Optional[float]] = {}
        for method in truth.FITTED:
            comp[method] = competence.get(method, {}).get(uid)
            if comp[method] is None:
                if uid in excluded:
                    reasons[method] = EXCLUDED
                elif truth_status[method] != "fitted":
                    reasons[method] = truth_status[method]
                else:
                    reasons[method] = "no decided label in the fit"
        rows.append(AnnotatorRow(
            pseudonym=names.get((study_id, uid), ""), name=name, status=status, labels=len(mine),
            checks_passed=state.checks_passed, checks_failed=state.checks_failed, qualification=qualification,
            median_seconds=figures.median_seconds, fast_share=figures.fast_share, minutes_worked=figures.minutes_worked,
            loo_alpha=agree.alpha_without if agree else None, loo_delta=agree.delta if agree else None,
            agreement=agree.agreement if agree else None, competence=comp,
            excluded=uid in excluded, exclusion_reason=excluded.get(uid), blocked=member.blocked_at is not None,
            completion_code_given=member.completed_at is not None, platform=member.platform,
            participant_id=member.participant_id, platform_study_id=member.platform_study_id,
            platform_session_id=member.platform_session_id, reasons=reasons,
        ))
    return StudyQuality(study_id=study_id, study=study.name, alpha=loo.alpha, alpha_reason=loo.reason,
                        truth_status=truth_status, annotators=rows)


def payment_rows(report: StudyQuality) -> list[PaymentRow]:
    """The payment CSV's rows (``crowd.payment.payment_csv``), one per person, pseudonym order."""
    return [r.payment_row() for r in report.annotators]
