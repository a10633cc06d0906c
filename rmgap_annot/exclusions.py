"""Annotator exclusion: labels that stay stored but count nowhere.

A researcher who finds a careless or fraudulent annotator must be able to
take their labels out of every number (agreement, accuracy, truth
inference, the export, the scorer comparison on labelled items) without
deleting them: a submitted label is never discarded, and the decision must
stay reversible and explained. So an exclusion is a row with a reason;
including the annotator again stamps ``included_at`` on that row, which
keeps the history.

Exclusions are global (per annotator, not per benchmark): someone who did
not read the responses did not read them in any benchmark.

Every analysis reads labels through :func:`counted_labels`, which drops the
stored exclusions plus any one-off "what-if" names (``report --exclude``,
the Results page's multiselect), so the report and the export agree on what
a counted label is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.labels_frame import load_labels
from rmgap_annot.models import AnnotatorExclusion, User, utcnow


class ExclusionError(ValueError):
    """An exclusion that cannot be made as asked (unknown name, no reason...)."""


@dataclass(frozen=True)
class Exclusion:
    annotator: str
    user_id: int
    reason: str
    excluded_at: datetime

    def as_dict(self) -> dict:
        return {"annotator": self.annotator, "reason": self.reason, "excluded_at": self.excluded_at.isoformat()}


def _user(session, name: str) -> User:  # noqa: ANN001
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise ExclusionError(f"no user named {name!r} (see: rmgap-annot users list)")
    return user


def _audit(session, *, actor: str, study_id: int | None, action: str, user_id: int, detail: dict) -> None:  # noqa: ANN001
    """The audit log's row, in the exclusion's own transaction (the log never claims a change that failed)."""
    from rmgap_annot import audit  # noqa: PLC0415
    from rmgap_annot.crowd.control import target_name  # noqa: PLC0415
    from rmgap_annot.models import StudyMember  # noqa: PLC0415

    if study_id is None:  # filed under the study the person joined last (an exclusion itself is global)
        study_id = session.execute(
            select(StudyMember.study_id).where(StudyMember.user_id == user_id)
            .order_by(StudyMember.joined_at.desc(), StudyMember.id.desc()).limit(1)
        ).scalar_one_or_none()
    audit.record(session, actor=actor, study_id=study_id, action=action,
                 target=target_name(session, study_id=study_id, user_id=user_id), detail=detail)


def exclude_annotator(*, engine: Engine, name: str, reason: str, actor: str = "cli", study_id: int | None = None) -> bool:
    """Exclude ``name``; True if newly excluded, False if the reason of an active exclusion was updated.

    ``actor`` and ``study_id`` go to the audit log (its target is the
    person's pseudonym in that study).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ExclusionError("an exclusion needs a reason (--reason TEXT): the dataset card shows it")
    with session_scope(engine, write=True) as session:
        user = _user(session, name)
        active = session.execute(
            select(AnnotatorExclusion).where(AnnotatorExclusion.user_id == user.id, AnnotatorExclusion.included_at.is_(None))
        ).scalar_one_or_none()
        _audit(session, actor=actor, study_id=study_id, action="exclude", user_id=user.id,
               detail={"reason": reason, "updated": active is not None})
        if active is not None:
            active.reason = reason
            return False
        session.add(AnnotatorExclusion(user_id=user.id, reason=reason))
        return True


def include_annotator(*, engine: Engine, name: str, actor: str = "cli", study_id: int | None = None) -> None:
    """Count ``name``'s labels again (the exclusion stays in the history)."""
    with session_scope(engine, write=True) as session:
        user = _user(session, name)
        rows = session.execute(
            select(AnnotatorExclusion).where(AnnotatorExclusion.user_id == user.id, AnnotatorExclusion.included_at.is_(None))
        ).scalars().all()
        if not rows:
            raise ExclusionError(f"{name!r} is not excluded")
        now = utcnow()
        for row in rows:
            row.included_at = now
        _audit(session, actor=actor, study_id=study_id, action="include", user_id=user.id, detail={})


def active_exclusions(*, engine: Engine) -> list[Exclusion]:
    """Who is excluded now, by name."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(User.name, User.id, AnnotatorExclusion.reason, AnnotatorExclusion.excluded_at)
            .join(User, User.id == AnnotatorExclusion.user_id)
            .where(AnnotatorExclusion.included_at.is_(None))
            .order_by(User.name)
        ).all()
    return [Exclusion(n, uid, r, at) for n, uid, r, at in rows]


def exclusion_history(*, engine: Engine) -> list[dict]:
    """Every exclusion ever made, reversed ones included (oldest first)."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(User.name, AnnotatorExclusion.reason, AnnotatorExclusion.excluded_at, AnnotatorExclusion.included_at)
            .join(User, User.id == AnnotatorExclusion.user_id)
            .order_by(AnnotatorExclusion.id)
        ).all()
    return [
        {"annotator": n, "reason": r, "excluded_at": e.isoformat(), "included_at": i.isoformat() if i else None}
        for n, r, e, i in rows
    ]


