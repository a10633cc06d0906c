"""Annotator exclusion: stored, reversible, and exactly like deleting the labels, without deleting them."""

from __future__ import annotations

import json

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
    assert excluded["exclusions"]["stored"][0]["annotator"] == "ann1"
    assert excluded["exclusions"]["stored"][0]["reason"] == "clicked through in 2 s"
    assert excluded["exclusions"]["n_labels_excluded"] == 96
    assert excluded["agreement"] != before["agreement"]
    assert "ann1" not in {a["annotator"] for a in excluded["annotators"]}

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
    assert both["exclusions"]["excluded"] == ["ann2", "ann3"] and both["exclusions"]["what_if"] == ["ann3"]
    assert both["agreement"]["summary"]["n_labels"] == stored["agreement"]["summary"]["n_labels"] - 2 * 96
    out = cli("report", "--json", "--draws", "0", "--exclude", "ann3,ann0")
    assert json.loads(out.stdout)["exclusions"]["excluded"] == ["ann0", "ann2", "ann3"]
    after = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)
    assert after["exclusions"]["excluded"] == ["ann2"]  # the what-if left nothing behind
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
    assert "ann2" not in set(labels["annotator"]) and len(labels) == 2 * 96
    card = (tmp_path / "e" / "README.md").read_text()
    assert "## Excluded annotators" in card and "| ann2 | did not read the responses |" in card


def test_scorer_comparison_ignores_excluded_labels(engine, benchmark_id):
    from rmgap_annot.comparison import plurality_picks

    _seed(engine, benchmark_id, n_annotators=3)
    picks_all = plurality_picks(engine=engine, benchmark_id=benchmark_id)
    exclude_annotator(engine=engine, name="ann0", reason="x")
    picks_ex = plurality_picks(engine=engine, benchmark_id=benchmark_id)
    assert picks_ex != picks_all
