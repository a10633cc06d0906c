"""The verification rule, case by case, as a pure function over frames.

Frames are built by hand so each case states its labels plainly; the
database round trip lives in tests/test_export.py.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmgap_annot.export import (
    REASON_DISAGREE,
    REASON_FEW,
    REASON_RATING,
    REASON_UNNATURAL,
    REASON_WRONG,
    ExportError,
    Rule,
    as_fraction,
    entries_kept,
    record_verdicts,
    summarize,
    verify,
)

W = "response1"  # the designated winner in every case
KEYS = ["response1", "response2", "response3", "response4"]
CANT = None  # "Can't decide"


def frames(cases: dict[int, list[tuple[str | None, int | None]]], *, record_of=lambda i: f"r{i}", domain="Chat"):
    """items + labels frames: item id -> [(choice_key, naturalness), ...]."""
    items = pd.DataFrame(
        [
            {"item_id": i, "record_pk": i, "record_id": record_of(i), "domain": domain, "group": 0, "group_index": 0,
             "prompt_index": 0, "role": "base", "winner_key": W}
            for i in cases
        ]
    )
    labels = pd.DataFrame(
        [
            {"label_id": n, "item_id": i, "annotator": f"a{j}", "choice_key": choice, "naturalness": nat}
            for n, (i, j, choice, nat) in enumerate(
                (i, j, c, nat) for i, rows in cases.items() for j, (c, nat) in enumerate(rows)
            )
        ],
        columns=["label_id", "item_id", "annotator", "choice_key", "naturalness"],
    )
    return items, labels


def verdict(rows: list[tuple[str | None, int | None]], rule: Rule = Rule()) -> tuple[bool, str | None]:
    items, labels = frames({1: rows})
    out = verify(labels=labels, items=items, rule=rule).iloc[0]
    return bool(out["verified"]), out["reason"]


def test_unanimous_natural_item_is_verified():
    assert verdict([(W, 4), (W, 4), (W, 5)]) == (True, None)


def test_two_of_three_passes_two_thirds_however_the_threshold_is_written():
    rows = [(W, 4), (W, 4), ("response2", 4)]
    for threshold in (2 / 3, "2/3", Fraction(2, 3), 1 - 1 / 3, 0.6666666666666666):
        assert verdict(rows, Rule.of(min_agreement=threshold)) == (True, None), threshold


def test_two_of_three_fails_a_threshold_just_above_two_thirds():
    rows = [(W, 4), (W, 4), ("response2", 4)]
    for threshold in (0.67, "0.6667", 0.7):
        assert verdict(rows, Rule.of(min_agreement=threshold)) == (False, REASON_DISAGREE), threshold


def test_three_of_four_at_exactly_three_quarters():
    rows = [(W, 4), (W, 4), (W, 4), ("response3", 4)]
    assert verdict(rows, Rule.of(min_agreement=0.75))[0]
    assert verdict(rows, Rule.of(min_agreement="3/4"))[0]
    assert verdict(rows, Rule.of(min_agreement=0.76)) == (False, REASON_DISAGREE)


def test_tie_for_first_is_disagreement_even_when_the_share_would_pass():
    rows = [(W, 4), (W, 4), ("response2", 4), ("response2", 4)]
    assert verdict(rows, Rule.of(min_agreement=0.5)) == (False, REASON_DISAGREE)
    assert verdict(rows, Rule.of(min_agreement=0)) == (False, REASON_DISAGREE)


def test_cant_decide_does_not_count_towards_min_labels_or_the_share():
    rows = [(W, 4), (W, 4), (W, 4), (CANT, 4)]
    assert verdict(rows, Rule.of(min_labels=3, min_agreement=1)) == (True, None)  # share is 3/3, not 3/4
    assert verdict(rows, Rule.of(min_labels=4)) == (False, REASON_FEW)
    items, labels = frames({1: rows})
    out = verify(labels=labels, items=items, rule=Rule()).iloc[0]
    assert (out["n_labels"], out["n_decided"], out["n_cant_decide"], out["agreement"]) == (4, 3, 1, 1.0)


def test_only_cant_decide_is_too_few_labels():
    assert verdict([(CANT, 4)] * 5) == (False, REASON_FEW)


def test_exactly_min_labels_passes_one_fewer_fails():
    assert verdict([(W, 4)] * 3, Rule.of(min_labels=3))[0]
    assert verdict([(W, 4)] * 2, Rule.of(min_labels=3)) == (False, REASON_FEW)


def test_unlabelled_item_is_too_few_labels():
    items, labels = frames({1: [(W, 4)] * 3, 2: []})
    out = verify(labels=labels, items=items, rule=Rule()).set_index("item_id")
    assert out.loc[2, "reason"] == REASON_FEW and out.loc[1, "verified"]


def test_clear_consensus_on_another_response_is_wrong_winner():
    assert verdict([("response2", 4)] * 3) == (False, REASON_WRONG)


def test_mean_naturalness_exactly_at_the_threshold_passes():
    assert verdict([(W, 2), (W, 3), (W, 4)], Rule.of(min_naturalness=3)) == (True, None)
    assert verdict([(W, 3), (W, 3), (W, 4)], Rule.of(min_naturalness="10/3")) == (True, None)
    assert verdict([(W, 3), (W, 3), (W, 4)], Rule.of(min_naturalness=10 / 3)) == (True, None)
    assert verdict([(W, 2), (W, 3), (W, 3)], Rule.of(min_naturalness=3)) == (False, REASON_UNNATURAL)


def test_naturalness_of_cant_decide_labels_still_counts():
    """Naturalness rates the prompt, which a Can't decide label still judged."""
    assert verdict([(W, 5), (W, 5), (W, 5), (CANT, 1)], Rule.of(min_naturalness=4)) == (True, None)  # mean 4.0