def exclusions_key(*, engine: Engine) -> tuple:
    """The active exclusions as a hashable value: part of every report cache key."""
    return tuple((e.user_id, e.excluded_at.isoformat()) for e in active_exclusions(engine=engine))


def parse_names(text: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> sorted distinct names (blank parts ignored)."""
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return sorted({n.strip() for p in parts for n in p.split(",") if n.strip()})


def check_names(*, engine: Engine, names: Iterable[str]) -> list[str]:
    """The what-if names, each checked to be a user (else ExclusionError naming it)."""
    names = sorted(set(names))
    if not names:
        return []
    with session_scope(engine) as session:
        known = set(session.execute(select(User.name).where(User.name.in_(names))).scalars())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ExclusionError(f"no user named {', '.join(repr(n) for n in unknown)} (see: rmgap-annot users list)")
    return names


@dataclass
class CountedLabels:
    """The labels that count, and what was left out and why.

    ``labels["annotator"]`` holds each coder's public name (``ann-07``,
    ``STUDY/ann-07`` when studies are pooled: ``studies.coder_names``);
    ``stored`` and ``what_if`` name the excluded by those public names too,
    so nothing built from this (report, card, export) carries a user name or
    a platform id.
    """

    labels: pd.DataFrame
    stored: list[Exclusion]
    what_if: list[str]
    n_labels_excluded: int

    @property
    def excluded_names(self) -> list[str]:
        return sorted({e.annotator for e in self.stored} | set(self.what_if))

    def section(self) -> dict:
        """The report's / card's ``exclusions`` entry."""
        return {
            "stored": [e.as_dict() for e in self.stored],
            "what_if": list(self.what_if),
            "excluded": self.excluded_names,
            "n_labels_excluded": int(self.n_labels_excluded),
            "note": "excluded annotators' labels stay stored but count nowhere in this report",
        }


def without(labels: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """``labels`` minus the rows of the named annotators, re-indexed like a fresh load."""
    names = set(names)
    if not names or labels.empty:
        return labels
    keep = ~labels["annotator"].isin(names)
    return labels[keep].reset_index(drop=True)


def counted_labels(*, engine: Engine, benchmark_id: int, what_if: Iterable[str] = (),
                   study_ids: list[int] | None = None) -> CountedLabels:
    """``load_labels`` of the studies given (None: all of the benchmark's) without the stored exclusions
    and the what-if names (user names), annotators renamed to their public coder names."""
    from rmgap_annot.studies import coder_names  # noqa: PLC0415

    stored = active_exclusions(engine=engine)
    what_if = check_names(engine=engine, names=what_if)
    labels = load_labels(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids)
    kept = without(labels, {e.annotator for e in stored} | set(what_if))
    names = coder_names(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids)
    if len(kept):
        kept = kept.assign(annotator=[names[(s, u)] for s, u in zip(kept["study_id"], kept["user_id"])])
    # The excluded, by their public names in these studies (someone with no membership here is not listed).
    users = dict(_user_ids(engine, {e.annotator for e in stored} | set(what_if)))
    public_stored = [Exclusion(n, e.user_id, e.reason, e.excluded_at)
                     for e in stored for (s, u), n in sorted(names.items(), key=lambda kv: kv[1]) if u == e.user_id]
    stored_names = {e.annotator for e in stored}
    public_what_if = sorted(n for w in what_if if w not in stored_names
                            for (s, u), n in names.items() if u == users.get(w))
    return CountedLabels(kept, public_stored, public_what_if, len(labels) - len(kept))


def _user_ids(engine: Engine, names: set[str]) -> list[tuple[str, int]]:
    if not names:
        return []
    with session_scope(engine) as session:
        return list(session.execute(select(User.name, User.id).where(User.name.in_(sorted(names)))).all())
