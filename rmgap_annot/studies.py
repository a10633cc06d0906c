"""Studies: several labelling runs per benchmark, who is in each, and their public names.

A study is what people label: its settings, items, members, link and codes.
A benchmark imported before studies existed (or labelled from a script)
gets one study named after it, so every call that names only a benchmark
means "its only study", and asks for a name once there are several.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rmgap_annot.db import session_scope
from rmgap_annot.models import Benchmark, Label, Study, StudyMember, utcnow

STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ALL = "all"


class StudyNotFound(LookupError):
    """No study answers to the name given, or a name is needed and none was given."""


@dataclass(frozen=True)
class StudyInfo:
    id: int
    name: str
    benchmark_id: int
    benchmark: str
    format: str
    labels: int
    members: int


def validate_study_name(name: str) -> str:
    name = (name or "").strip()
    if not STUDY_NAME.match(name) or name == ALL:
        raise ValueError(
            f"a study name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            f" (and not {ALL!r}); got {name!r}"
        )
    return name


def _free_name(session: Session, wanted: str) -> str:
    taken = set(session.execute(select(Study.name).where(Study.name.like(f"{wanted}%"))).scalars())
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def default_study(session: Session, benchmark_id: int, *, lock: bool = False) -> Study | None:
    """The benchmark's first study (its only one, unless more were created)."""
    stmt = select(Study).where(Study.benchmark_id == benchmark_id).order_by(Study.id).limit(1)
    return session.execute(stmt.with_for_update() if lock else stmt).scalars().first()


def new_study(session: Session, *, benchmark_id: int, name: str | None = None) -> Study:
    """Add a study (not yet materialised: ``assignment`` fills its items)."""
    if name is None:
        bench = session.get(Benchmark, benchmark_id)
        if bench is None:
            raise StudyNotFound(f"no benchmark with id {benchmark_id}")
        name = _free_name(session, re.sub(r"[^A-Za-z0-9._-]", "-", bench.name)[:60] or "study")
    study = Study(name=name, benchmark_id=benchmark_id)
    session.add(study)
    session.flush()
    return study


def list_studies(*, engine: Engine, benchmark_id: int | None = None) -> list[StudyInfo]:
    with session_scope(engine) as session:
        labels = dict(session.execute(select(Label.study_id, func.count()).group_by(Label.study_id)).all())
        members = dict(session.execute(select(StudyMember.study_id, func.count()).group_by(StudyMember.study_id)).all())
        stmt = select(Study.id, Study.name, Study.benchmark_id, Benchmark.name, Benchmark.format).join(
            Benchmark, Benchmark.id == Study.benchmark_id
        )
        if benchmark_id is not None:
            stmt = stmt.where(Study.benchmark_id == benchmark_id)
        rows = session.execute(stmt.order_by(Study.id)).all()
    return [StudyInfo(r[0], r[1], r[2], r[3], r[4], labels.get(r[0], 0), members.get(r[0], 0)) for r in rows]


def resolve_study(*, engine: Engine, name: str | None, benchmark_id: int | None = None) -> int:
    """A study id from a ``--study`` value: a name, or the only study (of the benchmark, if given).

    With several studies and no name, the error lists them, so a script
    never labels or reports the wrong run by accident.
    """
    studies = list_studies(engine=engine, benchmark_id=benchmark_id)
    if name:
        for s in studies:
            if s.name == name:
                return s.id
        known = ", ".join(s.name for s in studies) or "none"
        raise StudyNotFound(f"no study named {name!r} (studies: {known})")
    if len(studies) == 1:
        return studies[0].id
    if not studies:
        raise StudyNotFound("there is no study yet: import a benchmark first (it gets one study)")
    raise StudyNotFound("there are several studies; name one with --study NAME (" + ", ".join(s.name for s in studies) + ")")


def _last_number(session: Session, study_id: int) -> int:
    """The highest pseudonym number the study ever gave, deleted participants' included.

    A participant who withdrew is deleted with their membership; the next
    arrival must not inherit their ``ann-07``, or a published name would
    stand for two people. Their number survives in the deletion's audit event.
    """
    from rmgap_annot.models import AuditEvent

    live = session.execute(
        select(func.max(StudyMember.pseudonym_no)).where(StudyMember.study_id == study_id)
    ).scalar_one() or 0
    deleted = session.execute(
        select(AuditEvent.detail_json).where(AuditEvent.study_id == study_id, AuditEvent.action == "delete")
    ).scalars().all()
    gone = [json.loads(d or "{}").get("pseudonym_no") or 0 for d in deleted]
    return max([live, *gone])


