"""Which item an annotator labels next.

The rules, in the order they apply:

1. An annotator never sees an item twice, and (when ``one_item_per_record``)
   never two items of one record: having read a record's four responses under
   one prompt, they would recognise them under the next and answer from memory.
2. An item is never pushed past ``labels_per_item``: labels plus the live
   leases of *other* annotators count against the target, so two people
   asking at once cannot both take the last slot.
3. ``quota_per_annotator`` caps how many labels one person gives.
4. Among what is left, items closest to completion come first (agreement
   needs several labels on the same item, so it accrues early), then the
   domain furthest behind its target (every domain gets its share even if the
   study stops early), then a per-annotator pseudo-random order (annotators
   spread over records instead of all queueing behind the same one).

The claim is one write transaction: ``BEGIN IMMEDIATE`` on SQLite, a
``SELECT ... FOR UPDATE`` on the Study row on PostgreSQL. A lease expires
after ``lease_seconds`` so an annotator who walks away frees the slot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, and_, case, delete, func, insert, literal, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rmgap_annot.db import session_scope
from rmgap_annot.models import Benchmark, Flag, Item, Label, Lease, Record, Skip, Study, StudyItem, utcnow
from rmgap_annot.settings import DOMAINS
from rmgap_annot.studies import default_study, may_label, new_study, validate_study_name

MODES = ("pick", "ranking")
CHECK_ACTIONS = ("screen-out", "warn")
# What a new study takes over from the one it is copied from.
COPIED_SETTINGS = (
    "labels_per_item", "mode", "records_per_domain", "sample_seed", "quota_per_annotator", "one_item_per_record",
    "lease_seconds", "guidelines_md", "questions_json", "consent_md", "check_rate", "check_fail_limit",
    "check_action", "qualification_items", "qualification_pass",
)


class StudyError(ValueError):
    """A study setting a researcher asked for is not valid."""


@dataclass(frozen=True)
class Progress:
    done: int  # labels this annotator gave on the study's items
    target: int  # their quota, or done + remaining when there is no quota
    remaining: int  # items they could still be given (0: they are finished)

    @property
    def fraction(self) -> float:
        return 1.0 if self.target <= 0 else min(1.0, self.done / self.target)

    @property
    def finished(self) -> bool:
        return self.remaining == 0


# --- the study -----------------------------------------------------------------


def _sample_items(session: Session, benchmark_id: int, records_per_domain: int | None, seed: int) -> list:
    """Item ids in the study: every item, or all items of N seeded records per domain.

    Records are sampled (not items) so each sampled record keeps its twelve
    items: consistency across paraphrases needs whole groups.
    """
    rows = session.execute(
        select(Item.id, Item.record_pk, Item.domain).where(Item.benchmark_id == benchmark_id).order_by(Item.id)
    ).all()
    if records_per_domain is None:
        return rows
    records_by_domain: dict[str, list[int]] = {}
    for r in rows:
        pks = records_by_domain.setdefault(r.domain, [])
        if not pks or pks[-1] != r.record_pk:
            if r.record_pk not in pks:
                pks.append(r.record_pk)
    chosen: set[int] = set()
    for domain in sorted(records_by_domain):
        pks = sorted(records_by_domain[domain])
        rng = random.Random(f"{seed}:{domain}")
        chosen.update(rng.sample(pks, min(records_per_domain, len(pks))))
    return [r for r in rows if r.record_pk in chosen]


def _materialise(session: Session, study: Study) -> None:
    session.execute(delete(StudyItem).where(StudyItem.study_id == study.id))
    ids = _sample_items(session, study.benchmark_id, study.records_per_domain, study.sample_seed)
    # Seed the counters with the study's labels already given; triggers keep them from here on.
    counts = dict(
        session.execute(
            select(Label.item_id, func.count()).where(Label.study_id == study.id).group_by(Label.item_id)
        ).all()
    )
    if ids:
        session.execute(
            insert(StudyItem),
            [{"study_id": study.id, "item_id": r.id, "n_labels": counts.get(r.id, 0), "domain": r.domain,
              "record_pk": r.record_pk} for r in ids],
        )


def _study_for_update(session: Session, benchmark_id: int | None = None, study_id: int | None = None) -> Study:
    """The study's row (by id, else the benchmark's first), locked on PostgreSQL, created on first use."""
    if study_id is not None:
        study = session.execute(select(Study).where(Study.id == study_id).with_for_update()).scalars().first()
        if study is None:
            raise StudyError(f"no study with id {study_id}")
        return study
    if benchmark_id is None:
        raise StudyError("name a study or a benchmark")
    study = default_study(session, benchmark_id, lock=True)
    if study is None:
        # On PostgreSQL, annotators arriving together after an import would
        # all insert the row and all but one fail on the unique constraint:
        # the benchmark row's lock makes them wait, and the second look (a
        # new snapshot) finds the row the first one made. (SQLite's writer
        # lock already serialises this.)
        if session.execute(select(Benchmark.id).where(Benchmark.id == benchmark_id).with_for_update()).first() is None:
            raise StudyError(f"no benchmark with id {benchmark_id}")
        study = default_study(session, benchmark_id, lock=True)
        if study is not None:
            return study
        study = new_study(session, benchmark_id=benchmark_id)
        _materialise(session, study)
    return study


def get_study(*, engine: Engine, benchmark_id: int | None = None, study_id: int | None = None) -> Study:
    """A study's settings: by id, else the benchmark's first (the defaults are created on first use)."""
    with session_scope(engine) as session:
        if study_id is not None:
            study = session.get(Study, study_id)
            if study is None:
                raise StudyError(f"no study with id {study_id}")
            return study
        study = default_study(session, benchmark_id) if benchmark_id is not None else None
        if study is not None:
            return study
    with session_scope(engine, write=True) as session:
        return _study_for_update(session, benchmark_id)


def create_study(*, engine: Engine, name: str, benchmark_id: int, copy_from: int | None = None) -> Study:
    """A new study over a benchmark (a pilot, the main run, one per domain), with every item in it.

    ``copy_from`` starts from another study's settings (guidelines,
    questions, codes), never from its link token, people or labels.
    """
    name = validate_study_name(name)
    with session_scope(engine, write=True) as session:
        if session.execute(select(Study.id).where(Study.name == name)).first() is not None:
            raise StudyError(f"a study named {name!r} already exists")
        if session.get(Benchmark, benchmark_id) is None:
            raise StudyError(f"no benchmark with id {benchmark_id}")
        study = new_study(session, benchmark_id=benchmark_id, name=name)
        if copy_from is not None:
            source = session.get(Study, copy_from)
            for field in COPIED_SETTINGS:
                setattr(study, field, getattr(source, field))
            session.add(study)
            session.flush()
        _materialise(session, study)
        return study


def update_study(
    *,
    engine: Engine,
    benchmark_id: int | None = None,
    study_id: int | None = None,
    labels_per_item: int | None = None,
    mode: str | None = None,
    records_per_domain: int | None = None,
    sample_seed: int | None = None,
    quota_per_annotator: int | None = None,
    one_item_per_record: bool | None = None,
    lease_seconds: int | None = None,
    guidelines_md: str | None = None,
    actor: str = "cli",
    **crowd: object,
) -> Study:
    """Change study settings; only the arguments given change.

    ``records_per_domain=0`` and ``quota_per_annotator=0`` mean "no limit"
    (None means "unchanged"). Changing the sample re-materialises the item
    list; labels already given are kept whether or not their item stays in.
    """
    if labels_per_item is not None and labels_per_item < 1:
        raise StudyError("labels per item must be at least 1")
    if mode is not None and mode not in MODES:
        raise StudyError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if records_per_domain is not None and records_per_domain < 0:
        raise StudyError("records per domain must be 0 (all) or more")
    if quota_per_annotator is not None and quota_per_annotator < 0:
        raise StudyError("quota per annotator must be 0 (none) or more")
    if lease_seconds is not None and lease_seconds < 10:
        raise StudyError("a lease must last at least 10 seconds")
    crowd = _checked_crowd_settings(crowd)
    with session_scope(engine, write=True) as session:
        study = _study_for_update(session, benchmark_id, study_id)
        before = {f: getattr(study, f) for f in AUDITED_SETTINGS}
        resample = False
        if labels_per_item is not None:
            study.labels_per_item = labels_per_item
        if mode is not None:
            study.mode = mode
        if records_per_domain is not None:
            new = records_per_domain or None
            resample |= new != study.records_per_domain
            study.records_per_domain = new
        if sample_seed is not None:
            resample |= sample_seed != study.sample_seed and study.records_per_domain is not None
            study.sample_seed = sample_seed
        if quota_per_annotator is not None:
            study.quota_per_annotator = quota_per_annotator or None
        if one_item_per_record is not None:
            study.one_item_per_record = one_item_per_record
        if lease_seconds is not None:
            study.lease_seconds = lease_seconds
        if guidelines_md is not None:
            study.guidelines_md = guidelines_md
        for field, value in crowd.items():
            setattr(study, field, value)
        study.updated_at = utcnow()
        session.add(study)
        session.flush()
        if resample:
            _materialise(session, study)
        _audit_settings(session, study, before, actor)
        return study


# Every setting a researcher changes; texts and the link token are logged as "changed", without their value.
AUDITED_SETTINGS = (
    "labels_per_item", "mode", "records_per_domain", "sample_seed", "quota_per_annotator", "one_item_per_record",
    "lease_seconds", "guidelines_md", "questions_json", "public_link", "link_token", "consent_md", "completion_code",
    "screenout_code", "check_rate", "check_fail_limit", "check_action", "qualification_items", "qualification_pass",
)
UNLOGGED_VALUES = ("guidelines_md", "questions_json", "consent_md", "link_token")


def _audit_settings(session: Session, study: Study, before: dict, actor: str) -> None:
    """One audit event naming the settings that changed (none: no event)."""
    from rmgap_annot import audit  # noqa: PLC0415

    changed = {f: (before[f], getattr(study, f)) for f in AUDITED_SETTINGS if before[f] != getattr(study, f)}
    if not changed:
        return
    detail = {f: ("changed" if f in UNLOGGED_VALUES else {"from": old, "to": new}) for f, (old, new) in changed.items()}
    audit.record(session, actor=actor, study_id=study.id, action="settings", target=", ".join(changed), detail=detail)


def _checked_crowd_settings(settings: dict) -> dict:
    """The crowd and question settings given, validated; None values mean "unchanged" except where noted."""
    allowed = {"questions_json", "consent_md", "completion_code", "screenout_code", "public_link", "link_token",
               "check_rate", "check_fail_limit", "check_action", "qualification_items", "qualification_pass"}
    unknown = set(settings) - allowed
    if unknown:
        raise TypeError(f"unknown study settings: {', '.join(sorted(unknown))}")
    out = {k: v for k, v in settings.items() if v is not None}
    rate = out.get("check_rate")
    if rate is not None and not 0 <= float(rate) <= 0.5:
        raise StudyError("the check rate is a fraction from 0 to 0.5 (e.g. 0.05)")
    limit = out.get("check_fail_limit")
    if limit is not None and int(limit) < 0:
        raise StudyError("the check fail limit must be 0 (no limit) or more")
    if limit == 0:
        out["check_fail_limit"] = None
    if out.get("check_action") is not None and out["check_action"] not in CHECK_ACTIONS:
        raise StudyError(f"the check action is one of {', '.join(CHECK_ACTIONS)}")
    if out.get("qualification_items") is not None and int(out["qualification_items"]) < 0:
        raise StudyError("qualification items must be 0 (none) or more")
    passing = out.get("qualification_pass")
    if passing is not None and not 0 < float(passing) <= 1:
        raise StudyError("the qualification pass mark is a fraction above 0 and at most 1 (e.g. 0.8)")
    from rmgap_annot.crowd.links import LinkError, validate_code  # noqa: PLC0415

    for code in ("completion_code", "screenout_code"):
        if out.get(code) is not None:
            try:
                validate_code(out[code])  # it goes into the platform's return URL: the link module's charset
            except LinkError as exc:
                raise StudyError(f"{code.replace('_', ' ')}: {exc}") from None
    return out


def study_item_count(*, engine: Engine, benchmark_id: int | None = None, study_id: int | None = None) -> dict[str, int]:
    """Items in the study per domain (for the Study page)."""
    study = get_study(engine=engine, benchmark_id=benchmark_id, study_id=study_id)
    with session_scope(engine) as session:
        rows = session.execute(
            select(StudyItem.domain, func.count()).where(StudyItem.study_id == study.id).group_by(StudyItem.domain)
        ).all()
    counts = dict(rows)
    if set(counts) <= set(DOMAINS):
        return {d: counts.get(d, 0) for d in DOMAINS}
    return dict(sorted(counts.items()))  # another benchmark's top-level categories


# --- choosing the next item ------------------------------------------------------


def _user_done(session: Session, study_id: int, user_id: int) -> int:
    return session.execute(
        select(func.count())
        .select_from(Label)
        .join(StudyItem, and_(StudyItem.item_id == Label.item_id, StudyItem.study_id == study_id))
        .where(Label.user_id == user_id, Label.study_id == study_id)
    ).scalar_one()


def _candidates(session: Session, study: Study, user_id: int, now: datetime, *, count_leases: bool,
                skipped: bool = True):
    """A select of (item id, domain, fill) an annotator may be given, and the fill expression.

    Items the annotator flagged are never offered again; items they skipped
    only when ``skipped`` (assignment asks for them once nothing else is left).
    """
    fill = StudyItem.n_labels
    stmt = select(StudyItem.item_id.label("id"), StudyItem.domain, StudyItem.record_pk)
    if count_leases:
        # Live leases are few (one per active annotator): read them first and
        # fold them in as constants; a per-row lease subquery costs ~6 ms here.
        leased = dict(
            session.execute(
                select(Lease.item_id, func.count())
                .where(Lease.study_id == study.id, Lease.expires_at > now, Lease.user_id != user_id)
                .group_by(Lease.item_id)
            ).all()
        )
        if leased:
            fill = StudyItem.n_labels + case(leased, value=StudyItem.item_id, else_=0)
    mine = select(Label.item_id).where(Label.user_id == user_id, Label.study_id == study.id)
    stmt = stmt.where(
        StudyItem.study_id == study.id,
        StudyItem.n_labels < study.labels_per_item,  # the counters are what this scan reads
        fill < study.labels_per_item,
        StudyItem.item_id.not_in(mine),
        StudyItem.item_id.not_in(select(Flag.item_id).where(Flag.user_id == user_id)),
    )
    if not skipped:
        stmt = stmt.where(StudyItem.item_id.not_in(
            select(Skip.item_id).where(Skip.user_id == user_id, Skip.study_id == study.id)))
    if study.one_item_per_record:
        my_records = select(Item.record_pk).join(Label, Label.item_id == Item.id).where(
            Label.user_id == user_id, Label.study_id == study.id)
        stmt = stmt.where(StudyItem.record_pk.not_in(my_records))
    return stmt.add_columns(fill.label("fill")), fill


def _domain_shortfall(session: Session, study: Study) -> dict[str, float]:
    """Share of each domain's label target already met (lower = further behind)."""
    capped = case((StudyItem.n_labels < study.labels_per_item, StudyItem.n_labels), else_=study.labels_per_item)
    rows = session.execute(
        select(StudyItem.domain, func.count(), func.sum(capped))
        .where(StudyItem.study_id == study.id)
        .group_by(StudyItem.domain)
    ).all()
    return {d: (done or 0) / (n * study.labels_per_item) for d, n, done in rows if n}


