"""Annotator exclusion: stored, reversible, and exactly like deleting the labels, without deleting them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import ExclusionError, exclude_annotator, include_annotator
from rmgap_annot.models import Label, User
from rmgap_annot.report import build_report, report_fingerprint
from tests.test_report import _seed


def _without_exclusions(report: dict) -> dict:
    out = json.loads(json.dumps(report))
    out.pop("exclusions")
    out["truth_inference"].pop("excluded_annotators")
    return out


def _n_labels(engine) -> int:
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(Label)).scalar_one()


def test_excluding_equals_deleting_and_including_restores(engine, benchmark_id):
    _seed(engine, benchmark_id, n_annotators=4)
    before = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    n_before = _n_labels(engine)
    fp_before = report_fingerprint(engine=engine, benchmark_id=benchmark_id)

    exclude_annotator(engine=engine, name="ann1", reason="clicked through in 2 s")
    assert report_fingerprint(engine=engine, benchmark_id=benchmark_id) != fp_before  # the cache key moves
    excluded = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    assert _n_labels(engine) == n_before  # nothing deleted
    # Published outputs name people by their pseudonym in the study (ann1 was the second to label).
    assert excluded["exclusions"]["stored"][0]["annotator"] == "ann-02"
    assert excluded["exclusions"]["stored"][0]["reason"] == "clicked through in 2 s"
    assert excluded["exclusions"]["n_labels_excluded"] == 96
    assert excluded["agreement"] != before["agreement"]
    assert "ann-02" not in {a["annotator"] for a in excluded["annotators"]}
    assert {a["annotator"] for a in excluded["annotators"]} == {"ann-01", "ann-03", "ann-04"}

    include_annotator(engine=engine, name="ann1")
    restored = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    assert restored == before
    assert report_fingerprint(engine=engine, benchmark_id=benchmark_id) == fp_before

    # Now really delete ann1's labels: the report equals the excluded one.
    with session_scope(engine, write=True) as s:
        uid = s.execute(select(User.id).where(User.name == "ann1")).scalar_one()
        s.execute(delete(Label).where(Label.user_id == uid))
    deleted = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    assert _without_exclusions(deleted) == _without_exclusions(excluded)


def test_what_if_exclusion_is_not_stored(engine, benchmark_id, cli):
    _seed(engine, benchmark_id, n_annotators=4)
    stored = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)
    exclude_annotator(engine=engine, name="ann2", reason="test")
    both = build_report(engine=engine, benchmark_id=benchmark_id, draws=0, exclude=["ann3"])
    assert both["exclusions"]["excluded"] == ["ann-03", "ann-04"] and both["exclusions"]["what_if"] == ["ann-04"]
    assert both["agreement"]["summary"]["n_labels"] == stored["agreement"]["summary"]["n_labels"] - 2 * 96
    out = cli("report", "--json", "--draws", "0", "--exclude", "ann3,ann0")
    assert json.loads(out.stdout)["exclusions"]["excluded"] == ["ann-01", "ann-03", "ann-04"]
    after = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)
    assert after["exclusions"]["excluded"] == ["ann-03"]  # the what-if left nothing behind
    bad = cli("report", "--exclude", "ghost")
    assert bad.exit_code == 2 and "ghost" in bad.stderr


def test_cli_exclude_include_and_errors(engine, benchmark_id, cli):
    _seed(engine, benchmark_id, n_annotators=2)
    assert cli("annotators", "exclude", "ann0", "--reason", "spam").exit_code == 0
    assert "ann0" in cli("annotators", "excluded").output and "spam" in cli("annotators", "excluded").output
    again = cli("annotators", "exclude", "ann0", "--reason", "spam, confirmed")
    assert again.exit_code == 0 and "reason updated" in again.output
    assert cli("annotators", "exclude", "nobody", "--reason", "x").exit_code == 2
    assert cli("annotators", "exclude", "ann1", "--reason", "  ").exit_code == 2
    assert cli("annotators", "include", "ann1").exit_code == 2  # not excluded
    assert cli("annotators", "include", "ann0").exit_code == 0
    assert "No annotator is excluded" in cli("annotators", "excluded").output
    history = cli("annotators", "excluded", "--history").output
    assert "spam, confirmed" in history and "until" in history
    with pytest.raises(ExclusionError):
        include_annotator(engine=engine, name="ann0")


def test_export_leaves_excluded_labels_out_and_lists_them(engine, benchmark_id, cli, tmp_path):
    import pandas as pd

    _seed(engine, benchmark_id, n_annotators=3)
    cli("annotators", "exclude", "ann2", "--reason", "did not read the responses")
    out = cli("export-verified", "--out", str(tmp_path / "e"), "--min-labels", "1", "--min-naturalness", "0")
    assert out.exit_code == 0, out.output
    labels = pd.read_parquet(tmp_path / "e" / "labels.parquet")
    assert set(labels["annotator"]) == {"ann-01", "ann-02"} and len(labels) == 2 * 96
    card = (tmp_path / "e" / "README.md").read_text()
    assert "## Excluded annotators" in card and "| ann-03 | did not read the responses |" in card
    assert "ann2" not in card


def test_scorer_comparison_ignores_excluded_labels(engine, benchmark_id):
    from rmgap_annot.stats.comparison import plurality_picks

    _seed(engine, benchmark_id, n_annotators=3)
    picks_all = plurality_picks(engine=engine, benchmark_id=benchmark_id)
    exclude_annotator(engine=engine, name="ann0", reason="x")
    picks_ex = plurality_picks(engine=engine, benchmark_id=benchmark_id)
    assert picks_ex != picks_all


def _page(path, db_url, monkeypatch, uid):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / path), default_timeout=120)
    at.session_state["user_id"] = uid
    at.session_state["role"] = "researcher"
    return at


def test_results_page_stores_exclusions_offers_a_what_if_and_fits_truth(engine, benchmark_id, db_url, monkeypatch):
    from rmgap_annot.accounts import create_user
    from rmgap_annot.exclusions import active_exclusions

    _seed(engine, benchmark_id, n_annotators=3)
    uid = create_user(engine=engine, name="res", role="researcher")
    at = _page("pages/results.py", db_url, monkeypatch, uid).run()
    assert not at.exception, at.exception
    assert not at.warning  # nobody excluded yet
    # What-if: one annotator left out for this view only.
    at.multiselect(key="results_what_if").set_value(["ann0"]).run()
    assert not at.exception, at.exception
    assert any("ann-01 (what-if)" in w.value for w in at.warning)
    assert active_exclusions(engine=engine) == []
    at.multiselect(key="results_what_if").set_value([]).run()
    # Stored exclusion through the form.
    at.selectbox(key="exclude_who").set_value("ann2")
    at.text_input(key="exclude_reason").input("answered in under a second")
    next(b for b in at.button if b.label == "Exclude").click().run()
    assert not at.exception, at.exception
    assert [e.annotator for e in active_exclusions(engine=engine)] == ["ann2"]
    assert any("ann-03 (answered in under a second)" in w.value for w in at.warning)
    at.button(key="include_button").click().run()
    assert active_exclusions(engine=engine) == [] and not at.warning
    # Truth inference on request.
    at.button(key="fit_truth").click().run()
    assert not at.exception, at.exception
    from sqlalchemy import func, select

    from rmgap_annot.models import TruthFit

    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(TruthFit)).scalar_one() == 2
    assert not [b for b in at.button if b.key == "fit_truth"]  # fitted: no button any more


def test_study_page_shows_the_plan(engine, benchmark_id, db_url, monkeypatch):
    from rmgap_annot.accounts import create_user

    uid = create_user(engine=engine, name="res", role="researcher")
    at = _page("pages/study.py", db_url, monkeypatch, uid).run()
    assert not at.exception, at.exception
    assert any("--accuracy" in i.value for i in at.info)  # no pilot yet: says how to plan without one
    _seed(engine, benchmark_id, n_annotators=3)
    at = _page("pages/study.py", db_url, monkeypatch, uid).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table["domain"]) == ["Chat", "Writing", "Reasoning", "Safety"]
    assert (table["records needed"] > 0).all()


def test_exclusion_and_truth_cache_tables_work_on_both_backends(backend_url, small_file):
    """The new tables (migration 0004) on SQLite and PostgreSQL: exclude, include, store and read a fit."""
    from rmgap_annot.formats.rmgap import import_benchmark
    from rmgap_annot.db import get_engine, init_db
    from rmgap_annot.exclusions import active_exclusions, counted_labels
    from rmgap_annot.stats import truth

    init_db(backend_url)
    engine = get_engine(backend_url)
    bid = import_benchmark(engine=engine, path=small_file, name="small").benchmark_id
    _seed(engine, bid, n_annotators=3)
    exclude_annotator(engine=engine, name="ann1", reason="r")
    assert [e.annotator for e in active_exclusions(engine=engine)] == ["ann1"]
    counted = counted_labels(engine=engine, benchmark_id=bid)
    assert set(counted.labels["annotator"]) == {"ann-01", "ann-03"}
    fitted = truth.aggregated_picks(engine=engine, benchmark_id=bid, labels=counted.labels, method="dawid-skene", fit_if_missing=True)
    again = truth.aggregated_picks(engine=engine, benchmark_id=bid, labels=counted.labels, method="dawid-skene", fit_if_missing=False)
    assert again["picks"] == fitted["picks"] and again["fingerprint"] == fitted["fingerprint"]
    include_annotator(engine=engine, name="ann1")
    assert active_exclusions(engine=engine) == []
