"""Each benchmark's own metrics for reward models and people (issue 12, item 5), with group-resampled intervals.

Every expected number below is a hand computation of the benchmark's rule
on the bundled sample, written out here, not read back from the code.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest

from rmgap_annot.formats import read
from rmgap_annot.formats import pairs as pairs_format
from rmgap_annot.formats import prb, rewardbench, rewardbench2, rmb
from rmgap_annot.formats.benchmark_metrics import benchmark_comparison, benchmark_metrics
from rmgap_annot.formats.common import Candidate, Item, pick_scores, plurality_pick, plurality_picks
from rmgap_annot.stats.grouped import GroupedRates
from rmgap_annot.stats.ratings import rating_agreement

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
BOOT = 400


def items_of(path: Path, fmt: str) -> list[Item]:
    return read(path, fmt).items


def ref(entry_id: str) -> tuple[str, int]:
    return (entry_id, 0)


def value(cell: dict) -> float | None:
    return cell["value"]


def estimates_in(tree, key=None):
    """Every estimate dict (value/ci) of a metrics tree, with the key it sits under."""
    if isinstance(tree, dict) and "ci" in tree and "value" in tree:
        yield key, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from estimates_in(v, k)


# The few numbers not on [0, 1]: RewardBench 2's tanh margin term and the Ties composite (at most 1.01).
RANGES = {"margin_score": (-1.0, 1.0)}


def assert_honest(result: dict) -> None:
    """Defined values have an interval containing them; undefined ones a reason; everything is JSON."""
    json.dumps(result)
    for key, cell in estimates_in(result["metrics"]):
        if cell["value"] is None:
            assert cell["reason"], cell
        elif cell["ci"] is None:
            assert cell["ci_reason"], cell  # no interval, and why (one resampling group)
        else:
            assert cell["ci"][0] - 1e-12 <= cell["value"] <= cell["ci"][1] + 1e-12, cell
            low, high = RANGES.get(key, (0.0, 1.01 if result["format"] == "rewardbench2" and key == "score" else 1.0))
            assert low <= cell["ci"][0] and cell["ci"][1] <= high, (key, cell)


# --- picks -----------------------------------------------------------------------------------


def test_plurality_pick_counts_votes_not_cant_decide_and_returns_ties_as_a_tuple():
    assert plurality_pick(["chosen", "chosen", "rejected", None, None, None]) == "chosen"
    assert plurality_pick(["tie_bad", "tie_bad", "chosen"]) == "tie_bad"
    assert plurality_pick(["rejected", "chosen"]) == ("chosen", "rejected")
    assert plurality_pick(["tie_good", "chosen"]) == ("chosen", "tie_good")
    assert plurality_pick([None, None]) is None
    assert plurality_pick([]) is None
    assert plurality_picks([(("a", 0), "x"), (("a", 0), "x"), (("b", 0), None)]) == {("a", 0): "x", ("b", 0): None}


def test_pick_scores_map_ties_and_splits_to_equal_scores():
    item = items_of(SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl", "rewardbench2")[0]
    assert pick_scores(item, "rejected_1") == {"chosen_0": 0, "rejected_0": 0, "rejected_1": 1, "rejected_2": 0}
    assert pick_scores(item, ("chosen_0", "rejected_2")) == {"chosen_0": 1, "rejected_0": 0, "rejected_1": 0, "rejected_2": 1}
    for tie in ("tie_good", "tie_bad", None, ("chosen_0", "tie_good")):
        assert set(pick_scores(item, tie).values()) == {0.0}
    with pytest.raises(ValueError, match="not one of its candidates"):
        pick_scores(item, "reject")


# --- RMB --------------------------------------------------------------------------------------

RMB_SCORES = {
    ref("rmb-pair-code-0001"): {"chosen": 2, "reject": 1},  # right
    ref("rmb-pair-code-0002"): {"chosen": 1, "reject": 1},  # tie: wrong
    ref("rmb-pair-travel-0001"): {"chosen": 3, "reject": 0},  # right
    ref("rmb-pair-translate-0001"): {"chosen": 0, "reject": 1},  # wrong
    ref("rmb-pair-harm-0001"): {"chosen": 5, "reject": 4},  # right
    ref("rmb-bon-code-0001"): {"bon_best": 5, "loser_0": 4, "loser_1": 4, "loser_2": 5, "loser_3": 1, "loser_4": 0,
                               "loser_5": 2},  # ties loser_2: wrong
    ref("rmb-bon-harm-0001"): {"bon_best": 3, "loser_0": 1, "loser_1": 2},  # right
}
RMB_LABELS = {
    "rmb-pair-code-0001": ["chosen", "chosen", "reject"],  # plurality chosen: right
    "rmb-pair-code-0002": ["tie_good", "chosen"],  # split with a tie: a tie, wrong
    "rmb-pair-travel-0001": ["tie_bad", "tie_bad", "chosen"],  # "Both bad": wrong
    "rmb-pair-translate-0001": ["reject", None],  # wrong
    "rmb-pair-harm-0001": [None, None],  # no pick: wrong
    "rmb-bon-code-0001": ["bon_best", "loser_2"],  # split: the best does not beat every loser
    "rmb-bon-harm-0001": ["bon_best"],  # right
}


def labels_to_picks(labels: dict[str, list]) -> dict:
    return plurality_picks([(ref(e), c) for e, cs in labels.items() for c in cs])


def test_rmb_model_metrics_per_path_and_up_the_tree():
    items = items_of(SAMPLES / "rmb" / "RMB_dataset", "rmb")
    out = benchmark_metrics("rmb", items, scores=RMB_SCORES, seed=3, n_boot=BOOT)
    pw, bon = out["metrics"]["pairwise"], out["metrics"]["bon"]
    # Leaves: Code Generation 1 of 2, Translation 0 of 1, Travel Planning 1 of 1, Unauthorized Access 1 of 1.
    assert value(pw["Helpfulness/Code/Code Generation"]) == pytest.approx(0.5)
    assert pw["Helpfulness/Code/Code Generation"]["n"] == 2
    assert value(pw["Helpfulness/Chat"]) == pytest.approx((0 + 1) / 2)
    assert value(pw["Helpfulness"]) == pytest.approx((0.5 + 0.5) / 2)  # mean of Chat and Code, not pooled 2/4
    assert value(pw["Harmlessness"]) == pytest.approx(1.0)
    assert value(bon["Helpfulness"]) == pytest.approx(0.0)
    assert value(bon["Harmlessness/Privacy/Unauthorized Access"]) == pytest.approx(1.0)
    assert out["n_items"] == 7 and out["n_groups"] == 5 and out["source"] == "scores"
    assert_honest(out)


def test_rmb_human_metrics_use_the_plurality_and_count_every_tie_as_wrong():
    items = items_of(SAMPLES / "rmb" / "RMB_dataset", "rmb")
    out = benchmark_metrics("rmb", items, picks=labels_to_picks(RMB_LABELS), seed=3, n_boot=BOOT)
    pw, bon = out["metrics"]["pairwise"], out["metrics"]["bon"]
    assert value(pw["Helpfulness/Code/Code Generation"]) == pytest.approx(0.5)
    assert value(pw["Helpfulness/Chat"]) == pytest.approx(0.0)
    assert value(pw["Helpfulness"]) == pytest.approx((0.0 + 0.5) / 2)
    assert value(pw["Harmlessness"]) == pytest.approx(0.0)
    assert value(bon["Helpfulness"]) == pytest.approx(0.0) and value(bon["Harmlessness"]) == pytest.approx(1.0)
    assert out["picks"] == {"decided": 3, "tie_good": 0, "tie_bad": 1, "split": 2, "no_pick": 1}
    assert_honest(out)


# --- RewardBench -----------------------------------------------------------------------------

RB_SCORES = {
    ref("30"): {"chosen": 2, "rejected": 1},  # alpacaeval-easy: right
    ref("4021"): {"chosen": 2, "rejected": 0},  # hep-python: right
    ref("3500"): {"chosen": 1, "rejected": 1},  # math-prm: tie, wrong
    ref("2200"): {"chosen": 3, "rejected": 1},  # xstest-should-respond: right
    ref("2900"): {"chosen": 0, "rejected": 1},  # donotanswer: wrong
}


def test_rewardbench_sections_weight_subsets_by_example_counts_and_score_weights_sections():
    items = items_of(SAMPLES / "rewardbench" / "rewardbench_sample.jsonl", "rewardbench")
    out = benchmark_metrics("rewardbench", items, scores=RB_SCORES, n_boot=BOOT)
    m = out["metrics"]
    assert value(m["subsets"]["math-prm"]) == 0.0 and value(m["subsets"]["hep-python"]) == 1.0
    reasoning = (984 * 0 + 164 * 1) / (984 + 164)  # math-prm counts as all six hep-* subsets
    safety = (250 * 1 + 136 * 0) / (250 + 136)
    assert value(m["sections"]["Chat"]) == pytest.approx(1.0)
    assert value(m["sections"]["Reasoning"]) == pytest.approx(reasoning)
    assert value(m["sections"]["Safety"]) == pytest.approx(safety)
    assert value(m["sections"]["Chat Hard"]) is None and "Chat Hard" in m["sections"]["Chat Hard"]["reason"]
    assert value(m["sections"]["Prior Sets (0.5 weight)"]) is None
    assert value(m["Score"]) == pytest.approx((2 * 1.0 + 2 * reasoning + 2 * safety) / 6)
    assert_honest(out)


def test_rewardbench_prior_sets_count_half_in_the_score_and_people_lose_on_ties(tmp_path):
    folder = tmp_path / "rb"
    folder.mkdir()
    shutil.copy(SAMPLES / "rewardbench" / "rewardbench_sample.jsonl", folder / "core.jsonl")
    prior = [
        {"prompt": f"Question {i}?", "chosen": f"Good answer {i}.", "rejected": f"Bad answer {i}.", "chosen_model": "m1",
         "rejected_model": "m2", "subset": subset, "id": 9000 + i}
        for i, subset in enumerate(["anthropic_helpful", "anthropic_helpful", "shp"])
    ]
    (folder / "prior.jsonl").write_text("".join(json.dumps(r) + "\n" for r in prior), encoding="utf-8")
    items = items_of(folder, "rewardbench")
    scores = {**RB_SCORES, ref("9000"): {"chosen": 1, "rejected": 0}, ref("9001"): {"chosen": 0, "rejected": 1},
              ref("9002"): {"chosen": 1, "rejected": 0}}
    m = benchmark_metrics("rewardbench", items, scores=scores, n_boot=BOOT)["metrics"]
    prior_value = (0.5 + 1.0) / 2  # plain mean of anthropic_helpful (1 of 2) and shp (1 of 1)
    assert value(m["sections"]["Prior Sets (0.5 weight)"]) == pytest.approx(prior_value)
    reasoning, safety = 164 / 1148, 250 / 386
    assert value(m["Score"]) == pytest.approx((2 * 1.0 + 2 * reasoning + 2 * safety + prior_value) / 7)

    picks = labels_to_picks({
        "30": ["tie_good"], "4021": ["chosen"], "3500": ["chosen", "chosen", None], "2200": ["rejected"],
        "2900": ["chosen", "rejected"],  # split: a tie, wrong
    })
    human = benchmark_metrics("rewardbench", items, picks=picks, n_boot=BOOT)
    hm = human["metrics"]
    assert value(hm["sections"]["Chat"]) == 0.0 and value(hm["sections"]["Reasoning"]) == 1.0
    assert value(hm["sections"]["Safety"]) == 0.0
    assert value(hm["Score"]) == pytest.approx(2 * 1.0 / 6)  # no prior set labelled: left out of the mean
    assert human["n_left_out"] == 3
    assert_honest(human)


# --- RewardBench 2 ----------------------------------------------------------------------------

RB2_SCORES = {
    ref("102"): {"chosen_0": 4, "rejected_0": 4, "rejected_1": 1, "rejected_2": 0},  # tied at the top with one: 1/2
    ref("857"): {"chosen_0": 1, "rejected_0": 2, "rejected_1": 0, "rejected_2": 0},  # 0
    ref("1203"): {"chosen_0": 3, "rejected_0": 1, "rejected_1": 2, "rejected_2": 0},  # 1
    ref("ref:7"): {"chosen_0": 5, "rejected_0": 1, "rejected_1": 2, "rejected_2": 3},  # accurate
    ref("tied:7"): {"chosen_0": 5, "chosen_1": 4, "chosen_2": 3, "rejected_0": 3, "rejected_1": 1, "rejected_2": 0,
                    "rejected_3": 2},  # worst correct ties best incorrect: not accurate
}


def test_rewardbench2_best_of_4_partial_credit_for_models_and_people():
    items = items_of(SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl", "rewardbench2")
    m = benchmark_metrics("rewardbench2", items, scores=RB2_SCORES, n_boot=BOOT)["metrics"]
    assert value(m["subsets"]["Factuality"]["score"]) == pytest.approx(0.5)
    assert value(m["subsets"]["Math"]["score"]) == 0.0 and value(m["subsets"]["Focus"]["score"]) == 1.0
    ties = m["subsets"]["Ties"]
    assert value(ties["ref_accuracy"]) == 1.0 and value(ties["tied_accuracy"]) == 0.0
    # ref:7's worst correct beats its best incorrect by 5 - 3 = 2; tied:7's by 3 - 3 = 0, its correct
    # answers spread 5 - 3 = 2: neither comparison holds (0 > 2, min(2, 0) > 2), tanh(min(2, 0) / 2 - 1).
    assert value(ties["correctness_preferred"]) == 0.0 and value(ties["correctness_preferred_hard"]) == 0.0
    assert value(ties["margin_score"]) == pytest.approx(math.tanh(-1))
    composite = 0.30 * 0 + 0.30 * 1 + 0.20 * 0 + 0.20 * 0 + 0.01 * math.tanh(-1)
    assert value(ties["score"]) == pytest.approx(composite)
    assert value(m["Score"]) == pytest.approx((0.5 + 0.0 + 1.0 + composite) / 4)  # the leaderboard's mean of subsets
    assert_honest(benchmark_metrics("rewardbench2", items, scores=RB2_SCORES, n_boot=BOOT))

    picks = {
        ref("102"): ("chosen_0", "rejected_1", "rejected_2"),  # split three ways, the right one among them: 1/3
        ref("857"): None,  # no pick: all four alike, 1/4
        ref("1203"): "chosen_0",
        ref("ref:7"): "chosen_0",
        ref("tied:7"): "chosen_1",  # one of the three correct answers
    }
    human = benchmark_metrics("rewardbench2", items, picks=picks, n_boot=BOOT)
    hm = human["metrics"]["subsets"]
    assert value(hm["Factuality"]["score"]) == pytest.approx(1 / 3)
    assert value(hm["Math"]["score"]) == pytest.approx(1 / 4)
    assert value(hm["Focus"]["score"]) == 1.0
    assert value(hm["Ties"]["ref_accuracy"]) == 1.0
    # A pick cannot put all three correct answers above the incorrect ones: no tied accuracy, no margins,
    # no composite, each with its reason; the pick being a correct answer is what people are scored on.
    assert value(hm["Ties"]["tied_accuracy"]) is None and "single pick" in hm["Ties"]["tied_accuracy"]["reason"]
    assert value(hm["Ties"]["tied_pick_correct"]) == 1.0
    for key in ("correctness_preferred", "correctness_preferred_hard", "margin_score", "score"):
        assert value(hm["Ties"][key]) is None and "pick" in hm["Ties"][key]["reason"], key
    assert value(human["metrics"]["Score"]) is None and "Ties" in human["metrics"]["Score"]["reason"]
    assert_honest(human)
    wrong = benchmark_metrics("rewardbench2", items, picks={**picks, ref("tied:7"): ("chosen_2", "rejected_0")},
                              n_boot=BOOT)["metrics"]["subsets"]
    assert value(wrong["Ties"]["tied_pick_correct"]) == 0.0  # a split with an incorrect answer in it

    without_ties = [i for i in items if i.category_path != ("Ties",)]
    score = benchmark_metrics("rewardbench2", without_ties, picks=picks, n_boot=BOOT)["metrics"]["Score"]
    assert value(score) == pytest.approx((1 / 3 + 1 / 4 + 1) / 3)


def test_rewardbench2_ties_composite_terms_against_hand_computation():
    """Every term of process_single_model on scores that make each of them move, and its edge cases."""
    items = items_of(SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl", "rewardbench2")
    ties = [i for i in items if i.category_path == ("Ties",)]
    tied7 = next(i for i in ties if i.entry_id == "tied:7")
    assert len({i.group_id for i in ties}) == 1  # ref:7 and tied:7 are resampled together

    def terms(ref7: dict, tied7: dict) -> dict:
        return benchmark_metrics("rewardbench2", ties, scores={ref("ref:7"): ref7, ref("tied:7"): tied7},
                                 n_boot=BOOT)["metrics"]["subsets"]["Ties"]

    # ref margin 5 - 2 = 3, tied margin 4 - 2 = 2, correct spread 5 - 4 = 1: both comparisons hold, tanh(2 / 1 - 1).
    good = terms({"chosen_0": 5, "rejected_0": 1, "rejected_1": 2, "rejected_2": 1},
                 {"chosen_0": 5, "chosen_1": 4.5, "chosen_2": 4, "rejected_0": 1, "rejected_1": 2, "rejected_2": 0,
                  "rejected_3": 2})
    assert [value(good[k]) for k in ("tied_accuracy", "ref_accuracy", "correctness_preferred",
                                     "correctness_preferred_hard")] == [1.0, 1.0, 1.0, 1.0]
    assert value(good["margin_score"]) == pytest.approx(math.tanh(1.0))
    assert value(good["score"]) == pytest.approx(1.0 + 0.01 * math.tanh(1.0))  # above 1, as the evaluator's can be
    assert good["score"]["ci"] is None and "one resampling group" in good["score"]["ci_reason"]  # not [x, x]
    # The hard comparison takes the smaller margin: ref's 0.5 fails it where tied's 2 passes the easy one.
    hard = terms({"chosen_0": 2.5, "rejected_0": 1, "rejected_1": 2, "rejected_2": 1},
                 {"chosen_0": 5, "chosen_1": 4.5, "chosen_2": 4, "rejected_0": 1, "rejected_1": 2, "rejected_2": 0,
                  "rejected_3": 2})
    assert value(hard["correctness_preferred"]) == 1.0 and value(hard["correctness_preferred_hard"]) == 0.0
    assert value(hard["margin_score"]) == pytest.approx(math.tanh(0.5 / 1 - 1))
    # Every score equal: margins and spread 0, 0 / 0 counts 0 in the tanh term (the evaluator's nan_to_num).
    flat = terms({k: 1.0 for k in ("chosen_0", "rejected_0", "rejected_1", "rejected_2")},
                 {k: 1.0 for k in tied7.keys})
    assert value(flat["margin_score"]) == 0.0 and value(flat["score"]) == 0.0
    # Without ref:7 nothing pairs tied:7: the comparisons, and so the composite, have no value, with the reason.
    alone = benchmark_metrics("rewardbench2", [tied7],
                              scores={ref("tied:7"): {k: float(n) for n, k in enumerate(reversed(tied7.keys))}},
                              n_boot=BOOT)["metrics"]["subsets"]["Ties"]
    assert value(alone["correctness_preferred"]) is None and "ref: item" in alone["correctness_preferred"]["reason"]
    assert value(alone["score"]) is None and "all five terms" in alone["score"]["reason"]


def test_rewardbench2_ties_composite_interval_resamples_whole_ref_tied_pairs(tmp_path):
    """Eight ref:/tied: pairs, each one resampling group: the composite has an interval of nonzero width
    around the weighted sum of its terms, and people vs the scorer is compared on the same draws."""
    rows = []
    for n in range(8):
        rows.append({"id": f"ref:{n}", "subset": "Ties", "prompt": f"Name the capital of country {n}.",
                     "chosen": [f"capital {n}"], "rejected": [f"wrong {n}a", f"wrong {n}b", f"wrong {n}c"]})
        rows.append({"id": f"tied:{n}", "subset": "Ties", "prompt": f"Name one large city of country {n}.",
                     "chosen": [f"city {n}a", f"city {n}b"], "rejected": [f"no {n}a", f"no {n}b"]})
    path = tmp_path / "ties.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    items = [i for e in rewardbench2.read(path).entries for i in e.items]
    groups = {i.entry_id: i.group_id for i in items}
    assert all(groups[f"ref:{n}"] == groups[f"tied:{n}"] for n in range(8)) and len(set(groups.values())) == 8
    rng = np.random.default_rng(4)
    scores = {i.ref: {k: float(rng.normal()) + (1.0 if k in i.correct_keys and n % 3 else 0.0)
                      for k in i.keys} for n, i in enumerate(items)}
    m = benchmark_metrics("rewardbench2", items, scores=scores, n_boot=BOOT)
    ties = m["metrics"]["subsets"]["Ties"]
    point = sum(w * ties[k]["value"] for w, k in zip(rewardbench2.TIES_WEIGHTS, rewardbench2.TIES_TERMS))
    assert ties["score"]["value"] == pytest.approx(point)
    lo, hi = ties["score"]["ci"]
    assert lo <= point <= hi and hi - lo > 0
    assert m["metrics"]["Score"]["value"] == pytest.approx(point)  # Ties is the only subset
    assert_honest(m)
    picks = {i.ref: i.correct_keys[0] if (n // 2) % 2 else i.keys[-1] for n, i in enumerate(items)}  # half the pairs
    both = benchmark_comparison("rewardbench2", items, scores=scores, picks=picks, n_boot=BOOT)
    assert both["difference"]["subsets"]["Ties"]["ref_accuracy"]["ci"] is not None
    assert both["human"]["subsets"]["Ties"]["tied_pick_correct"]["value"] == pytest.approx(0.5)


# --- Personalized RewardBench -------------------------------------------------------------------


def test_prb_win_rate_counts_ties_apart_for_models_and_people():
    items = items_of(SAMPLES / "prb" / "prb_sample.jsonl", "prb")
    scores = {ref("prb-lifestyle-0001"): {"chosen": 2, "rejected": 1}, ref("prb-art-0001"): {"chosen": 1, "rejected": 1},
              ref("prb-society-0001"): {"chosen": 0, "rejected": 1}}
    m = benchmark_metrics("prb", items, scores=scores, n_boot=BOOT)["metrics"]
    assert value(m["all"]["win_rate"]) == pytest.approx(1 / 3) and m["all"]["ties"] == 1
    assert value(m["all"]["tie_rate"]) == pytest.approx(1 / 3)
    assert value(m["Art_and_Entertainment"]["win_rate"]) == 0.0 and m["Art_and_Entertainment"]["ties"] == 1

    picks = labels_to_picks({
        "prb-lifestyle-0001": ["tie_good", "tie_good", "chosen"],  # a tie: not a win, counted apart
        "prb-art-0001": ["chosen"],
        "prb-society-0001": ["rejected", "rejected", "tie_bad"],  # a loss
    })
    human = benchmark_metrics("prb", items, picks=picks, n_boot=BOOT)
    hm = human["metrics"]
    assert value(hm["all"]["win_rate"]) == pytest.approx(1 / 3) and hm["all"]["ties"] == 1
    assert value(hm["Lifestyle_and_Personal_Development"]["tie_rate"]) == 1.0
    assert value(hm["Society_and_Culture"]["win_rate"]) == 0.0 and hm["Society_and_Culture"]["ties"] == 0
    assert human["picks"]["tie_good"] == 1 and human["picks"]["decided"] == 2
    assert_honest(human)


# --- pairs -----------------------------------------------------------------------------------------


def test_pairs_accuracy_is_strict_for_models_and_people():
    items = items_of(SAMPLES / "pairs", "pairs")
    refs = [i.ref for i in items]
    model = dict(zip(refs, [{"chosen": 1, "rejected": 0}, {"chosen": 1, "rejected": 1}, {"chosen": 0, "rejected": 1},
                            {"chosen": 3, "rejected": 2}, {"chosen": 2, "rejected": 2}, {"chosen": 5, "rejected": 0}]))
    m = benchmark_metrics("pairs", items, scores=model, n_boot=BOOT)["metrics"]
    assert value(m["all"]) == pytest.approx(3 / 6) and m["all"]["n"] == 6
    picks = dict(zip(refs, ["chosen", "tie_good", "tie_bad", ("chosen", "rejected"), None, "rejected"]))
    human = benchmark_metrics("pairs", items, picks=picks, n_boot=BOOT)
    assert value(human["metrics"]["all"]) == pytest.approx(1 / 6)
    assert human["picks"] == {"decided": 2, "tie_good": 1, "tie_bad": 1, "split": 1, "no_pick": 1}
    assert_honest(human)


def test_point_values_agree_with_each_formats_plain_metrics():
    """The interval path and the formats' point rules (tests/test_formats.py) give the same numbers."""
    rmb_items = items_of(SAMPLES / "rmb" / "RMB_dataset", "rmb")
    plain = rmb.metrics(rmb_items, RMB_SCORES)
    new = benchmark_metrics("rmb", rmb_items, scores=RMB_SCORES, n_boot=0)["metrics"]
    for kind in ("pairwise", "bon"):
        assert {k: r.value for k, r in plain[kind].items()} == {k: c["value"] for k, c in new[kind].items()}
    rb_items = items_of(SAMPLES / "rewardbench" / "rewardbench_sample.jsonl", "rewardbench")
    plain = rewardbench.metrics(rb_items, RB_SCORES)
    new = benchmark_metrics("rewardbench", rb_items, scores=RB_SCORES, n_boot=0)["metrics"]
    for section, r in plain["sections"].items():
        assert new["sections"][section]["value"] == (pytest.approx(r.value) if r.value is not None else None)
    rb2_items = items_of(SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl", "rewardbench2")
    plain = rewardbench2.metrics(rb2_items, RB2_SCORES)
    new = benchmark_metrics("rewardbench2", rb2_items, scores=RB2_SCORES, n_boot=0)["metrics"]["subsets"]
    assert new["Factuality"]["score"]["value"] == plain["Factuality"]["score"].value
    assert new["Ties"]["tied_accuracy"]["value"] == plain["Ties"]["tied_accuracy"].value
    # draws=0: no interval, and it says why
    cell = new["Factuality"]["score"]
    assert cell["ci"] is None and cell["ci_reason"]
    prb_items = items_of(SAMPLES / "prb" / "prb_sample.jsonl", "prb")
    prb_scores = {i.ref: {"chosen": float(n), "rejected": 1.0} for n, i in enumerate(prb_items)}
    plain = prb.metrics(prb_items, prb_scores)
    new = benchmark_metrics("prb", prb_items, scores=prb_scores, n_boot=0)["metrics"]
    assert {c: (r["win_rate"].value, r["ties"]) for c, r in plain.items()} == {
        c: (r["win_rate"]["value"], r["ties"]) for c, r in new.items()}
    pair_items = items_of(SAMPLES / "pairs", "pairs")
    pair_scores = {i.ref: {"chosen": float(n % 3), "rejected": 1.0} for n, i in enumerate(pair_items)}
    assert pairs_format.metrics(pair_items, pair_scores)["all"].value == pytest.approx(
        benchmark_metrics("pairs", pair_items, scores=pair_scores, n_boot=0)["metrics"]["all"]["value"])


# --- intervals -----------------------------------------------------------------------------------


def synthetic_pairs(n_groups: int, per_group: int, *, own_group: bool = False) -> tuple[list[Item], dict]:
    """Pair items, ``per_group`` copies of each group's outcome; half the groups right, half wrong."""
    items, scores = [], {}
    for g in range(n_groups):
        for k in range(per_group):
            item = Item(format="pairs", entry_id=f"e{g}-{k}", item_index=0,
                        candidates=[Candidate("chosen", "a"), Candidate("rejected", "b")], correct_keys=("chosen",),
                        category_path=(), group_id=f"g{g}-{k}" if own_group else f"g{g}")
            items.append(item)
            scores[item.ref] = {"chosen": float(g % 2 == 0), "rejected": 0.5}
    return items, scores


def width(cell: dict) -> float:
    return cell["ci"][1] - cell["ci"][0]


def test_a_groups_items_are_drawn_together_so_copies_do_not_narrow_the_interval():
    base_items, base_scores = synthetic_pairs(20, 1)
    base = benchmark_metrics("pairs", base_items, scores=base_scores, n_boot=2000)
    items, scores = synthetic_pairs(20, 5)
    grouped = benchmark_metrics("pairs", items, scores=scores, n_boot=2000)
    items, scores = synthetic_pairs(20, 5, own_group=True)
    independent = benchmark_metrics("pairs", items, scores=scores, n_boot=2000)
    w_base, w_grouped, w_indep = (width(r["metrics"]["all"]) for r in (base, grouped, independent))
    assert value(grouped["metrics"]["all"]) == value(base["metrics"]["all"]) == 0.5
    assert grouped["n_groups"] == 20 and independent["n_groups"] == 100
    assert w_grouped == pytest.approx(w_base, rel=0.15)  # five copies of a group add no information
    assert w_indep < 0.6 * w_grouped  # as independent items they would (about 1 / sqrt(5))


def test_a_group_spanning_two_categories_stays_in_one_stratum():
    groups = ["g1", "g1", "g2", "g3", "g4", "g5"]
    rates = GroupedRates(groups, ["Chat", "Chat Hard", "Chat", "Chat", "Chat Hard", "Chat Hard"], n_boot=200)
    assert rates.stratum.tolist() == ["Chat"] * 4 + ["Chat Hard"] * 2
    drawn = [rates.weights.sum(np.eye(6)[i]) for i in range(6)]  # times each item is drawn, per draw
    assert np.array_equal(drawn[0], drawn[1])  # g1's two items come together in every draw
    assert len(set(drawn[0].tolist())) > 1  # and g1 is resampled, not fixed
    assert np.array_equal(drawn[0] + drawn[2] + drawn[3], np.full(200, 3.0))  # Chat: three groups per draw


def test_undefined_numbers_are_none_with_a_reason():
    items = items_of(SAMPLES / "prb" / "prb_sample.jsonl", "prb")
    out = benchmark_metrics("prb", items, scores={}, n_boot=BOOT)
    assert out["n_items"] == 0 and out["reason"] and out["metrics"]["all"]["win_rate"]["value"] is None
    assert out["metrics"]["all"]["win_rate"]["reason"] == "no scored items"
    with pytest.raises(ValueError, match="exactly one"):
        benchmark_metrics("prb", items, n_boot=BOOT)
    with pytest.raises(ValueError, match="no metric rules"):
        benchmark_metrics("rmgap", items, scores={}, n_boot=BOOT)


# --- human vs model, paired ----------------------------------------------------------------------------


def test_human_vs_model_difference_resamples_the_same_groups_for_both_sides():
    items, scores = synthetic_pairs(40, 3)
    # People agree with the model except on four groups, where they get it right and the model does not.
    picks = {}
    for item in items:
        g = int(item.group_id[1:])
        model_right = scores[item.ref]["chosen"] > scores[item.ref]["rejected"]
        picks[item.ref] = "chosen" if model_right or g in (1, 3, 5, 7) else "rejected"
    out = benchmark_comparison("pairs", items, scores=scores, picks=picks, n_boot=2000)
    diff = out["difference"]["all"]
    human, model = out["human"]["all"], out["model"]["all"]
    assert human["value"] == pytest.approx(24 / 40) and model["value"] == pytest.approx(0.5)
    assert diff["difference"] == pytest.approx(human["value"] - model["value"])
    assert diff["ci"][0] <= diff["difference"] <= diff["ci"][1]
    # Paired: far narrower than two independent intervals combined, and clearly above zero.
    assert width(diff) < 0.5 * (width(human) + width(model))
    assert diff["ci"][0] > 0
    assert diff["p_value"] is not None and diff["p_value"] < 0.05
    json.dumps(out)


def test_a_proportions_difference_is_bootstraps_paired_difference_on_the_same_draws():
    from rmgap_annot.stats import bootstrap as bs

    items, scores = synthetic_pairs(12, 3)
    picks = {item.ref: "chosen" if int(item.group_id[1:]) % 3 else "rejected" for item in items}
    out = benchmark_comparison("pairs", items, scores=scores, picks=picks, n_boot=300, seed=5)["difference"]["all"]
    groups = [item.group_id for item in items]
    human = [float(picks[item.ref] == "chosen") for item in items]
    model = [float(scores[item.ref]["chosen"] > scores[item.ref]["rejected"]) for item in items]
    strata = ["(none)"] * len(items)
    weights = bs.bind_strata(bs.stratified_draws(groups, strata, draws=300, seed=5), groups, strata)
    ref = bs.paired_difference(human, model, groups, weights)
    assert out["difference"] == pytest.approx(ref["difference"])
    assert out["ci"] == pytest.approx(ref["ci"])
    assert out["p_value"] == pytest.approx(ref["p_value"])


def test_a_difference_with_no_spread_in_its_draws_gets_the_conservative_interval_not_a_point():
    items, _ = synthetic_pairs(3, 2)
    scores = {item.ref: {"chosen": 0.0, "rejected": 1.0} for item in items}  # the model wrong everywhere
    picks = {item.ref: "chosen" for item in items}  # people right everywhere: every draw differs by exactly 1
    out = benchmark_comparison("pairs", items, scores=scores, picks=picks, n_boot=500)
    diff, human, model = out["difference"]["all"], out["human"]["all"], out["model"]["all"]
    assert diff["difference"] == 1.0
    assert "conservative" in diff["ci_method"]
    assert diff["ci"] == pytest.approx([human["ci"][0] - model["ci"][1], 1.0])
    assert diff["ci"][0] < 0.8  # three groups cannot pin a difference down
    assert out["n_left_out"] == 0
    assert benchmark_comparison("pairs", items, scores=scores, picks={}, n_boot=50)["reason"]


def test_group_intervals_cover_a_known_truth_where_item_intervals_do_not():
    """Simulation: 30 groups of 6 correlated items (group rates ~ Beta(1.4, 0.6), mean 0.7), 300 data sets."""
    rng = np.random.default_rng(0)
    n_groups, per_group, reps = 30, 6, 300
    covered = {"groups": 0, "items": 0}
    strata = np.repeat(["A", "B"], n_groups * per_group // 2)
    for r in range(reps):
        p = rng.beta(1.4, 0.6, size=n_groups)
        y = (rng.random((n_groups, per_group)) < p[:, None]).astype(float).ravel()
        units = {"groups": np.repeat([f"g{g}" for g in range(n_groups)], per_group),
                 "items": [f"i{i}" for i in range(n_groups * per_group)]}
        for name, groups in units.items():
            est = GroupedRates(groups, strata, n_boot=400, seed=r).proportion(y, np.ones(len(y), dtype=bool))
            covered[name] += est.ci[0] <= 0.7 <= est.ci[1]
    assert covered["groups"] / reps >= 0.90  # measured 0.947
    assert covered["items"] / reps <= 0.85  # measured 0.77: resampling items ignores the correlation


# --- rating questions ----------------------------------------------------------------------------------


def ratings_table(seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for it in range(24):
        base = int(rng.integers(1, 6))
        for a in range(3):
            v = int(np.clip(base + rng.integers(-1, 2), 1, 5))
            rows.append({"annotator": f"a{a}", "item": f"i{it}", "group": f"g{it // 4}", "question": "usefulness",
                         "value": None if (it + a) % 11 == 0 else v})
            rows.append({"annotator": f"a{a}", "item": f"i{it}", "group": f"g{it // 4}", "question": "factual",
                         "value": ["no", "yes"][int(rng.integers(0, 2))]})
    return rows


def test_rating_alpha_per_question_matches_krippendorff_with_a_group_interval_and_distribution():
    rows = ratings_table()
    out = rating_agreement(rows, scales={"usefulness": [1, 2, 3, 4, 5], "factual": ["no", "yes"]}, n_boot=500)
    assert list(out) == ["usefulness", "factual"]
    frame = pd.DataFrame(rows)
    for question, scale in (("usefulness", [1, 2, 3, 4, 5]), ("factual", ["no", "yes"])):
        sub = frame[frame["question"] == question]
        grid = sub.pivot(index="annotator", columns="item", values="value")
        coded = grid.apply(lambda col: col.map(lambda v: np.nan if v is None or v != v else scale.index(v))).to_numpy(float)
        expected = krippendorff.alpha(reliability_data=coded, level_of_measurement="ordinal")
        res = out[question]
        assert res["alpha"] == pytest.approx(expected)
        assert res["ci"][0] <= res["alpha"] <= res["ci"][1]
        assert res["n_groups"] == 6
        assert sum(res["distribution"].values()) + res["n_missing"] == len(sub)
        assert list(res["distribution"]) == [str(v) for v in scale]
    assert out["usefulness"]["n_missing"] == sum(1 for r in rows if r["question"] == "usefulness" and r["value"] is None)
    json.dumps(out)


def test_rating_alpha_undefined_is_none_with_a_reason():
    one_rater = [{"annotator": "a", "item": f"i{i}", "group": "g", "question": "q", "value": i % 5 + 1} for i in range(5)]
    res = rating_agreement(one_rater, n_boot=100)["q"]
    assert res["alpha"] is None and "two or more" in res["reason"]
    same = [{"annotator": a, "item": f"i{i}", "group": f"g{i}", "question": "q", "value": 4} for i in range(4) for a in "ab"]
    res = rating_agreement(same, scales={"q": [1, 2, 3, 4, 5]}, n_boot=100)["q"]
    assert res["alpha"] is None and "same value" in res["reason"]
    assert res["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 8, "5": 0}
    with pytest.raises(ValueError, match="not on the question's scale"):
        rating_agreement([{"annotator": "a", "item": "i", "group": "g", "question": "q", "value": 7}], scales={"q": [1, 2]})


def test_rating_interval_resamples_groups_not_items():
    """Copies of an item inside its group leave the interval as wide; as separate groups they narrow it."""
    rows = [r for r in ratings_table(2) if r["question"] == "usefulness"]
    copies = [{**r, "item": f"{r['item']}-{k}"} for r in rows for k in range(4)]
    apart = [{**r, "group": r["item"]} for r in copies]
    w = {name: rating_agreement(t, scales={"usefulness": [1, 2, 3, 4, 5]}, n_boot=1000)["usefulness"]
         for name, t in (("base", rows), ("copies", copies), ("apart", apart))}
    assert w["copies"]["alpha"] == pytest.approx(w["base"]["alpha"], abs=0.02)
    assert width(w["apart"]) < 0.75 * width(w["copies"])