def _labels_on(session: Session, study_id: int, item_id: int) -> int:
    return session.execute(
        select(func.count()).select_from(Label).where(Label.item_id == item_id, Label.study_id == study_id)
    ).scalar_one()


def _live_lease(session: Session, study: Study, user_id: int, now: datetime) -> Lease | None:
    return (
        session.execute(
            select(Lease)
            .join(StudyItem, and_(StudyItem.item_id == Lease.item_id, StudyItem.study_id == study.id))
            .where(Lease.user_id == user_id, Lease.study_id == study.id, Lease.expires_at > now)
            .where(Lease.item_id.not_in(select(Label.item_id).where(Label.user_id == user_id, Label.study_id == study.id)))
            .order_by(Lease.claimed_at.desc())
        )
        .scalars()
        .first()
    )


def next_item(*, engine: Engine, user_id: int, benchmark_id: int | None = None, study_id: int | None = None,
              now: datetime | None = None) -> int | None:
    """The item this annotator should label now, or None when nothing is left for them.

    A live lease is reused (a refresh shows the same item) and extended;
    otherwise a new item is claimed in the same write transaction that
    checked it was free.
    """
    now = now or utcnow()
    with session_scope(engine, write=True) as session:
        study = _study_for_update(session, benchmark_id, study_id)
        if not may_label(session, study_id=study.id, user_id=user_id):
            # Blocked in this study or disabled: nothing more, and the item they held goes back.
            session.execute(delete(Lease).where(Lease.user_id == user_id, Lease.study_id == study.id))
            return None
        expires = now + timedelta(seconds=study.lease_seconds)
        lease = _live_lease(session, study, user_id, now)
        if lease is not None and _labels_on(session, study.id, lease.item_id) >= study.labels_per_item:
            # Filled meanwhile by other means (an import, a lowered target): let it go.
            session.delete(lease)
            lease = None
        if lease is not None:
            lease.expires_at = expires
            session.add(lease)
            return lease.item_id
        if study.quota_per_annotator is not None and _user_done(session, study.id, user_id) >= study.quota_per_annotator:
            return None
        shortfall = _domain_shortfall(session, study)
        domain_rank = case(
            *[(StudyItem.domain == d, i) for i, d in enumerate(sorted(shortfall, key=lambda d: (shortfall[d], d)))],
            else_=literal(len(shortfall)),
        ) if shortfall else literal(0)
        # Knuth's multiplicative hash: a fixed, per-annotator shuffle computed in SQL.
        # The constant is a 64-bit literal: as a plain parameter PostgreSQL would
        # type it INTEGER and overflow ("integer out of range").
        spread = (StudyItem.item_id * literal(2654435761, BigInteger) + user_id * 40503) % 1000003
        row = None
        for with_skipped in (False, True):  # what the annotator skipped comes back only when nothing else is left
            stmt, fill = _candidates(session, study, user_id, now, count_leases=True, skipped=with_skipped)
            row = session.execute(stmt.order_by(fill.desc(), domain_rank, spread, StudyItem.item_id).limit(1)).first()
            if row is not None:
                break
        # The annotator holds one item at a time; expired leases of anyone are garbage.
        session.execute(delete(Lease).where((Lease.user_id == user_id) | (Lease.expires_at <= now)))
        if row is None:
            return None
        session.add(Lease(study_id=study.id, item_id=row.id, user_id=user_id, claimed_at=now, expires_at=expires))
        return row.id


