"""The report as plain data: its JSON shape, degenerate data, the CLI, the Results page."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from scipy import stats
from sqlalchemy import select

from rmgap_annot.accounts import create_user
from rmgap_annot.db import session_scope
from rmgap_annot.models import User
from rmgap_annot.report import build_report, item_detail
from rmgap_annot.settings import DOMAINS
from tests.analytics_helpers import add_labels, item_ids, winners

PAGE = Path(__file__).resolve().parent.parent / "pages" / "results.py"
TOP = {"agreement", "human", "naturalness", "position_bias", "annotators", "items", "scorers", "exclusions", "truth_inference",
       "referee", "verified_subset", "verdict", "planning", "benchmark_metrics", "ratings"}


def pseudonym_of(engine, name: str) -> str:
    """The public name the report gives a user (their pseudonym in the benchmark's study)."""
    from rmgap_annot.studies import pseudonyms

    with session_scope(engine) as s:
        uid = s.execute(select(User.id).where(User.name == name)).scalar_one()
    return next(n for (_, u), n in pseudonyms(engine=engine).items() if u == uid)


def _seed(engine, benchmark_id, n_annotators=3, seed=0):
    rng = random.Random(seed)
    ids, win = item_ids(engine, benchmark_id), winners(engine, benchmark_id)
    keys = [f"response{i}" for i in range(1, 5)]
    rows = []
    for iid in ids.values():
        for a in range(n_annotators):
            order = keys[:]
            rng.shuffle(order)
            r = rng.random()
            rows.append({
                "annotator": f"ann{a}", "item_id": iid, "displayed_order": order, "naturalness": rng.randint(1, 5),
                "choice": win[iid] if r < 0.6 else (None if r < 0.7 else rng.choice(keys)), "seconds": rng.uniform(1, 60),
            })
    add_labels(engine, rows)
    return rows


def test_json_shape(engine, benchmark_id):
    _seed(engine, benchmark_id)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    assert set(report) == TOP
    json.dumps(report, allow_nan=False)  # plain data, no NaN
    for metric in ("Pair", "BoN", "Consistency"):
        assert set(report["human"][metric]) == {*DOMAINS, "Avg"}
    for key in ("choice_alpha", "naturalness_alpha"):
        for d in (*DOMAINS, "All"):
            entry = report["agreement"][key][d]
            assert {"alpha", "ci", "n_items"} <= set(entry)
            assert entry["alpha"] is not None and len(entry["ci"]) == 2
    assert report["scorers"] == {} or isinstance(report["scorers"], dict)
    assert len(report["items"]) == 96 and len(report["annotators"]) == 3


def test_no_labels_is_na_with_reasons_not_a_crash(engine, benchmark_id, cli):
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)
    assert report["agreement"]["choice_alpha"]["All"]["alpha"] is None
    assert report["agreement"]["choice_alpha"]["All"]["reason"]
    assert all(v is None for v in report["human"]["BoN"].values())
    assert report["position_bias"]["chi2"] is None and report["position_bias"]["reason"]
    assert report["naturalness"]["by_domain"]["All"]["mean"] is None
    assert report["items"] == [] and report["annotators"] == []
    res = cli("report")
    assert res.exit_code == 0 and "n/a" in res.output


def test_position_bias_matches_scipy(engine, benchmark_id):
    rows = _seed(engine, benchmark_id)
    slots = [0, 0, 0, 0]
    for r in rows:
        if r["choice"] is not None:
            slots[r["displayed_order"].index(r["choice"])] += 1
    pb = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["position_bias"]
    assert list(pb["counts"].values()) == slots
    expected = stats.chisquare(slots)
    assert pb["chi2"] == pytest.approx(expected.statistic) and pb["p_value"] == pytest.approx(expected.pvalue)


def test_annotator_table_and_naturalness(engine, benchmark_id):
    rows = _seed(engine, benchmark_id)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)
    ann0 = next(a for a in report["annotators"] if a["annotator"] == pseudonym_of(engine, "ann0"))
    assert not {a["annotator"] for a in report["annotators"]} & {"ann0", "ann1", "ann2"}  # pseudonyms only
    mine = [r for r in rows if r["annotator"] == "ann0"]
    secs = sorted(r["seconds"] for r in mine)
    assert ann0["n_labels"] == len(mine)
    assert ann0["median_seconds"] == pytest.approx((secs[len(secs) // 2 - 1] + secs[len(secs) // 2]) / 2)
    assert ann0["share_fast"] == pytest.approx(sum(s < 5 for s in secs) / len(secs))
    win = winners(engine, benchmark_id)
    assert ann0["accuracy"] == pytest.approx(sum(r["choice"] == win[r["item_id"]] for r in mine) / len(mine))
    assert ann0["loo_alpha"] is not None
    nat = report["naturalness"]["by_domain"]["All"]
    values = [r["naturalness"] for r in rows]
    assert nat["n"] == len(values) and nat["mean"] == pytest.approx(sum(values) / len(values))
    assert nat["share_4_5"] == pytest.approx(sum(v >= 4 for v in values) / len(values))
    assert report["naturalness"]["by_role"]["base"]["n"] + report["naturalness"]["by_role"]["rewrite"]["n"] == len(values)


def test_item_detail_has_full_text_and_labels(engine, benchmark_id):
    _seed(engine, benchmark_id, n_annotators=2)
    iid = next(iter(item_ids(engine, benchmark_id).values()))
    detail = item_detail(engine=engine, item_id=iid)
    assert detail["prompt"] and len(detail["responses"]) == 4 and len(detail["labels"]) == 2


def test_cli_report_json(engine, benchmark_id, cli):
    _seed(engine, benchmark_id)
    out = cli("report", "--json", "--draws", "50", "--seed", "3")
    assert out.exit_code == 0
    assert set(json.loads(out.stdout)) == TOP
    text = cli("report", "--draws", "0")
    assert "pick alpha" in text.output and "Human accuracy" in text.output
    assert cli("report", "--benchmark", "nope").exit_code == 2


def test_results_page_renders_for_a_researcher(engine, benchmark_id, db_url, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    _seed(engine, benchmark_id)
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    uid = create_user(engine=engine, name="res", role="researcher")
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["user_id"] = uid
    at.session_state["role"] = "researcher"
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Results"
    assert len(at.tabs) == 9  # the eight RMGAP tabs and Rating questions
    # An annotator is refused by the page itself.
    ann = create_user(engine=engine, name="ann-x", role="annotator")
    at2 = AppTest.from_file(str(PAGE), default_timeout=60)
    at2.session_state["user_id"] = ann
    at2.run()
    assert at2.error and "researcher" in at2.error[0].value