def ensure_member(session: Session, *, study_id: int, user_id: int, **fields) -> StudyMember:  # noqa: ANN003
    """The person's membership of the study, created with the next pseudonym number on first use.

    Called inside the caller's write transaction (the first label, a crowd
    arrival), so the pseudonym numbers follow arrival order without gaps.
    """
    member = session.execute(
        select(StudyMember).where(StudyMember.study_id == study_id, StudyMember.user_id == user_id)
    ).scalars().first()
    if member is not None:
        return member
    number = _last_number(session, study_id) + 1
    member = StudyMember(study_id=study_id, user_id=user_id, pseudonym_no=number, **fields)
    session.add(member)
    session.flush()
    return member


def ensure_members(session: Session, *, study_id: int, user_ids) -> None:  # noqa: ANN001
    """Members for many people at once (label imports), numbered in the order given."""
    have = set(session.execute(select(StudyMember.user_id).where(StudyMember.study_id == study_id)).scalars())
    number = _last_number(session, study_id)
    rows = []
    for uid in user_ids:
        if uid in have:
            continue
        have.add(uid)
        number += 1
        rows.append({"study_id": study_id, "user_id": uid, "pseudonym_no": number, "joined_at": utcnow()})
    if rows:
        session.execute(insert(StudyMember), rows)


def pseudonym(number: int, width: int = 2) -> str:
    return f"ann-{number:0{width}d}"


def pseudonyms(*, engine: Engine, study_ids: list[int] | None = None) -> dict[tuple[int, int], str]:
    """(study id, user id) -> the public name (``ann-07``), zero-padded to the study's size."""
    with session_scope(engine) as session:
        stmt = select(StudyMember.study_id, StudyMember.user_id, StudyMember.pseudonym_no)
        if study_ids is not None:
            stmt = stmt.where(StudyMember.study_id.in_(study_ids))
        rows = session.execute(stmt).all()
    widths: dict[int, int] = {}
    for sid, _, no in rows:
        widths[sid] = max(widths.get(sid, 2), len(str(no)))
    return {(sid, uid): pseudonym(no, widths[sid]) for sid, uid, no in rows}


def coder_names(*, engine: Engine, benchmark_id: int, study_ids: list[int] | None = None) -> dict[tuple[int, int], str]:
    """(study id, user id) -> the name a coder has in analyses and everything published from them.

    One study: its pseudonym (``ann-07``). Several studies pooled (``--study
    all``): ``STUDY/ann-07``. Pooling keeps each study's labels as a coder of
    their own, so a person who labelled the same item in a pilot and in the
    main run counts twice on it (each study's labels stay what they were:
    unique per person and item); the report says how often that happens.
    A label whose person has no membership row (written by hand) gets one
    here, numbered after the study's members.
    """
    with session_scope(engine) as session:
        stmt = select(Study.id, Study.name).where(Study.benchmark_id == benchmark_id)
        if study_ids is not None:
            stmt = stmt.where(Study.id.in_(study_ids))
        studies = dict(session.execute(stmt).all())
        missing = session.execute(
            select(Label.study_id, Label.user_id).distinct()
            .outerjoin(StudyMember, (StudyMember.study_id == Label.study_id) & (StudyMember.user_id == Label.user_id))
            .where(Label.study_id.in_(list(studies)), StudyMember.id.is_(None))
            .order_by(Label.study_id, Label.user_id)
        ).all()
    if missing:
        from sqlalchemy.exc import IntegrityError  # noqa: PLC0415

        try:
            with session_scope(engine, write=True) as session:
                for sid, uid in missing:
                    ensure_member(session, study_id=sid, user_id=uid)
        except IntegrityError:
            pass  # a concurrent report numbered them first: read theirs
    names = pseudonyms(engine=engine, study_ids=list(studies))
    if len(studies) > 1:
        return {(sid, uid): f"{studies[sid]}/{n}" for (sid, uid), n in names.items()}
    return names