def hold_item(*, engine: Engine, user_id: int, item_id: int, study_id: int | None = None,
              now: datetime | None = None) -> bool:
    """Renew this annotator's lease on the item they have open; True when they hold it.

    The page calls this on every rerun (and on a timer while the annotator
    reads), so the item does not go to someone else under them. A lease that
    already expired is taken again only while the item has room; otherwise
    the annotator keeps the item on screen and their label will be ``late``.
    """
    now = now or utcnow()
    with session_scope(engine, write=True) as session:
        item = session.get(Item, item_id)
        if item is None:
            return False
        study = _study_for_update(session, item.benchmark_id, study_id)
        if not may_label(session, study_id=study.id, user_id=user_id):
            return False
        expires = now + timedelta(seconds=study.lease_seconds)
        lease = session.execute(select(Lease).where(
            Lease.user_id == user_id, Lease.item_id == item_id, Lease.study_id == study.id)).scalars().first()
        if lease is not None and lease.expires_at > now:
            lease.expires_at = expires
            session.add(lease)
            return True
        others = session.execute(
            select(func.count()).select_from(Lease)
            .where(Lease.study_id == study.id, Lease.item_id == item_id, Lease.user_id != user_id, Lease.expires_at > now)
        ).scalar_one()
        if _labels_on(session, study.id, item_id) + others >= study.labels_per_item:
            return False
        session.execute(delete(Lease).where(Lease.user_id == user_id))  # one item at a time
        session.add(Lease(study_id=study.id, item_id=item_id, user_id=user_id, claimed_at=now, expires_at=expires))
        return True


