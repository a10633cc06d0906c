"""A researcher's decisions about people in a study, each written to the audit log.

- **Block**: no more items in this study (``studies.label_refusal`` is the
  one check assignment and every stored label go through); the labels given
  stay stored and keep counting unless the person is also excluded.
- **Exclude / include**: the stored, reversible exclusion of
  ``rmgap_annot.exclusions`` (labels count nowhere), with its reason.
- **Delete**: a participant who withdraws consent. Everything of the person
  goes in one transaction (labels, drafts, leases, skips, flags, check
  labels, memberships, sessions, the account); the label counters follow
  through the database triggers; the deletion itself is recorded with the
  pseudonym and the numbers removed, never the name or platform id.
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from rmgap_annot import audit
from rmgap_annot.db import session_scope
from rmgap_annot.models import Label, StudyMember, User, utcnow
from rmgap_annot.studies import pseudonym


class ControlError(ValueError):
    """A decision that cannot be made as asked (unknown person, not in the study...)."""


def _user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise ControlError(f"no user named {name!r} (see: rmgap-annot users list)")
    return user


def _member(session: Session, study_id: int, user_id: int, name: str) -> StudyMember:
    member = session.execute(
        select(StudyMember).where(StudyMember.study_id == study_id, StudyMember.user_id == user_id)
    ).scalar_one_or_none()
    if member is None:
        raise ControlError(f"{name!r} is not in this study")
    return member


def target_name(session: Session, *, study_id: Optional[int], user_id: int) -> str:
    """The audit log's name for a person: their pseudonym in the study, else an opaque account number."""
    if study_id is not None:
        no = session.execute(
            select(StudyMember.pseudonym_no).where(StudyMember.study_id == study_id, StudyMember.user_id == user_id)
        ).scalar_one_or_none()
        if no is not None:
            return pseudonym(no)
    return f"account-{user_id}"


def set_blocked(*, engine: Engine, study_id: int, name: str, blocked: bool, actor: str) -> bool:
    """Block (or unblock) a person in a study; False when nothing changed."""
    with session_scope(engine, write=True) as session:
        user = _user(session, name)
        member = _member(session, study_id, user.id, name)
        if (member.blocked_at is not None) == blocked:
            return False
        member.blocked_at = utcnow() if blocked else None
        session.add(member)
        audit.record(session, actor=actor, study_id=study_id, action="block" if blocked else "unblock",
                     target=pseudonym(member.pseudonym_no))
        return True


def _user_tables() -> list:
    """Every table with a column pointing at ``user.id``: what a person leaves behind, found from the models.

    Read from the metadata rather than listed by hand, so a table added later
    (by any feature) cannot keep a deleted participant's data.
    """
    out = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name == User.__tablename__:
            continue
        for column in table.columns:
            if any(fk.target_fullname == "user.id" for fk in column.foreign_keys):
                out.append((table, column))
    return out


def delete_annotator(*, engine: Engine, name: str, actor: str) -> dict:
    """Delete a participant and everything of theirs; returns what was removed (recorded in the audit log).

    Researchers' accounts are refused (a researcher is not a participant;
    disable the account instead).
    """
    with session_scope(engine, write=True) as session:
        user = _user(session, name)
        if user.role != "annotator":
            raise ControlError(f"{name!r} is a {user.role}, not an annotator: disable the account instead")
        members = session.execute(select(StudyMember).where(StudyMember.user_id == user.id)).scalars().all()
        labels_by_study = dict(session.execute(
            select(Label.study_id, func.count()).where(Label.user_id == user.id).group_by(Label.study_id)
        ).all())
        removed: dict[str, int] = {}
        # Children first: the membership and the account go last.
        tables = sorted(_user_tables(), key=lambda tc: tc[0].name == StudyMember.__tablename__)
        for table, column in tables:
            n = session.execute(delete(table).where(column == user.id)).rowcount or 0
            if n:
                removed[table.name] = removed.get(table.name, 0) + n
        session.execute(delete(User).where(User.id == user.id))
        studies = {m.study_id: m.pseudonym_no for m in members}
        for sid in sorted(set(studies) | set(labels_by_study)):
            no = studies.get(sid)
            audit.record(session, actor=actor, study_id=sid, action="delete",
                         target=pseudonym(no) if no is not None else f"account-{user.id}",
                         detail={"pseudonym_no": no, "labels": int(labels_by_study.get(sid, 0)),
                                 "reason": "consent withdrawn"})
        if not studies and not labels_by_study:
            audit.record(session, actor=actor, study_id=None, action="delete", target=f"account-{user.id}",
                         detail={"labels": 0, "reason": "consent withdrawn"})
        return removed
