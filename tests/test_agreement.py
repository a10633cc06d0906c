"""Agreement statistics: the fast path equals the reference packages; Krippendorff's own example end to end."""

from __future__ import annotations

import csv
import json
import random

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from rmgap_annot.stats import agreement as agr
from rmgap_annot.report import build_report
from rmgap_annot.synthetic import write_jsonl
from tests.analytics_helpers import add_labels, item_ids

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders, 12 units.
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _as_nan(rows):
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


@pytest.fixture(autouse=True)
def _quiet_reference():
    """krippendorff.alpha warns (0/0) on degenerate random data; the test checks we say n/a there."""
    with np.errstate(all="ignore"):
        yield


def _reference(data, level, domain=None):
    try:
        return krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=domain)
    except ValueError:
        return float("nan")


@pytest.mark.parametrize("level,domain", [("nominal", None), ("ordinal", [1, 2, 3, 4, 5])])
def test_fast_alpha_equals_krippendorff_on_random_data(level, domain):
    rng = np.random.default_rng(7)
    for _ in range(150):
        coders, units = rng.integers(2, 6), rng.integers(2, 40)
        data = rng.integers(1, rng.integers(2, 6) + 1, size=(coders, units)).astype(float)
        data[rng.random(data.shape) < rng.uniform(0, 0.6)] = np.nan
        ref = _reference(data, level, domain)
        fast = agr.alpha_from_reliability_data(data, level_of_measurement=level, value_domain=domain)
        if np.isnan(ref):
            assert np.isnan(fast)
        else:
            assert fast == pytest.approx(ref, abs=1e-12)


def test_k2011_example_through_the_fast_path():
    data = _as_nan(K2011)
    assert agr.alpha_from_reliability_data(data, level_of_measurement="nominal") == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-12
    )
    assert round(agr.alpha_from_reliability_data(data, level_of_measurement="nominal"), 3) == 0.743


def _rename_keys(record: dict, mapping: dict[str, str]) -> dict:
    for resp in record["responses"]:
        resp["key"] = mapping[resp["key"]]
    for group in record["prompt_groups"]:
        group["winner"] = mapping[group["winner"]]
    record["models"] = {mapping[k]: v for k, v in record["models"].items()}
    return record


def test_k2011_example_end_to_end(tmp_path, engine, record_factory, cli):
    """Labels in through `labels import`, alpha out of `report --json`: 0.743."""
    # A record has four responses but the example uses five values, so unit 10
    # (the only one with value 5) lives on a second record whose keys include v5.
    rec_a = _rename_keys(record_factory("k-a", "Chat", 1), {f"response{i}": f"v{i}" for i in range(1, 5)})
    rec_b = _rename_keys(record_factory("k-b", "Chat", 2), {f"response{i}": f"v{i + 1}" for i in range(1, 5)})
    bench = write_jsonl(tmp_path / "k2011.jsonl", [rec_a, rec_b])
    assert cli("import-benchmark", str(bench)).exit_code == 0
    slots = [("k-a", g, p) for g in range(4) for p in range(3)]
    unit_item = {u: slots[u] for u in range(12) if u != 9}
    unit_item[9] = ("k-b", 0, 0)
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", "group", "prompt_index", "annotator", "choice", "naturalness"])
        for c, row in enumerate(K2011):
            for u, value in enumerate(row):
                if value is not None:
                    rid, g, p = unit_item[u]
                    w.writerow([rid, g, p, f"coder{c + 1}", f"v{value}", 3])
        # A "Can't decide" is missing, not a value: alpha must not move.
        w.writerow(["k-a", 3, 2, "coder1", "", 3])
    result = cli("labels", "import", str(path))
    assert result.exit_code == 0, result.output
    out = cli("report", "--json", "--draws", "200")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    alpha = report["agreement"]["choice_alpha"]
    assert round(alpha["All"]["alpha"], 3) == 0.743
    assert round(alpha["Chat"]["alpha"], 3) == 0.743
    assert alpha["All"]["n_items"] == 11  # unit 12 has one value: not pairable
    assert alpha["All"]["n_missing"] == 1
    assert alpha["Writing"]["alpha"] is None and "reason" in alpha["Writing"]
    lo, hi = alpha["All"]["ci"]
    assert lo <= alpha["All"]["alpha"] <= hi