def release_lease(*, session: Session, user_id: int, item_id: int, study_id: int | None = None) -> None:
    """Free an item once labelled (called inside the label's own transaction)."""
    stmt = delete(Lease).where(Lease.user_id == user_id, Lease.item_id == item_id)
    session.execute(stmt if study_id is None else stmt.where(Lease.study_id == study_id))


def progress(*, engine: Engine, user_id: int, benchmark_id: int | None = None, study_id: int | None = None) -> Progress:
    """How far this annotator is: labels given, their target, what is left to give."""
    study = get_study(engine=engine, benchmark_id=benchmark_id, study_id=study_id)
    now = utcnow()
    with session_scope(engine) as session:
        done = _user_done(session, study.id, user_id)
        stmt, _ = _candidates(session, study, user_id, now, count_leases=False)
        if study.one_item_per_record:
            # One item per record: what is left is bounded by the records left.
            sub = stmt.subquery()
            available = session.execute(select(func.count(func.distinct(sub.c.record_pk)))).scalar_one()
        else:
            available = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    if study.quota_per_annotator is not None:
        remaining = max(0, min(available, study.quota_per_annotator - done))
        return Progress(done=done, target=study.quota_per_annotator, remaining=remaining)
    return Progress(done=done, target=done + available, remaining=available)