def study_for_user(*, engine: Engine, user_id: int) -> int | None:
    """The study an annotator labels: the one they joined last, else the newest benchmark's first study."""
    with session_scope(engine) as session:
        joined = session.execute(
            select(StudyMember.study_id)
            .where(StudyMember.user_id == user_id)
            .order_by(StudyMember.joined_at.desc(), StudyMember.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if joined is not None:
            return joined
        latest = session.execute(select(func.max(Benchmark.id))).scalar_one_or_none()
        if latest is None:
            return None
        study = default_study(session, latest)
        return study.id if study is not None else None


def item_study_id(session: Session, item_id: int) -> int:
    """The first study of an item's benchmark: where a label written without a study goes."""
    from rmgap_annot.models import Item

    item = session.get(Item, item_id)
    study = default_study(session, item.benchmark_id) if item is not None else None
    if study is None:
        raise StudyNotFound(f"item {item_id} has no study")
    return study.id


# --- who may label -------------------------------------------------------------------


def label_refusal(session: Session, *, study_id: int, user_id: int) -> str | None:
    """Why this person may not label in this study now, or None when they may.

    The one permission check behind assignment and every stored label: a
    disabled account (anywhere) and a block (in this study) both stop a
    person, and both are read inside the caller's write transaction, so a
    browser left open stores nothing more once either is set.
    """
    from rmgap_annot.models import User

    user = session.get(User, user_id)
    if user is None:
        return f"no user with id {user_id}"
    if not user.active:
        return "this account is disabled"
    blocked = session.execute(
        select(StudyMember.blocked_at).where(StudyMember.study_id == study_id, StudyMember.user_id == user_id)
    ).scalar_one_or_none()
    if blocked is not None:
        return "you can no longer take part in this study"
    return None


def may_label(session: Session, *, study_id: int, user_id: int) -> bool:
    return label_refusal(session, study_id=study_id, user_id=user_id) is None


def public_names_by_account(*, engine: Engine, benchmark_id: int) -> dict[str, str]:
    """Account name -> the name(s) the report gives that person (``ann-03``, or ``pilot/ann-03, main/ann-01``).

    For researcher pages that pick people by account (exclusions, what-ifs)
    while the numbers they change name coders by pseudonym.
    """
    from rmgap_annot.models import User

    coders = coder_names(engine=engine, benchmark_id=benchmark_id)
    with session_scope(engine) as session:
        names = dict(session.execute(select(User.id, User.name)).all())
    out: dict[str, list[str]] = {}
    for (_, uid), coder in sorted(coders.items()):
        out.setdefault(names.get(uid, str(uid)), []).append(coder)
    return {account: ", ".join(sorted(c)) for account, c in out.items()}


def assign_to_study(*, engine: Engine, study_id: int, names: list[str], actor: str = "cli") -> list[str]:
    """Make these accounts label this study from now on (lab accounts; participants arrive by its link).

    An annotator labels the study they joined last (``study_for_user``), so
    assigning moves their ``joined_at`` to now; their labels elsewhere stay
    where they are. Unknown names, researchers and crowd participants of
    another study are refused before anything changes. Returns the
    pseudonyms, as the audit log records them.
    """
    from rmgap_annot import audit
    from rmgap_annot.models import User

    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise ValueError("name at least one annotator")
    with session_scope(engine, write=True) as session:
        if session.get(Study, study_id) is None:
            raise StudyNotFound(f"no study with id {study_id}")
        users = {u.name: u for u in session.execute(select(User).where(User.name.in_(names))).scalars()}
        problems = [f"{n!r}: no such account" for n in names if n not in users]
        problems += [f"{n!r}: a researcher, not an annotator" for n in names if n in users and users[n].role != "annotator"]
        crowd = session.execute(
            select(StudyMember.user_id).where(StudyMember.user_id.in_([u.id for u in users.values()]),
                                              StudyMember.platform.is_not(None), StudyMember.study_id != study_id)
        ).scalars().all()
        problems += [f"{u.name!r}: a crowd participant of another study (they arrive by its link)"
                     for u in users.values() if u.id in set(crowd)]
        if problems:
            raise ValueError("; ".join(problems))
        out = []
        for name in names:
            member = ensure_member(session, study_id=study_id, user_id=users[name].id)
            member.joined_at = utcnow()
            session.add(member)
            out.append(pseudonym(member.pseudonym_no))
        audit.record(session, actor=actor, study_id=study_id, action="assign", target=", ".join(out),
                     detail={"people": len(out)})
        return out
