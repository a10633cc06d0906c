"""Assignment rules: target, one item per record, quota, leases, races, balance."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.assignment import StudyError, get_study, next_item, progress, update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.models import Item, Label, Lease, StudyItem, utcnow
from rmgap_annot.synthetic import write_jsonl


def users(engine, n: int, prefix: str = "ann") -> list[int]:
    return [create_user(engine=engine, name=f"{prefix}{i}", role="annotator") for i in range(n)]


def label(engine, user_id: int, item_id: int) -> int:
    return submit_label(engine=engine, user_id=user_id, item_id=item_id, choice_key="response1", naturalness=4)


def item_row(engine, item_id: int) -> Item:
    with session_scope(engine) as s:
        return s.get(Item, item_id)


def label_counts(engine) -> Counter:
    with session_scope(engine) as s:
        return Counter(dict(s.execute(select(Label.item_id, func.count()).group_by(Label.item_id)).all()))


def test_default_study_includes_every_item(engine, benchmark_id):
    study = get_study(engine=engine, benchmark_id=benchmark_id)
    assert (study.labels_per_item, study.mode, study.one_item_per_record) == (3, "pick", True)
    with session_scope(engine) as s:
        n = s.execute(select(func.count()).select_from(StudyItem).where(StudyItem.study_id == study.id)).scalar_one()
    assert n == 96
    assert get_study(engine=engine, benchmark_id=benchmark_id).id == study.id


def test_sample_of_records_per_domain_is_seeded_and_keeps_whole_records(engine, benchmark_id):
    def sampled():
        study = get_study(engine=engine, benchmark_id=benchmark_id)
        with session_scope(engine) as s:
            rows = s.execute(
                select(Item.record_pk, Item.domain).join(StudyItem, StudyItem.item_id == Item.id).where(StudyItem.study_id == study.id)
            ).all()
        return rows

    update_study(engine=engine, benchmark_id=benchmark_id, records_per_domain=1, sample_seed=7)
    first = sampled()
    assert len(first) == 4 * 12
    assert Counter(d for _, d in first) == {"Chat": 12, "Writing": 12, "Reasoning": 12, "Safety": 12}
    update_study(engine=engine, benchmark_id=benchmark_id, records_per_domain=0)
    assert len(sampled()) == 96
    update_study(engine=engine, benchmark_id=benchmark_id, records_per_domain=1, sample_seed=7)
    assert sorted(sampled()) == sorted(first)


def test_invalid_settings_are_refused(engine, benchmark_id):
    with pytest.raises(StudyError, match="mode"):
        update_study(engine=engine, benchmark_id=benchmark_id, mode="vote")
    with pytest.raises(StudyError, match="at least 1"):
        update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=0)


def test_refresh_returns_the_same_item_and_a_label_moves_on(engine, benchmark_id):
    (u,) = users(engine, 1)
    first = next_item(engine=engine, user_id=u, benchmark_id=benchmark_id)
    assert next_item(engine=engine, user_id=u, benchmark_id=benchmark_id) == first
    label(engine, u, first)
    second = next_item(engine=engine, user_id=u, benchmark_id=benchmark_id)
    assert second not in (None, first)


def test_one_item_per_record_and_never_the_same_item_twice(engine, benchmark_id):
    (u,) = users(engine, 1)
    seen = []
    while (item := next_item(engine=engine, user_id=u, benchmark_id=benchmark_id)) is not None:
        seen.append(item)
        label(engine, u, item)
    records = [item_row(engine, i).record_pk for i in seen]
    assert len(seen) == 8 and len(set(records)) == 8  # one item from each of the 8 records
    assert progress(engine=engine, user_id=u, benchmark_id=benchmark_id).finished


def test_without_the_record_rule_every_item_is_reachable(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, one_item_per_record=False, labels_per_item=1)
    (u,) = users(engine, 1)
    seen = set()
    while (item := next_item(engine=engine, user_id=u, benchmark_id=benchmark_id)) is not None:
        assert item not in seen
        seen.add(item)
        label(engine, u, item)
    assert len(seen) == 96


def test_target_is_never_exceeded(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=2, one_item_per_record=False, records_per_domain=1)
    annotators = users(engine, 5)
    active = list(annotators)
    while active:
        for u in list(active):
            item = next_item(engine=engine, user_id=u, benchmark_id=benchmark_id)
            if item is None:
                active.remove(u)
            else:
                label(engine, u, item)
    counts = label_counts(engine)
    assert len(counts) == 48 and set(counts.values()) == {2}


def test_items_closest_to_completion_come_first(engine, benchmark_id):
    a, b, c = users(engine, 3)
    x = next_item(engine=engine, user_id=a, benchmark_id=benchmark_id)
    label(engine, a, x)
    # b gets the item a labelled: agreement data accrues early.
    assert next_item(engine=engine, user_id=b, benchmark_id=benchmark_id) == x
    # c too (one slot left, b's live lease counts as a label in progress).
    assert next_item(engine=engine, user_id=c, benchmark_id=benchmark_id) == x
    d = create_user(engine=engine, name="dave", role="annotator")
    assert next_item(engine=engine, user_id=d, benchmark_id=benchmark_id) not in (None, x)


def test_quota_stops_an_annotator(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, quota_per_annotator=3)
    (u,) = users(engine, 1)
    for _ in range(3):
        label(engine, u, next_item(engine=engine, user_id=u, benchmark_id=benchmark_id))
    assert next_item(engine=engine, user_id=u, benchmark_id=benchmark_id) is None
    p = progress(engine=engine, user_id=u, benchmark_id=benchmark_id)
    assert (p.done, p.target, p.remaining, p.finished) == (3, 3, 0, True)


def test_progress_counts_done_and_what_is_left(engine, benchmark_id):
    (u,) = users(engine, 1)
    p = progress(engine=engine, user_id=u, benchmark_id=benchmark_id)
    assert (p.done, p.target, p.remaining) == (0, 8, 8)  # one item per record, 8 records
    label(engine, u, next_item(engine=engine, user_id=u, benchmark_id=benchmark_id))
    p = progress(engine=engine, user_id=u, benchmark_id=benchmark_id)
    assert (p.done, p.target, p.remaining) == (1, 8, 7)


def test_an_expired_lease_frees_the_slot(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=1, records_per_domain=1, one_item_per_record=False,
                 lease_seconds=60)
    a, b = users(engine, 2)
    t0 = utcnow()
    held = next_item(engine=engine, user_id=a, benchmark_id=benchmark_id, now=t0)
    # While a's lease is live, b never gets that item.
    others = {next_item(engine=engine, user_id=b, benchmark_id=benchmark_id, now=t0 + timedelta(seconds=i)) for i in range(1)}
    assert held not in others
    # Make every other item complete, so only a's leased item is left.
    with session_scope(engine) as s:
        study_items = s.execute(select(StudyItem.item_id)).scalars().all()
    c = create_user(engine=engine, name="filler", role="annotator")
    for item in study_items:
        if item != held:
            label(engine, c, item)
    assert next_item(engine=engine, user_id=b, benchmark_id=benchmark_id, now=t0 + timedelta(seconds=30)) is None
    assert next_item(engine=engine, user_id=b, benchmark_id=benchmark_id, now=t0 + timedelta(seconds=61)) == held
    # a comes back late: their lease was taken over, and the item is full for them too.
    assert next_item(engine=engine, user_id=a, benchmark_id=benchmark_id, now=t0 + timedelta(seconds=62)) is None


def test_domains_are_balanced(engine, tmp_path, record_factory):
    records = [record_factory(f"{d.lower()}{i}", d, seed=i) for d in ("Chat", "Writing", "Reasoning", "Safety") for i in range(6)]
    bid = import_benchmark(engine=engine, path=write_jsonl(tmp_path / "b.jsonl", records), name="bal").benchmark_id
    update_study(engine=engine, benchmark_id=bid, labels_per_item=1)
    (u,) = users(engine, 1)
    domains = []
    for _ in range(8):
        item = next_item(engine=engine, user_id=u, benchmark_id=bid)
        label(engine, u, item)
        domains.append(item_row(engine, item).domain)
    assert Counter(domains) == {"Chat": 2, "Writing": 2, "Reasoning": 2, "Safety": 2}


def _race_worker(db_url: str, user_id: int, benchmark_id: int, start, results) -> None:  # noqa: ANN001
    # A forked child must not share the parent's pooled connections.
    get_engine(db_url).dispose(close=False)
    engine = get_engine(db_url)
    start.wait()
    results.put((user_id, next_item(engine=engine, user_id=user_id, benchmark_id=benchmark_id)))


def test_two_processes_racing_for_the_last_slot(engine, db_url, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=1, records_per_domain=1, one_item_per_record=False)
    with session_scope(engine) as s:
        study_items = s.execute(select(StudyItem.item_id).order_by(StudyItem.item_id)).scalars().all()
    filler = create_user(engine=engine, name="filler", role="annotator")
    for item in study_items[1:]:
        label(engine, filler, item)
    racers = users(engine, 4, prefix="racer")
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(len(racers)), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(db_url, u, benchmark_id, start, results)) for u in racers]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    winners = [item for _, item in got if item is not None]
    assert winners == [study_items[0]]
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Lease).where(Lease.item_id == study_items[0])).scalar_one() == 1


def test_label_counter_follows_every_writer(engine, benchmark_id):
    """Labels written outside submit_label (imports, scripts) still count against the target."""
    from sqlalchemy import delete, insert

    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=1, one_item_per_record=False)
    a, b = users(engine, 2)
    with session_scope(engine) as s:
        all_items = s.execute(select(StudyItem.item_id)).scalars().all()
    with session_scope(engine, write=True) as s:
        study_id = get_study(engine=engine, benchmark_id=benchmark_id).id
        s.execute(insert(Label), [{"study_id": study_id, "user_id": a, "item_id": i, "choice_key": "response1", "source": "import",
                                   "first_submitted_at": utcnow(), "submitted_at": utcnow(), "revisions": 0}
                                  for i in all_items])
    assert next_item(engine=engine, user_id=b, benchmark_id=benchmark_id) is None
    with session_scope(engine, write=True) as s:
        s.execute(delete(Label).where(Label.item_id == all_items[5]))
    assert next_item(engine=engine, user_id=b, benchmark_id=benchmark_id) == all_items[5]