@dataclass(frozen=True)
class StudyOverview:
    items: int
    labels_per_item: int
    labels: int  # labels on study items
    complete_items: int  # items that reached labels_per_item
    per_annotator: dict[int, int]  # user id -> labels on study items
    over_target_items: int = 0  # items with more labels than labels_per_item (late labels do that)
    late_labels: int = 0  # labels submitted after their lease expired (kept, counted apart)


def overview(*, engine: Engine, benchmark_id: int | None = None, study_id: int | None = None) -> StudyOverview:
    """Study-wide counts for the researcher's Study and Team pages."""
    study = get_study(engine=engine, benchmark_id=benchmark_id, study_id=study_id)
    with session_scope(engine) as session:
        n_items = session.execute(
            select(func.count()).select_from(StudyItem).where(StudyItem.study_id == study.id)
        ).scalar_one()
        labels, complete = session.execute(
            select(
                func.coalesce(func.sum(StudyItem.n_labels), 0),
                func.count().filter(StudyItem.n_labels >= study.labels_per_item),
            ).where(StudyItem.study_id == study.id)
        ).one()
        per_user = dict(
            session.execute(
                select(Label.user_id, func.count())
                .join(StudyItem, and_(StudyItem.item_id == Label.item_id, StudyItem.study_id == study.id))
                .where(Label.study_id == study.id)
                .group_by(Label.user_id)
            ).all()
        )
        over = session.execute(
            select(func.count()).where(StudyItem.study_id == study.id, StudyItem.n_labels > study.labels_per_item)
        ).scalar_one()
        late = session.execute(
            select(func.count())
            .select_from(Label)
            .join(StudyItem, and_(StudyItem.item_id == Label.item_id, StudyItem.study_id == study.id))
            .where(Label.late.is_(True), Label.study_id == study.id)
        ).scalar_one()
    return StudyOverview(n_items, study.labels_per_item, int(labels), int(complete), per_user, int(over), int(late))


def record_of_item(*, engine: Engine, item_id: int) -> str | None:
    """The RMGAP record id of an item (researcher views only)."""
    with session_scope(engine) as session:
        return session.execute(
            select(Record.record_id).join(Item, Item.record_pk == Record.id).where(Item.id == item_id)
        ).scalar_one_or_none()


def default_benchmark_id(*, engine: Engine) -> int | None:
    """The benchmark annotators label: the most recently imported one."""
    with session_scope(engine) as session:
        return session.execute(select(func.max(Benchmark.id))).scalar_one_or_none()