def test_unrated_item_fails_unless_the_check_is_off():
    assert verdict([(W, None)] * 3) == (False, REASON_UNNATURAL)
    assert verdict([(W, None)] * 3, Rule.of(min_naturalness=0)) == (True, None)


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([("response2", 1)] * 2, REASON_FEW),  # few beats wrong and unnatural
        ([(W, 1), ("response2", 1), ("response3", 1)], REASON_DISAGREE),  # disagreement beats unnatural
        ([("response2", 1)] * 3, REASON_WRONG),  # wrong beats unnatural
        ([(W, 1), ("response2", 1), ("response2", 1), ("response2", 1)], REASON_DISAGREE),  # a 3/4 consensus on the wrong one, below 0.8
    ],
)
def test_first_failing_reason_wins(rows, expected):
    rule = Rule.of(min_agreement=0.8)
    assert verdict(rows, rule) == (False, expected)


def test_record_is_verified_only_when_all_its_items_are():
    cases = {1: [(W, 4)] * 3, 2: [(W, 4)] * 3, 3: [(W, 4)] * 3, 4: [("response2", 4)] * 3, 5: [(W, 4)] * 1}
    record_of = {1: "a", 2: "a", 3: "b", 4: "b", 5: "b"}.__getitem__
    items, labels = frames(cases, record_of=record_of)
    verdicts = verify(labels=labels, items=items, rule=Rule())
    records = record_verdicts(verdicts).set_index("record_id")
    assert records.loc["a", "verified"] and records.loc["a", "reason"] is None
    # Record b fails on two items; its reason is the earliest in the rule's order.
    assert not records.loc["b", "verified"] and records.loc["b", "reason"] == REASON_FEW
    summary = summarize(verdicts, records.reset_index())
    assert summary["Chat"]["records_kept"] == 1 and summary["Chat"]["records"] == 2
    assert summary["All"]["items_dropped"] == {REASON_FEW: 1, REASON_DISAGREE: 0, REASON_WRONG: 1, REASON_UNNATURAL: 0,
                                             REASON_RATING: 0}
    assert summary["Writing"]["items"] == 0


