"""Record-clustered intervals and tests (issue 11): known answers, edge cases, and coverage by simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps
from sqlalchemy import select

from rmgap_annot.db import session_scope
from rmgap_annot.stats.human_metrics import item_summary, record_draws
from rmgap_annot.models import Item, Record
from rmgap_annot.report import build_report, label_sections
from rmgap_annot.scores_io import import_scores
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats import simulation as sim
from tests.analytics_helpers import add_labels, item_ids, winners

KEYS = ["response1", "response2", "response3", "response4"]


# --- the machinery, on known answers ------------------------------------------------


def test_cluster_draws_expand_whole_clusters_within_strata():
    cluster = np.array(["a", "a", "a", "b", "c", "c", "x", "y"])
    stratum = np.array(["S", "S", "S", "S", "S", "S", "T", "T"])
    draws = bs.stratified_draws(cluster, stratum, draws=200, seed=3)
    assert set(draws) == {"S", "T"}
    w = bs.unit_weights(draws, cluster, stratum)
    assert w.shape == (200, 8)
    # every unit of a cluster has its cluster's count; each stratum keeps its number of clusters
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 1] == w[:, 2]).all() and (w[:, 4] == w[:, 5]).all()
    assert (draws["S"].weights.sum(axis=1) == 3).all() and (draws["T"].weights.sum(axis=1) == 2).all()
    # a stratum's draws do not depend on which other strata exist
    alone = bs.stratified_draws(cluster[:6], stratum[:6], draws=200, seed=3)
    assert (alone["S"].weights == draws["S"].weights).all()
    with pytest.raises(ValueError):
        draws["S"].expand(["zzz"])


def test_bound_draws_sum_per_cluster_equals_the_expanded_weights():
    from scipy import sparse

    rng = np.random.default_rng(4)
    cluster = rng.integers(0, 30, 400)
    cd = bs.cluster_draws(cluster, draws=50, seed=9)
    bound = cd.bind(cluster)
    w = cd.expand(cluster)
    v = rng.random(400)
    m = sparse.random(400, 6, density=0.3, random_state=1, format="csr")
    assert np.allclose(bound.sum(v), w @ v) and np.allclose(cd.total(cluster, v), w @ v)
    assert np.allclose(bound.sum(m), w @ m.toarray()) and np.allclose(bound.sum(m.toarray()), w @ m.toarray())
    stratum = np.where(cluster < 10, "S", "T")
    by_stratum = bs.stratified_draws(cluster, stratum, draws=50, seed=9)
    assert np.allclose(bs.bind_strata(by_stratum, cluster, stratum).sum(v), bs.unit_weights(by_stratum, cluster, stratum) @ v)


def test_icc_and_design_effect_known_cases():
    rec = np.repeat(np.arange(10), 12)
    identical = np.repeat(np.arange(10) % 2, 12).astype(float)  # every item of a record alike
    c = bs.clustering(identical, rec)
    assert c["icc"] == pytest.approx(1.0) and c["design_effect"] == pytest.approx(12.0)
    rng = np.random.default_rng(0)
    independent = bs.clustering((rng.random(12000) < 0.5).astype(float), np.repeat(np.arange(1000), 12))
    assert abs(independent["icc"]) < 0.03 and independent["design_effect"] == pytest.approx(1.0, abs=0.35)
    flat = bs.clustering(np.ones(24), np.repeat(np.arange(2), 12))
    assert flat["icc"] is None and flat["design_effect"] is None and flat["reason"]


def test_wilson_matches_scipy():
    want = sps.binomtest(17, 40).proportion_ci(confidence_level=0.95, method="wilson")
    assert bs.wilson(17, 40) == [pytest.approx(want.low), pytest.approx(want.high)]


def test_clustered_score_test_is_mcnemar_with_one_item_per_cluster():
    # b = 7 human-only, c = 2 scorer-only, 11 concordant, each item its own cluster
    diff = [1] * 7 + [-1] * 2 + [0] * 11
    res = bs.clustered_score_test(diff, np.arange(20))
    assert res["statistic"] == pytest.approx((7 - 2) ** 2 / (7 + 2))
    assert res["p_value"] == pytest.approx(sps.chi2.sf(25 / 9, 1))
    # the same discordance packed into two records is much weaker evidence
    packed = bs.clustered_score_test(diff, [0] * 9 + list(range(1, 12)))
    assert packed["p_value"] > res["p_value"]


def test_holm_and_bh_by_hand():
    p = [0.01, 0.04, 0.03, None, 0.5]
    assert bs.adjust(p, "holm") == [pytest.approx(0.04), pytest.approx(0.09), pytest.approx(0.09), None, pytest.approx(0.5)]
    assert bs.adjust(p, "bh") == [pytest.approx(0.04), pytest.approx(0.04 * 4 / 3), pytest.approx(0.04 * 4 / 3), None, pytest.approx(0.5)]
    assert bs.adjust(p, "none") == [0.01, 0.04, 0.03, None, 0.5]
    with pytest.raises(ValueError):
        bs.adjust(p, "bonferonni")


def test_interval_fallback_and_containment():
    # all correct: the bootstrap is [1, 1]; Wilson on the number of records instead (design effect undefined)
    iv = bs.interval(1.0, np.ones(500), successes=120, trials=120, design_effect=None, n_clusters=10)
    assert iv["ci"][0] == pytest.approx(bs.wilson(10, 10)[0]) and iv["ci"][1] == 1.0
    assert "Wilson" in iv["ci_method"]
    # with a design effect: n / deff
    iv = bs.interval(0.0, np.zeros(500), successes=0, trials=120, design_effect=4.0, n_clusters=10)
    assert iv["ci"] == [0.0, pytest.approx(bs.wilson(0, 30)[1])]
    # every cluster at the same inner proportion (a prompt-blind scorer: 3 of 12 per record; two records
    # that agree): no spread in the resample is no evidence of none, so Wilson on the effective n as well
    iv = bs.interval(0.25, np.full(500, 0.25), successes=30, trials=120, design_effect=None, n_clusters=10)
    assert iv["ci"] == pytest.approx(bs.wilson(2.5, 10)) and iv["ci"][0] < 0.25 < iv["ci"][1] and "Wilson" in iv["ci_method"]
    # a value that is no proportion keeps its equal draws, and says so
    iv = bs.interval(0.4, np.full(500, 0.4))
    assert iv["ci"] == [0.4, 0.4] and "same value" in iv["ci_method"]
    # a percentile interval that misses its estimate is widened to hold it
    iv = bs.interval(0.9, np.linspace(0.1, 0.5, 1000))
    assert iv["ci"][0] <= 0.9 <= iv["ci"][1] and "widened" in iv["ci_method"]


# --- coverage: the reason for all this -------------------------------------------------


def _coverage(n_studies: int, record_sd: float, *, by_item: bool) -> dict[str, float]:
    rng = np.random.default_rng(20261125)
    truth = sim.true_accuracy(record_sd)
    hits = {"BoN": 0, "label_accuracy": 0}
    for _ in range(n_studies):
        labels = sim.label_frame(rng, n_records=40, record_sd=record_sd)
        if by_item:  # the old design: every item its own cluster
            labels = labels.assign(record_id=labels["item_id"].map(lambda i: f"item{i:06d}"))
        summary = item_summary(labels)
        draws = record_draws(summary, draws=300, seed=1)
        human = label_sections(labels, summary, draws, draws=300, seed=1, confidence=0.95)["human"]
        for m in hits:
            lo, hi = human["ci"][m]["Chat"]
            hits[m] += lo <= truth[m] <= hi
    return {m: h / n_studies for m, h in hits.items()}


def test_record_bootstrap_covers_the_truth_and_the_item_bootstrap_does_not():
    """Strong within-record correlation, 40 records, 30 studies (coarse thresholds: binomial noise is +-0.08)."""
    clustered = _coverage(30, 2.0, by_item=False)
    items = _coverage(30, 2.0, by_item=True)
    for m in ("BoN", "label_accuracy"):
        assert clustered[m] >= 0.83, clustered
        assert items[m] <= 0.75, items


def test_clustered_test_keeps_its_level_where_item_mcnemar_does_not():
    rng = np.random.default_rng(7)
    clustered = naive = 0
    n = 150
    for _ in range(n):
        human, scorers, rec = sim.paired_outcomes(rng, n_records=60, record_sd=2.0)
        clustered += bs.clustered_score_test(human - scorers[0], rec)["p_value"] < 0.05
        b, c = int(((human == 1) & (scorers[0] == 0)).sum()), int(((human == 0) & (scorers[0] == 1)).sum())
        naive += sps.binomtest(b, b + c, 0.5).pvalue < 0.05
    assert clustered / n <= 0.10 and naive / n >= 0.15


# --- edge cases in the report ----------------------------------------------------------


def _chat_items(engine, benchmark_id):
    ids = item_ids(engine, benchmark_id)
    return {k: v for k, v in ids.items() if k[0].startswith("chat")}


def test_all_correct_domain_gets_a_non_degenerate_interval(engine, benchmark_id):
    win = winners(engine, benchmark_id)
    rows = [{"annotator": a, "item_id": iid, "choice": win[iid]} for iid in _chat_items(engine, benchmark_id).values() for a in "ab"]
    add_labels(engine, rows)
    human = build_report(engine=engine, benchmark_id=benchmark_id, draws=200)["human"]
    for m in ("BoN", "label_accuracy", "TopConsistency"):
        assert human[m]["Chat"] == 1.0
        lo, hi = human["ci"][m]["Chat"]
        assert lo < 1.0 and hi == 1.0, (m, lo, hi)
        assert "Wilson" in human["ci_method"][m]["Chat"]
    # two records: the design effect is undefined (no variation), so the effective n is the number of records
    assert human["clustering"]["Chat"]["icc"] is None and human["clustering"]["Chat"]["reason"]
    assert human["ci"]["BoN"]["Chat"][0] == pytest.approx(bs.wilson(2, 2)[0])


def test_point_estimates_lie_inside_their_intervals(engine, benchmark_id):
    rng = np.random.default_rng(5)
    win = winners(engine, benchmark_id)
    rows = []
    for iid in item_ids(engine, benchmark_id).values():
        for a in "abc":
            r = rng.random()
            rows.append({"annotator": a, "item_id": iid, "naturalness": int(rng.integers(1, 6)),
                         "choice": win[iid] if r < 0.5 else (None if r < 0.6 else KEYS[int(rng.integers(0, 4))])})
    add_labels(engine, rows)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=150)
    checked = 0
    for m, values in report["human"]["ci"].items():
        for d, ci in values.items():
            if ci is not None:
                assert ci[0] <= report["human"][m][d] <= ci[1], (m, d)
                checked += 1
    for key, value_key in (("choice_alpha", "alpha"), ("naturalness_alpha", "alpha"), ("percent_agreement", "value")):
        for d, entry in report["agreement"][key].items():
            if entry.get("ci"):
                assert entry["ci"][0] <= entry[value_key] <= entry["ci"][1], (key, d)
                checked += 1
    for d, entry in report["naturalness"]["by_domain"].items():
        assert entry["ci_mean"][0] <= entry["mean"] <= entry["ci_mean"][1]
        checked += 1
    assert checked > 30
    assert "record" in report["agreement"]["bootstrap"]["method"] and report["human"]["bootstrap"]["unit"] == "record"


def test_all_cant_decide_is_null_with_a_reason(engine, benchmark_id):
    rows = [{"annotator": a, "item_id": iid, "choice": None} for iid in _chat_items(engine, benchmark_id).values() for a in "ab"]
    add_labels(engine, rows)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)
    human = report["human"]
    for m in ("BoN", "label_accuracy", "TopConsistency"):
        assert human[m]["Chat"] is None and "Can't decide" in human["reasons"][m]["Chat"]
        assert human["ci"][m]["Chat"] is None
    assert report["agreement"]["choice_alpha"]["Chat"]["alpha"] is None and report["agreement"]["choice_alpha"]["Chat"]["reason"]
    assert report["agreement"]["percent_agreement"]["Chat"]["value"] is None
    assert report["agreement"]["percent_agreement"]["Chat"]["reason"]


def _scores_file(engine, benchmark_id, tmp_path, name, score):
    with session_scope(engine) as session:
        items = session.execute(
            select(Record.record_id, Item.group, Item.prompt_index, Item.winner_key, Item.domain)
            .join(Record, Record.id == Item.record_pk).where(Item.benchmark_id == benchmark_id)
        ).all()
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(
        json.dumps({"record_id": r, "group": g, "prompt_index": p, "scores": {k: score(d, k, w, r, g, p) for k in KEYS}}) + "\n"
        for r, g, p, w, d in items
    ))
    import_scores(engine=engine, benchmark_id=benchmark_id, path=path, name=name)


def test_nan_only_domain_is_rmgaps_zero_marked_undefined(engine, benchmark_id, tmp_path):
    # Chat scores are all NaN (null); elsewhere the winner gets the top score.
    _scores_file(engine, benchmark_id, tmp_path, "half", lambda d, k, w, *_: None if d == "Chat" else float(k == w))
    win = winners(engine, benchmark_id)
    add_labels(engine, [{"annotator": "a", "item_id": iid, "choice": win[iid]} for iid in item_ids(engine, benchmark_id).values()])
    sec = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)["scorers"]["half"]
    assert sec["BoN"]["Chat"] == 0.0 and sec["Pair"]["Chat"] == 0.0  # what RMGAP's evaluator writes
    assert sec["defined"]["BoN"]["Chat"] is False and "NaN" in sec["reasons"]["BoN"]["Chat"]
    assert sec["defined"]["BoN"]["Writing"] is True
    assert sec["BoN"]["Avg"] == pytest.approx(3 / 4)  # the 0.0 is averaged in, as RMGAP does
    assert sec["ci"]["BoN"]["Chat"] is None
    assert sec["mcnemar"]["Chat"]["p_value"] is None and sec["mcnemar"]["Chat"]["reason"]
    assert sec["vs_human"]["Chat"]["p_value"] is None and "NaN" in sec["vs_human"]["Chat"]["reason"]
    assert sec["vs_human"]["Chat"]["p_adjusted"] is None and sec["vs_human"]["Chat"]["p_adjusted_reason"]
    assert sec["vs_chance"]["BoN"]["Chat"]["p_value"] is None and sec["vs_chance"]["BoN"]["Chat"]["reason"]
    assert sec["vs_chance"]["BoN"]["Writing"]["value"] == 1.0 and sec["vs_chance"]["BoN"]["Writing"]["chance"] == 0.25
    assert sec["labelled_only"]["defined"]["BoN"]["Chat"] is False


def test_consistency_like_for_like(engine, benchmark_id, tmp_path):
    ids = item_ids(engine, benchmark_id)
    win = winners(engine, benchmark_id)
    rec = sorted({r for r, _, _ in ids if r.startswith("chat")})[0]
    rows = []
    for g in range(4):
        for p in range(3):
            iid = ids[(rec, g, p)]
            rest = [k for k in KEYS if k != win[iid]]
            # group 0: identical full ranking on all three prompts; group 1: same top, different order below
            order = [win[iid], *rest] if g != 1 or p == 0 else [win[iid], *reversed(rest)]
            rows.append({"annotator": "a", "item_id": iid, "choice": order[0], "ranking": order})
    add_labels(engine, rows)
    # a scorer that ranks the winner first and breaks the rest by a prompt-dependent order
    _scores_file(engine, benchmark_id, tmp_path, "top-only",
                 lambda d, k, w, r, g, p: 10.0 if k == w else float((KEYS.index(k) + p) % 4))
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    human = report["human"]
    assert human["Consistency"]["Chat"] == pytest.approx(3 / 4)  # group 1's rankings differ
    assert human["TopConsistency"]["Chat"] == 1.0
    assert human["n"]["ranking_groups"]["Chat"] == 4
    sec = report["scorers"]["top-only"]
    assert sec["TopConsistency"]["Chat"] == 1.0 and sec["Consistency"]["Chat"] == 0.0
    assert sec["labelled_only"]["TopConsistency"]["Chat"] == 1.0
    assert sec["human"]["Consistency"] == human["Consistency"]


def test_cohen_kappa_nulls_carry_reasons(engine, benchmark_id):
    chat = list(_chat_items(engine, benchmark_id).values())
    rows = [{"annotator": a, "item_id": iid, "choice": "response1"} for iid in chat[:5] for a in ("a", "b")]
    rows.append({"annotator": "c", "item_id": chat[0], "choice": "response2"})
    add_labels(engine, rows)
    ck = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["agreement"]["cohen_kappa"]
    names = ck["annotators"]
    from tests.test_report import pseudonym_of

    a, b, c = (names.index(pseudonym_of(engine, n)) for n in ("a", "b", "c"))  # the report names pseudonyms
    assert ck["kappa"][a][b] is None and "undefined" in ck["reasons"][a][b]
    assert ck["kappa"][a][c] is None and "shared" in ck["reasons"][a][c]


def _nulls_without_reason(node, path="", reasons=None, metric=None, covered=False) -> list[str]:
    """Paths of None values with no reason for them.

    A reason is: a ``reason`` / ``<key>_reason`` / ``note`` in the same dict,
    a ``reason`` on an enclosing dict (it explains everything below it), or a
    ``reasons`` map on an enclosing dict holding ``[metric][domain]`` (or
    ``[domain]``) for a per-domain value or interval.
    """
    bad = []
    if isinstance(node, dict):
        own = isinstance(node.get("reason"), str) or isinstance(node.get("note"), str)
        if isinstance(node.get("reasons"), dict):
            reasons = node["reasons"]
        for k, v in node.items():
            if k in ("reasons", "ci_method", "study_ids") or (v is None and (k == "reason" or k.endswith("_reason"))):
                continue  # a null reason has nothing to explain; study_ids None means every study
            if v is None:
                explained = (
                    covered or own or node.get(f"{k}_reason") or (k.startswith("ci") and node.get("ci_reason"))
                    or (k.endswith("_value") and node.get(f"{k[:-len('_value')]}_reason"))
                    or (isinstance(reasons, dict) and (
                        (isinstance(reasons.get(metric), dict) and reasons[metric].get(k)) or isinstance(reasons.get(k), str)))
                )
                if not explained:
                    bad.append(f"{path}.{k}")
            elif isinstance(v, (dict, list)):
                child_metric = k if isinstance(reasons, dict) and k in reasons else metric
                bad += _nulls_without_reason(v, f"{path}.{k}", reasons, child_metric, covered or own)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, (dict, list)):
                bad += _nulls_without_reason(v, f"{path}[{i}]", reasons, metric, covered)
    return bad


def test_every_null_in_the_report_carries_a_reason(engine, benchmark_id, tmp_path):
    chat = list(_chat_items(engine, benchmark_id).values())
    win = winners(engine, benchmark_id)
    add_labels(engine, [{"annotator": a, "item_id": iid, "choice": win[iid] if a == "a" else None, "naturalness": 4}
                        for iid in chat for a in "ab"])
    _scores_file(engine, benchmark_id, tmp_path, "nan-chat", lambda d, k, w, *_: None if d == "Chat" else float(k == w))
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)
    sections = {k: v for k, v in report.items() if k not in ("items", "annotators", "scorers")}
    # per-item rows and per-annotator rows document their nullable columns in the README; the rest must explain each null
    bad = _nulls_without_reason(sections)
    for name, sec in report["scorers"].items():
        bad += _nulls_without_reason({k: v for k, v in sec.items() if k != "human"}, f"scorers.{name}")
    assert bad == [], "\n".join(bad)


def test_adjust_flag_on_the_report(engine, benchmark_id, tmp_path, cli):
    win = winners(engine, benchmark_id)
    add_labels(engine, [{"annotator": "a", "item_id": iid, "choice": win[iid]} for iid in item_ids(engine, benchmark_id).values()])
    for n in range(3):
        _scores_file(engine, benchmark_id, tmp_path, f"s{n}", lambda d, k, w, r, g, p, n=n: float((KEYS.index(k) * 7 + p + g + n) % 5))
    holm = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["scorers"]
    raw = [holm[f"s{n}"]["vs_human"]["All"]["p_value"] for n in range(3)]
    assert [holm[f"s{n}"]["vs_human"]["All"]["p_adjusted"] for n in range(3)] == pytest.approx(bs.adjust(raw, "holm"))
    none = build_report(engine=engine, benchmark_id=benchmark_id, draws=0, adjust="none")["scorers"]
    assert [none[f"s{n}"]["vs_human"]["All"]["p_adjusted"] for n in range(3)] == pytest.approx(raw)
    out = cli("report", "--json", "--draws", "0", "--adjust", "bh")
    assert out.exit_code == 0
    assert json.loads(out.stdout)["scorers"]["s0"]["vs_human"]["All"]["adjust"] == "bh"
    assert cli("report", "--adjust", "bonferroni").exit_code == 2
