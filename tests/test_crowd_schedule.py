"""The seeded check schedule and the qualification rule."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rmgap_annot.crowd.schedule import (
    ScheduleError, check_order, check_slots, checks_needed, next_check, parse_share, qualification_items,
    qualification_state, real_items_per_check,
)

CHECKS = [f"c{i}" for i in range(200)]


def test_rate_is_read_like_min_agreement():
    assert parse_share("0.05", flag="--check-rate") == Fraction(1, 20)
    assert parse_share("2/3", flag="--qualification-pass") == Fraction(2, 3)
    assert parse_share(2 / 3, flag="--qualification-pass") == Fraction(2, 3)
    with pytest.raises(ScheduleError, match="--check-rate: not a number or fraction"):
        parse_share("five percent", flag="--check-rate")
    with pytest.raises(ScheduleError, match="--qualification-pass must lie between 0 and 1"):
        parse_share("1.5", flag="--qualification-pass")
    assert real_items_per_check("0.05") == 19 and real_items_per_check("1/2") == 1 and real_items_per_check(0) is None
    with pytest.raises(ScheduleError, match="--check-rate must lie between 0 and 1/2"):
        real_items_per_check("0.6")


def test_every_quota_meets_a_check_for_every_annotator():
    for quota in (1, 2, 3, 5, 18, 19, 20, 50):
        for annotator in range(200):
            slots = check_slots(seed=7, annotator=annotator, quota=quota, rate="0.05", n_checks=10)
            assert slots and slots[0] < quota
            assert all(s < quota for s in slots) and slots == sorted(slots)


def test_rate_holds_on_a_long_stream():
    for rate, m in (("0.05", 19), ("0.1", 9), ("0.25", 3)):
        slots = check_slots(seed=1, annotator=3, quota=None, rate=rate, n_checks=100)
        assert len(slots) == 100
        for j, s in enumerate(slots):  # one check per block of m real items
            assert j * m <= s < (j + 1) * m
        real = slots[-1] + 1
        assert abs(len(slots) / (len(slots) + real) - float(Fraction(rate))) < 0.01


def test_a_quota_ending_inside_a_block_keeps_the_rate_on_average():
    # quota 28 with one check per 19 real items: the first check always, the second when its draw is below 28.
    counts = [len(check_slots(seed=2, annotator=a, quota=28, rate="0.05", n_checks=10)) for a in range(3000)]
    assert set(counts) == {1, 2}
    assert abs(sum(counts) / len(counts) - 28 / 19) < 0.05  # the expected number of checks over 28 real items


def test_slots_spread_over_the_block_not_always_the_same_place():
    firsts = {check_slots(seed=5, annotator=a, quota=None, rate="0.05", n_checks=1)[0] for a in range(400)}
    assert firsts == set(range(19))


def test_deterministic_per_seed_and_annotator_different_between_them():
    a = check_slots(seed=11, annotator=4, quota=None, rate="0.05", n_checks=20)
    assert a == check_slots(seed=11, annotator=4, quota=None, rate="0.05", n_checks=20)
    assert a != check_slots(seed=11, annotator=5, quota=None, rate="0.05", n_checks=20)
    assert a != check_slots(seed=12, annotator=4, quota=None, rate="0.05", n_checks=20)
    order = check_order(seed=11, annotator=4, check_ids=CHECKS)
    assert sorted(order) == sorted(CHECKS) and order == check_order(seed=11, annotator=4, check_ids=list(reversed(CHECKS)))
    assert order != check_order(seed=11, annotator=5, check_ids=CHECKS)


def test_each_check_at_most_once_and_none_when_off():
    assert len(check_slots(seed=1, annotator=1, quota=None, rate="0.05", n_checks=3)) == 3
    assert check_slots(seed=1, annotator=1, quota=100, rate="0.05", n_checks=0) == []
    assert check_slots(seed=1, annotator=1, quota=100, rate=0, n_checks=5) == []
    with pytest.raises(ScheduleError, match="quota"):
        check_slots(seed=1, annotator=1, quota=0, rate="0.05", n_checks=5)
    assert checks_needed(quota=100, rate="0.05") == 6 and checks_needed(quota=3, rate="0.05") == 1
    assert checks_needed(quota=100, rate=0) == 0


def _walk(*, quota: int, rate: str, checks: list[str], annotator: int = 1) -> list[str]:
    """The stream an annotator sees when they label everything they are served."""
    stream, done, real = [], [], 0
    while real < quota:
        c = next_check(seed=3, annotator=annotator, quota=quota, rate=rate, check_ids=checks, real_done=real, checks_done=done)
        if c is None:
            stream.append("real")
            real += 1
        else:
            stream.append(c)
            done.append(c)
    return stream


def test_next_check_serves_the_schedule():
    for annotator in range(50):
        stream = _walk(quota=3, rate="0.05", checks=["x", "y"], annotator=annotator)
        assert stream.count("real") == 3 and len(stream) == 4  # one check within a quota of 3
        assert stream[-1] == "real"  # the quota ends on a real item, the check came before
    stream = _walk(quota=95, rate="0.05", checks=CHECKS[:10])
    checks = [s for s in stream if s != "real"]
    assert len(checks) == 5 and len(set(checks)) == 5  # one per 19 real items, none twice
    slots = check_slots(seed=3, annotator=1, quota=95, rate="0.05", n_checks=10)
    positions = [i for i, s in enumerate(stream) if s != "real"]
    assert [p - k for k, p in enumerate(positions)] == slots  # real items before each check = its slot


def test_a_missed_check_is_served_next():
    slots = check_slots(seed=3, annotator=1, quota=None, rate="0.25", n_checks=4)
    # The annotator has done many real items but no check (a crash): the first check is due at once.
    assert next_check(seed=3, annotator=1, quota=None, rate="0.25", check_ids=["a", "b", "c", "d"], real_done=slots[2], checks_done=[]) is not None
    assert next_check(seed=3, annotator=1, quota=None, rate="0.25", check_ids=["a"], real_done=1000, checks_done=["a"]) is None


def test_qualification_items_and_state():
    pool = [f"q{i}" for i in range(10)]
    first = qualification_items(seed=1, annotator=1, item_ids=pool, n_items=4)
    assert len(first) == 4 and set(first) <= set(pool)
    assert first == qualification_items(seed=1, annotator=1, item_ids=pool, n_items=4)
    assert any(qualification_items(seed=1, annotator=a, item_ids=pool, n_items=4) != first for a in range(2, 10))
    with pytest.raises(ScheduleError, match="only 10 qualification item"):
        qualification_items(seed=1, annotator=1, item_ids=pool, n_items=11)
    assert qualification_state(results=[True, False], n_items=3, pass_share="2/3") == "pending"
    assert qualification_state(results=[True, False, True], n_items=3, pass_share="2/3") == "passed"  # exactly 2/3
    assert qualification_state(results=[True, False, True], n_items=3, pass_share="0.67") == "failed"
    assert qualification_state(results=[False, False, False], n_items=3, pass_share=0) == "passed"
    assert qualification_state(results=[], n_items=0, pass_share="1") == "passed"