def test_an_entry_is_kept_only_when_all_its_items_are_verified():
    """The entry rule knows nothing of records: any item ids, any entry keys (here a pair's two sides)."""
    entry_of = {"p1/chosen": ("pair", 1), "p1/rejected": ("pair", 1), "p2/chosen": ("pair", 2), "p2/rejected": ("pair", 2),
                "p3/chosen": ("pair", 3), "p4/only": ("pair", 4)}
    verified = {"p1/chosen": True, "p1/rejected": True, "p2/chosen": True, "p2/rejected": False, "p4/only": True}
    # p3's item has no verdict at all: not verified, so p3 is dropped.
    assert entries_kept(verified, entry_of) == {("pair", 1), ("pair", 4)}
    assert entries_kept({}, entry_of) == set()
    # A verdict for an item no entry holds keeps nothing.
    assert entries_kept({"stray": True}, {}) == set()


def test_rmgap_records_follow_the_entry_rule():
    """RMGAP's record rule is the entry rule with the record as the entry."""
    combos = list(itertools.product([W, "response2", None], repeat=2))
    cases = {i: [(c, 4) for c in (*combo, W)] for i, combo in enumerate(combos, start=1)}
    record_of = {i: f"r{i % 3}" if i < 7 else f"s{i}" for i in cases}
    items, labels = frames(cases, record_of=record_of.__getitem__)
    verdicts = verify(labels=labels, items=items, rule=Rule.of(min_labels=3))
    records = record_verdicts(verdicts).set_index("record_id")
    kept = entries_kept(dict(zip(verdicts["item_id"], verdicts["verified"])), record_of)
    assert 0 < len(kept) < len(records)
    assert {r for r in records.index if records.loc[r, "verified"]} == kept


@pytest.mark.parametrize(
    "kwargs",
    [{"min_labels": 0}, {"min_labels": 2.5}, {"min_agreement": 1.5}, {"min_agreement": "abc"},
     {"min_agreement": float("nan")}, {"min_naturalness": 6}, {"min_naturalness": -1}],
)
def test_bad_thresholds_are_refused_with_a_clear_error(kwargs):
    with pytest.raises(ExportError, match="min|number|finite"):
        Rule.of(**kwargs)


def test_as_fraction_reads_decimals_exactly():
    assert as_fraction("0.67") == Fraction(67, 100)
    assert as_fraction(2 / 3) == Fraction(2, 3)
    assert as_fraction(0.1 * 3) == Fraction(3, 10)


def _reference(choices: list[str | None], nats: list[int | None], rule: Rule) -> str | None:
    """The rule as written in the README, spelled out independently."""
    decided = [c for c in choices if c is not None]
    if len(decided) < rule.min_labels:
        return REASON_FEW
    counts = {k: decided.count(k) for k in set(decided)}
    top = max(counts.values())
    leaders = [k for k, v in counts.items() if v == top]
    if len(leaders) > 1 or Fraction(top, len(decided)) < rule.min_agreement:
        return REASON_DISAGREE
    if leaders[0] != W:
        return REASON_WRONG
    rated = [n for n in nats if n is not None]
    if rule.min_naturalness > 0 and (not rated or Fraction(sum(rated), len(rated)) < rule.min_naturalness):
        return REASON_UNNATURAL
    return None


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.tuples(st.sampled_from(KEYS + [None]), st.one_of(st.none(), st.integers(1, 5))), max_size=7),
    min_labels=st.integers(1, 5),
    agreement=st.sampled_from(sorted({Fraction(k, n) for n in range(1, 7) for k in range(n + 1)})),
    naturalness=st.sampled_from([Fraction(0), Fraction(1), Fraction(3), Fraction(10, 3), Fraction(7, 2), Fraction(5)]),
)
def test_rule_matches_its_plain_statement(labels, min_labels, agreement, naturalness):
    rule = Rule.of(min_labels=min_labels, min_agreement=agreement, min_naturalness=naturalness)
    expected = _reference([c for c, _ in labels], [n for _, n in labels], rule)
    assert verdict(labels, rule) == (expected is None, expected)


def test_many_items_at_once_match_one_at_a_time():
    combos = list(itertools.product([W, "response2", None], repeat=3))
    cases = {i: [(c, 4) for c in combo] for i, combo in enumerate(combos, start=1)}
    items, labels = frames(cases)
    together = verify(labels=labels, items=items, rule=Rule()).set_index("item_id")
    for i, rows in cases.items():
        assert (bool(together.loc[i, "verified"]), together.loc[i, "reason"]) == verdict(rows)
