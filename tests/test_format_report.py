"""format_report: a benchmark's own metrics read back from the database, for people and reward models."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.exclusions import exclude_annotator
from rmgap_annot.formats import read
from rmgap_annot.formats.benchmark_metrics import benchmark_metrics
from rmgap_annot.formats.store import import_any
from rmgap_annot.format_report import format_report, load_format_items
from rmgap_annot.formats.rmgap import sample_path
from rmgap_annot.scoring.runner import run_scoring
from rmgap_annot.studies import list_studies

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
BOOT = 200


def _item_ids(engine, bench_id) -> dict[str, int]:
    _, items, refs = load_format_items(engine=engine, benchmark_id=bench_id)
    return {ref[0]: iid for iid, ref in refs.items()}


def _label(engine, bench_id, votes: dict[str, tuple]) -> None:
    study = list_studies(engine=engine, benchmark_id=bench_id)[0].id
    users = [create_user(engine=engine, name=f"u{i}", role="annotator") for i in range(3)]
    ids = _item_ids(engine, bench_id)
    for entry, choices in votes.items():
        for user, choice in zip(users, choices):
            submit_label(engine=engine, user_id=user, item_id=ids[entry], choice_key=choice,
                         reason="several_fit" if choice is None else None, study_id=study)


@pytest.mark.parametrize("path,fmt", [
    (SAMPLES / "rmb" / "RMB_dataset", "rmb"), (SAMPLES / "prb" / "prb_sample.parquet", "prb"),
    (SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl", "rewardbench2"), (SAMPLES / "pairs", "pairs"),
], ids=["rmb", "prb", "rewardbench2", "pairs"])
def test_items_read_back_from_the_database_are_the_readers_items(engine, path, fmt):
    bench = import_any(engine=engine, path=path).benchmark_id
    got_fmt, items, _ = load_format_items(engine=engine, benchmark_id=bench)
    want = sorted(read(path, fmt).items, key=lambda i: i.entry_id)
    got = sorted(items, key=lambda i: i.entry_id)
    assert got_fmt == fmt
    strip = lambda i: {k: v for k, v in asdict(i).items() if k != "original"}  # noqa: E731
    assert [strip(i) for i in got] == [strip(i) for i in want]


def test_rewardbench2_people_and_length_by_its_own_rule(engine):
    path = SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl"
    bench = import_any(engine=engine, path=path).benchmark_id
    _label(engine, bench, {
        "102": ("chosen_0", "rejected_1", "rejected_2"),  # split three ways, the right one among them
        "857": (None, None, None),  # Can't decide throughout: no pick
        "1203": ("chosen_0", "chosen_0", "chosen_0"),
        "ref:7": ("chosen_0", "chosen_0", "rejected_0"),
        "tied:7": ("chosen_1", "chosen_1", "chosen_1"),
    })
    run_scoring(engine=engine, benchmark_id=bench, spec="length", name="length")
    out = format_report(engine=engine, benchmark_id=bench, n_boot=BOOT)
    subsets = out["human"]["metrics"]["subsets"]
    # Best-of-4 with 1/k credit: a three-way split holding the right answer earns 1/3; no pick, all four tied, 1/4.
    assert subsets["Factuality"]["score"]["value"] == pytest.approx(1 / 3)
    assert subsets["Math"]["score"]["value"] == pytest.approx(1 / 4)
    assert subsets["Focus"]["score"]["value"] == 1.0
    assert out["human"]["picks"] == {"decided": 3, "tie_good": 0, "tie_bad": 0, "split": 1, "no_pick": 1}
    # The length baseline: the same rule on each candidate's length, computed from the file by hand.
    items = read(path, "rewardbench2").items
    by_hand = {i.ref: {c.key: float(len(c.text)) for c in i.candidates} for i in items}
    expected = benchmark_metrics("rewardbench2", items, scores=by_hand, n_boot=BOOT)
    assert out["models"]["length"]["metrics"] == expected["metrics"]
    assert out["models"]["length"]["n_incomplete"] == 0
    assert out["comparison"]["length"]["n_items"] == 5
    # An excluded annotator's labels count nowhere: 102 becomes a two-way split holding the answer, 1/2.
    exclude_annotator(engine=engine, name="u2", reason="test")
    again = format_report(engine=engine, benchmark_id=bench, n_boot=BOOT)
    assert again["human"]["metrics"]["subsets"]["Factuality"]["score"]["value"] == pytest.approx(1 / 2)


def test_rmb_ties_are_wrong_and_studies_filter(engine, db_url):
    from typer.testing import CliRunner

    from rmgap_annot.cli import app

    bench = import_any(engine=engine, path=SAMPLES / "rmb" / "RMB_dataset", name="rmb").benchmark_id
    _label(engine, bench, {
        "rmb-pair-code-0001": ("tie_good", "tie_good", "chosen"),
        "rmb-pair-code-0002": ("chosen", "chosen", "chosen"),
        "rmb-bon-code-0001": ("bon_best", "bon_best", "loser_2"),
    })
    first = list_studies(engine=engine, benchmark_id=bench)[0].id
    out = format_report(engine=engine, benchmark_id=bench, study_ids=[first], n_boot=BOOT)
    pw = out["human"]["metrics"]["pairwise"]
    assert pw["Helpfulness/Code/Code Generation"]["value"] == pytest.approx(0.5)  # the tie is wrong
    assert out["human"]["metrics"]["bon"]["Helpfulness/Code/Code Generation"]["value"] == 1.0
    assert out["human"]["picks"]["tie_good"] == 1 and out["human"]["n_items"] == 3
    assert CliRunner().invoke(app, ["--db", db_url, "study", "create", "other", "--benchmark", "rmb"]).exit_code == 0
    other = [s.id for s in list_studies(engine=engine, benchmark_id=bench) if s.id != first]
    empty = format_report(engine=engine, benchmark_id=bench, study_ids=other, n_boot=BOOT)
    assert empty["n_labels"] == 0 and empty["human"]["n_items"] == 0 and empty["human"]["reason"]
    assert empty["models"] == {}


def test_rmgap_says_where_its_metrics_are(engine):
    bench = import_any(engine=engine, path=sample_path()).benchmark_id
    out = format_report(engine=engine, benchmark_id=bench)
    assert out["format"] == "rmgap" and "main report" in out["reason"]


def test_the_main_report_runs_on_another_formats_labels(engine):
    """Until the report speaks each format, its RMGAP sections must say n/a, not crash on a category it does not know."""
    from rmgap_annot.report import build_report

    bench = import_any(engine=engine, path=SAMPLES / "rmb" / "RMB_dataset").benchmark_id
    _label(engine, bench, {"rmb-pair-harm-0001": ("chosen", "chosen", "reject")})
    report = build_report(engine=engine, benchmark_id=bench, draws=50)
    # RMGAP's four-slot position test leaves other formats' picks out (2 slots are not 4); it no longer raises.
    assert report["position_bias"]["n"] == 0 and set(report["position_bias"]["by_domain"]) == {"Chat", "Writing", "Reasoning", "Safety"}


def test_pick_agreement_is_krippendorffs_nominal_alpha_over_the_picks(engine, tmp_path):
    """Another format's agreement: alpha on the pick (ties are answers, Can't decide is none), per category and All."""
    import krippendorff
    import numpy as np

    from rmgap_annot.export import write_export

    bench = import_any(engine=engine, path=SAMPLES / "pairs" / "standard.jsonl").benchmark_id
    entries = sorted(_item_ids(engine, bench))
    plan = [("chosen", "chosen", "rejected"), ("tie_good", "tie_good", "chosen"), ("rejected", None, "rejected"),
            ("chosen", "chosen", "chosen")]
    votes = {e: plan[n % len(plan)] for n, e in enumerate(entries)}
    _label(engine, bench, votes)
    code = {"chosen": 0, "rejected": 1, "tie_good": 2}
    data = np.array([[np.nan if votes[e][u] is None else code[votes[e][u]] for e in entries] for u in range(3)])
    want = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    got = format_report(engine=engine, benchmark_id=bench, n_boot=BOOT)["agreement"]
    assert got["All"]["alpha"] == pytest.approx(want)
    assert got["All"]["n_missing"] == sum(v.count(None) for v in votes.values())
    lo, hi = got["All"]["ci"]
    assert lo <= got["All"]["alpha"] <= hi
    # The card and report.html speak this benchmark's categories, not RMGAP's domains, and carry the agreement.
    write_export(engine=engine, benchmark_id=bench, out_dir=tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Agreement on the pick" in card and "Agreement on the pick" in html
    for rmgap_only in ("| Chat |", "Verdict at a glance", "Referee analyses", "Sample-size plan"):
        assert rmgap_only not in card
    assert "<td>Chat</td>" not in html and "Verdict at a glance" not in html