def test_bootstrap_interval_is_reproducible(engine, benchmark_id):
    ids = item_ids(engine, benchmark_id)
    rng = random.Random(3)
    rows = []
    for (rid, g, p), iid in ids.items():
        for a in ("ann1", "ann2", "ann3"):
            rows.append({"annotator": a, "item_id": iid, "choice": f"response{rng.randint(1, 2)}", "naturalness": rng.randint(1, 5)})
    add_labels(engine, rows)
    r1 = build_report(engine=engine, benchmark_id=benchmark_id, draws=300, seed=5)["agreement"]
    r2 = build_report(engine=engine, benchmark_id=benchmark_id, draws=300, seed=5)["agreement"]
    r3 = build_report(engine=engine, benchmark_id=benchmark_id, draws=300, seed=6)["agreement"]
    for section in ("choice_alpha", "naturalness_alpha"):
        assert r1[section]["All"]["ci"] == r2[section]["All"]["ci"]
        assert r1[section]["All"]["alpha"] == r3[section]["All"]["alpha"]
    # Two records per domain give few distinct resamples, so intervals may
    # coincide across seeds; the draws themselves must not.
    from rmgap_annot.stats.human_metrics import item_summary, record_draws
    from rmgap_annot.labels_frame import load_labels

    summary = item_summary(load_labels(engine=engine, benchmark_id=benchmark_id))
    d5, d6 = record_draws(summary, draws=300, seed=5), record_draws(summary, draws=300, seed=6)
    assert all((d5[d].weights == record_draws(summary, draws=300, seed=5)[d].weights).all() for d in d5)
    assert any((d5[d].weights != d6[d].weights).any() for d in d5)


def test_bootstrap_weights_resample_units():
    w = agr.resample_weights(50, draws=20, seed=1)
    assert w.shape == (20, 50)
    assert (w.sum(axis=1) == 50).all()
    assert (agr.resample_weights(50, draws=20, seed=1) == w).all()
    # The bootstrap alpha of a draw equals krippendorff.alpha on the units it repeats.
    rng = np.random.default_rng(2)
    data = rng.integers(1, 4, size=(3, 50)).astype(float)
    data[rng.random(data.shape) < 0.2] = np.nan
    units = agr.DomainUnits(
        n_units=50, unit_idx=np.nonzero(~np.isnan(data))[1], value_code=(data[~np.isnan(data)] - 1).astype(int)
    )
    res = agr.alpha_by_domain({"Chat": units}, level="nominal", n_values=3, weights={"Chat": w[:1]})
    repeated = np.repeat(data, w[0].astype(int), axis=1)
    assert res["Chat"]["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-12)
    stats = agr.nominal_stats(agr.value_counts_matrix(units.unit_idx, units.value_code, n_units=50, n_values=3))
    boot_alpha = agr.nominal_alpha_from_sums(w[:1] @ stats.disagreement, np.asarray((stats.pairable.T @ w[:1].T).T))[0]
    assert boot_alpha == pytest.approx(krippendorff.alpha(reliability_data=repeated, level_of_measurement="nominal"), abs=1e-12)


def test_degenerate_alpha_gives_reasons():
    one_label = agr.DomainUnits(n_units=3, unit_idx=np.array([0, 1, 2]), value_code=np.array([0, 1, 0]))
    res = agr.alpha_by_domain({"Chat": one_label}, level="nominal", n_values=2)
    assert res["Chat"]["alpha"] is None and res["Chat"]["reason"] == agr.NO_PAIRS
    same = agr.DomainUnits(n_units=2, unit_idx=np.array([0, 0, 1, 1]), value_code=np.array([1, 1, 1, 1]))
    res = agr.alpha_by_domain({"Chat": same}, level="nominal", n_values=2)
    assert res["Chat"]["alpha"] is None and res["Chat"]["reason"] == agr.ONE_VALUE
    res = agr.alpha_by_domain({"Chat": same}, level="ordinal", n_values=5)
    assert res["All"]["alpha"] is None and res["All"]["reason"] == agr.ONE_VALUE


def test_unanimous_items_give_alpha_one_without_a_zero_width_interval():
    """Four items, two coders agreeing on each (values differ between items): alpha is 1, but no resample
    can hold a disagreement, so every draw is 1 too. [1.000, 1.000] would claim a certainty four items do
    not give: the interval is None with its reason, and the displays say so."""
    from rmgap_annot.format_sections import alpha_text

    unanimous = agr.DomainUnits(n_units=4, unit_idx=np.array([0, 0, 1, 1, 2, 2, 3, 3]),
                                value_code=np.array([0, 0, 1, 1, 0, 0, 1, 1]))
    res = agr.alpha_by_domain({"Chat": unanimous}, level="nominal", n_values=2,
                              weights={"Chat": agr.resample_weights(4, draws=200, seed=3)})["Chat"]
    assert res["alpha"] == 1.0 and res["ci"] is None and res["ci_reason"] == agr.DEGENERATE_CI
    assert alpha_text(res) == f"1.000 (no interval: {agr.DEGENERATE_CI})"
    # One disagreement among them: the draws spread, and the interval is back.
    mixed = agr.DomainUnits(n_units=4, unit_idx=unanimous.unit_idx, value_code=np.array([0, 0, 1, 1, 0, 1, 1, 1]))
    res = agr.alpha_by_domain({"Chat": mixed}, level="nominal", n_values=2,
                              weights={"Chat": agr.resample_weights(4, draws=200, seed=3)})["Chat"]
    assert res["ci"] is not None and res["ci"][0] < res["ci"][1]
    assert alpha_text(res).startswith(f"{res['alpha']:.3f} [")


def test_percent_agreement_and_fleiss_by_hand():
    # unit 0: a, a; unit 1: a, b.
    counts = agr.value_counts_matrix(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), n_units=2, n_values=2)
    assert agr.percent_agreement(counts)["value"] == pytest.approx(0.5)
    # P-bar 0.5, p = (3/4, 1/4), Pe = 10/16: kappa = (0.5 - 0.625) / 0.375 = -1/3.
    assert agr.fleiss_kappa(counts)["kappa"] == pytest.approx(-1 / 3)
    uneven = agr.value_counts_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), n_units=2, n_values=2)
    res = agr.fleiss_kappa(uneven)
    assert res["kappa"] is None and "same number" in res["reason"]


