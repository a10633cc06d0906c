"""Quality figures of a crowd study's annotators: time worked, speed, checks, status, leave-one-out agreement."""

from __future__ import annotations

from datetime import datetime, timedelta

import krippendorff
import numpy as np
import pytest

from rmgap_annot.crowd.quality import (
    NO_SUBMITTED, annotator_status, item_seconds, leave_one_out, quality, seconds_worked,
)

T0 = datetime(2026, 11, 25, 12, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_time_worked_runs_from_first_shown_to_last_submitted():
    events = [(at(0), at(40)), (at(40), at(100)), (at(100), at(130))]
    assert seconds_worked(events) == 130


def test_pauses_over_five_minutes_are_taken_out_exactly_five_kept():
    events = [
        (at(0), at(60)),
        (at(60 + 600), at(60 + 600 + 30)),  # a 10-minute gap before this item was shown: a pause
        (at(690 + 300), at(690 + 300 + 20)),  # exactly 5 minutes: kept
    ]
    assert seconds_worked(events) == 60 + 30 + 300 + 20
    # A long read counts as a pause too: the rule cannot tell them apart.
    assert seconds_worked([(at(0), at(400))]) == 0
    assert seconds_worked([(at(0), at(400))], max_pause=timedelta(minutes=10)) == 400


def test_unsorted_overlapping_and_unfinished_items():
    # Two tabs: items overlap in time; their common time counts once. Input order does not matter.
    events = [(at(50), at(120)), (at(0), at(100))]
    assert seconds_worked(events) == 120
    # An item shown after the last submission is not work yet; one never submitted before it is.
    assert seconds_worked([(at(0), at(30)), (at(30), None), (at(200), None)]) == 30
    assert seconds_worked([(at(0), None), (at(10), at(20))]) == 20
    # Unknown shown time (imported labels): from the first moment known.
    assert seconds_worked([(None, at(10)), (at(10), at(25))]) == 15
    assert seconds_worked([]) is None and seconds_worked([(at(0), None)]) is None


def test_quality_figures():
    events = [(at(0), at(3)), (at(3), at(7)), (at(7), at(27)), (at(27), at(57)), (at(57), None)]
    q = quality(events=events, labels=3, check_results=[True, False, True])
    assert q.labels == 3 and q.checks_passed == 2 and q.checks_failed == 1
    assert q.median_seconds == pytest.approx((4 + 20) / 2)  # durations 3, 4, 20, 30
    assert q.fast_share == 0.5  # 3 s and 4 s are under 5 s
    assert q.minutes_worked == pytest.approx(57 / 60) and q.reasons == {}
    empty = quality(events=[(at(0), None)], labels=0, check_results=[])
    assert empty.median_seconds is None and empty.fast_share is None and empty.minutes_worked is None
    assert empty.reasons["minutes_worked"] == NO_SUBMITTED and "median_seconds" in empty.reasons
    assert item_seconds([(at(10), at(5))]) == []  # a clock that went back is no duration
    assert quality(events=[(at(0), at(5))], labels=1, check_results=[]).fast_share == 0.0  # 5 s is not faster than 5 s


@pytest.mark.parametrize("kw, status", [
    ({}, "active"),
    ({"qualification": "pending"}, "qualifying"),
    ({"qualification": "failed"}, "screened out"),
    ({"real_done": 10}, "completed"),
    ({"real_done": 10, "checks_failed": 3}, "screened out"),  # the limit reached on the last item
    ({"checks_failed": 2}, "active"),
    ({"checks_failed": 3, "check_action": "warn"}, "active"),
    ({"checks_failed": 9, "check_fail_limit": None}, "active"),
    ({"blocked": True, "real_done": 10}, "blocked"),
    ({"blocked": True, "qualification": "failed"}, "blocked"),
    ({"consent_declined": True, "qualification": "pending"}, "screened out"),
    ({"quota": None, "real_done": 1000}, "active"),
])
def test_status(kw, status):
    base = {"blocked": False, "qualification": "passed", "checks_failed": 0, "check_fail_limit": 3, "real_done": 4, "quota": 10}
    assert annotator_status(**{**base, **kw}) == status


def test_status_refuses_unknown_settings():
    base = {"blocked": False, "qualification": "passed", "checks_failed": 0, "check_fail_limit": 3, "real_done": 4, "quota": 10}
    with pytest.raises(ValueError, match="--check-action"):
        annotator_status(**base, check_action="ignore")
    with pytest.raises(ValueError, match="qualification"):
        annotator_status(**{**base, "qualification": "maybe"})


def test_leave_one_out_matches_krippendorff():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 4, size=30)
    labels = []
    matrix = np.full((5, 30), np.nan)
    for r in range(5):
        for u in range(30):
            if rng.random() < 0.8:
                v = truth[u] if (r < 4 and rng.random() < 0.8) else rng.integers(0, 4)  # annotator 4 guesses
                labels.append((f"ann{r}", f"item{u}", "abcd"[v]))
                matrix[r, u] = v
    out = leave_one_out(labels)
    assert out.alpha == pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"), abs=1e-12)
    for r in range(5):
        ref = krippendorff.alpha(reliability_data=np.delete(matrix, r, axis=0), level_of_measurement="nominal")
        a = out.annotators[f"ann{r}"]
        assert a.alpha_without == pytest.approx(ref, abs=1e-12)
        assert a.delta == pytest.approx(out.alpha - ref, abs=1e-12)
    worst = min(out.annotators, key=lambda k: out.annotators[k].agreement)
    assert worst == "ann4" and out.annotators["ann4"].delta < 0  # the guesser lowers agreement


def test_agreement_with_others_and_undefined_cases():
    labels = [
        ("a", 1, "x"), ("b", 1, "x"), ("c", 1, "y"),
        ("a", 2, "y"), ("b", 2, "y"),
        ("a", 3, None), ("c", 3, "x"),  # a can't decide: not a shared decided item
        ("d", 4, "x"),  # alone on an item
    ]
    out = leave_one_out(labels)
    assert out.annotators["a"].agreement == pytest.approx((1 / 2 + 1) / 2) and out.annotators["a"].shared_items == 2
    assert out.annotators["c"].agreement == 0.0 and out.annotators["c"].shared_items == 1
    d = out.annotators["d"]
    assert d.agreement is None and d.shared_items == 0 and "agreement" in d.reasons
    # Without b only item 1 has two values (x, y): alpha is defined. Everyone agreeing leaves alpha undefined, with its reason.
    same = leave_one_out([("a", 1, "x"), ("b", 1, "x"), ("a", 2, "x"), ("b", 2, "x")])
    assert same.alpha is None and same.reason == "every paired label has the same value, so alpha is undefined"
    assert same.annotators["a"].alpha_without is None and same.annotators["a"].reasons["alpha_without"].startswith("no item has two")
    assert same.annotators["a"].agreement == 1.0
    with pytest.raises(ValueError, match="two labels"):
        leave_one_out([("a", 1, "x"), ("a", 1, "y")])