def test_cohen_kappa_matches_sklearn():
    rng = np.random.default_rng(4)
    for _ in range(50):
        n = rng.integers(2, 40)
        x, y = rng.integers(0, 4, n), rng.integers(0, 4, n)
        ref = cohen_kappa_score(x, y)
        fast = agr.cohen_kappa(x, y, 4)
        if np.isnan(ref):
            assert np.isnan(fast)
        else:
            assert fast == pytest.approx(ref, abs=1e-12)


def test_cohen_matrix_on_shared_items():
    m = agr.cohen_kappa_matrix(
        ["a", "a", "a", "b", "b", "b", "c"], [1, 2, 3, 1, 2, 3, 1], ["x", "y", "x", "x", "y", "y", "x"]
    )
    assert m["annotators"] == ["a", "b", "c"]
    assert m["kappa"][0][1] == pytest.approx(cohen_kappa_score(["x", "y", "x"], ["x", "y", "y"]))
    assert m["n_shared"][0][2] == 1 and m["kappa"][0][2] is None  # too few shared items


def test_leave_one_out_alpha_drops_the_annotator():
    data = _as_nan(K2011)
    raters, units = np.nonzero(~np.isnan(data))
    loo = agr.leave_one_out_alpha(units, (data[raters, units] - 1).astype(int), raters, n_units=12, n_values=5)
    for r in range(4):
        ref = krippendorff.alpha(reliability_data=np.delete(data, r, axis=0), level_of_measurement="nominal")
        assert loo[r] == pytest.approx(ref, abs=1e-12)


def test_many_distinct_keys_take_the_sparse_path_with_the_same_result():
    """Records may name their keys freely; hundreds of distinct keys must give the same alpha and interval."""
    rng = np.random.default_rng(9)
    unit_idx = np.repeat(np.arange(60), 3)
    codes = rng.integers(0, 3, unit_idx.size)
    w = agr.resample_weights(60, draws=50, seed=2)
    small = agr.alpha_by_domain({"Chat": agr.DomainUnits(60, unit_idx, codes)}, level="nominal", n_values=3, weights={"Chat": w})
    wide = agr.alpha_by_domain({"Chat": agr.DomainUnits(60, unit_idx, codes * 150)}, level="nominal", n_values=400, weights={"Chat": w})
    assert wide["Chat"]["alpha"] == pytest.approx(small["Chat"]["alpha"], abs=1e-12)
    assert wide["Chat"]["ci"] == pytest.approx(small["Chat"]["ci"], abs=1e-12)
