"""build_report carries each benchmark's own metrics (``benchmark_metrics``) and the rating questions (``ratings``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.assignment import update_study
from rmgap_annot.formats.rmgap import sample_path
from rmgap_annot.exclusions import counted_labels, exclude_annotator
from rmgap_annot.format_report import format_report, load_format_items
from rmgap_annot.format_sections import family_table, families, metric_rows, rating_rows
from rmgap_annot.formats.store import import_any
from rmgap_annot.questions import Question, dumps
from rmgap_annot.report import build_report
from rmgap_annot.scoring.runner import run_scoring
from rmgap_annot.stats.rating_report import ratings_section
from rmgap_annot.studies import list_studies
from tests.test_clustered_stats import _nulls_without_reason

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
DRAWS = 50
CLEAR = Question("clear", "Is the request clear?", ((1, "Yes"), (0, "No")))
HELPFUL = Question("helpful", "How helpful is it?", ((1, "No"), (2, "Somewhat"), (3, "Very")), about="response")


def _labelled(engine, path, picks=lambda item, u: item.keys[u % len(item.keys)]) -> int:
    """Import ``path``, ask CLEAR and HELPFUL, three people label every item, the length baseline scores it."""
    bench = import_any(engine=engine, path=path).benchmark_id
    study = list_studies(engine=engine, benchmark_id=bench)[0].id
    update_study(engine=engine, study_id=study, questions_json=dumps([CLEAR, HELPFUL]))
    users = [create_user(engine=engine, name=f"p{u}", role="annotator") for u in range(3)]
    _, items, refs = load_format_items(engine=engine, benchmark_id=bench)
    by_ref = {i.ref: i for i in items}
    for n, (item_id, ref) in enumerate(sorted(refs.items())):
        item = by_ref[ref]
        for u, user in enumerate(users):
            submit_label(engine=engine, user_id=user, item_id=item_id, choice_key=picks(item, u), study_id=study,
                         ratings={"clear": (n + u) % 2, "helpful": {k: 1 + (n + j + u) % 3 for j, k in enumerate(item.keys)}})
    run_scoring(engine=engine, benchmark_id=bench, spec="length", name="length")
    return bench


def _plain(x):
    return json.loads(json.dumps(x, allow_nan=False))


@pytest.mark.parametrize("path", [SAMPLES / "rmb" / "RMB_dataset", SAMPLES / "prb" / "prb_sample.parquet"], ids=["rmb", "prb"])
def test_report_carries_format_report_and_ratings(engine, path):
    bench = _labelled(engine, path)
    report = build_report(engine=engine, benchmark_id=bench, draws=DRAWS, seed=4)
    assert {"benchmark_metrics", "ratings"} <= set(report)
    json.dumps(report, allow_nan=False)
    assert report["benchmark_metrics"] == format_report(engine=engine, benchmark_id=bench, seed=4, n_boot=DRAWS)
    assert set(report["benchmark_metrics"]["models"]) == {"length"}
    labels = counted_labels(engine=engine, benchmark_id=bench).labels
    want = ratings_section(engine=engine, benchmark_id=bench, labels=labels, draws=DRAWS, seed=4)
    assert report["ratings"]["questions"] == want["questions"]
    assert [q["name"] for q in report["ratings"]["questions"]] == ["clear", "helpful"]
    n_items = report["benchmark_metrics"]["n_items"]
    assert sum(report["ratings"]["questions"][0]["distribution"].values()) == 3 * n_items
    bad = _nulls_without_reason({k: v for k, v in report.items() if k not in ("items", "annotators", "scorers")})
    assert bad == [], "\n".join(bad)


def test_an_excluded_annotator_counts_in_neither_section(engine):
    bench = _labelled(engine, SAMPLES / "rmb" / "RMB_dataset")
    exclude_annotator(engine=engine, name="p2", reason="test")
    report = build_report(engine=engine, benchmark_id=bench, draws=0)
    n_items = report["benchmark_metrics"]["n_items"]
    assert report["benchmark_metrics"]["n_labels"] == 2 * n_items
    assert sum(report["ratings"]["questions"][0]["distribution"].values()) == 2 * n_items
    # A what-if exclusion reaches the benchmark's metrics too.
    what_if = build_report(engine=engine, benchmark_id=bench, draws=0, exclude=["p1"])
    assert what_if["benchmark_metrics"]["n_labels"] == n_items
    assert sum(what_if["ratings"]["questions"][0]["distribution"].values()) == n_items


def test_rmgap_points_to_its_own_sections(engine):
    bench = import_any(engine=engine, path=sample_path()).benchmark_id
    report = build_report(engine=engine, benchmark_id=bench, draws=0, include_scorers=False)
    assert report["benchmark_metrics"]["format"] == "rmgap" and "human and scorers" in report["benchmark_metrics"]["reason"]
    assert [q["name"] for q in report["ratings"]["questions"]] == ["naturalness"]
    q = report["ratings"]["questions"][0]
    assert q["alpha"] is None and q["reason"]


def test_rmb_rows_follow_the_category_tree_under_its_own_names(engine):
    # Everyone picks the first candidate: RMB's chosen / bon_best, so people are right on every item.
    bench = _labelled(engine, SAMPLES / "rmb" / "RMB_dataset", picks=lambda item, u: item.keys[0])
    section = build_report(engine=engine, benchmark_id=bench, draws=0)["benchmark_metrics"]
    fams = families(section)
    assert list(fams) == ["Pairwise accuracy", "BoN accuracy (best beats every loser)"]
    pairwise = fams["Pairwise accuracy"]
    tree = section["human"]["metrics"]["pairwise"]
    assert [r["category"] for r in pairwise] == list(tree)
    code = next(r for r in pairwise if r["category"] == "Helpfulness/Code/Code Generation")
    assert code["depth"] == 2 and code["label"] == "Code Generation" and code["people"]["value"] == 1.0
    cells = family_table(pairwise)
    row = cells[[r["category"] for r in pairwise].index("Helpfulness/Code/Code Generation")]
    assert row["category"] == "\u2003\u2003Code Generation" and row["people"].startswith("100.0%")
    assert row["n"] == str(code["people"]["n"]) and "metric" not in row  # one metric in the family: no column
    length = section["models"]["length"]["metrics"]["pairwise"]["Helpfulness/Code/Code Generation"]["value"]
    diff = section["comparison"]["length"]["difference"]["pairwise"]["Helpfulness/Code/Code Generation"]["difference"]
    assert diff == pytest.approx(1.0 - length)
    assert code["models"]["length"]["value"] == length and code["differences"]["length"]["difference"] == diff


def test_prb_rows_are_win_and_tie_rates(engine):
    bench = _labelled(engine, SAMPLES / "prb" / "prb_sample.parquet", picks=lambda item, u: "tie_good" if u == 0 else item.keys[0])
    section = build_report(engine=engine, benchmark_id=bench, draws=0)["benchmark_metrics"]
    rows = metric_rows(section)
    assert {r["family"] for r in rows} == {"Chosen win rate (ties counted apart)"}
    overall = {r["metric"]: r["people"]["value"] for r in rows if r["category"] == "all"}
    assert overall == {"win rate": 1.0, "tie rate": 0.0}  # two of three chose "chosen": a plurality win each time


def test_rating_rows_read_the_distribution(engine):
    bench = _labelled(engine, SAMPLES / "pairs")
    ratings = build_report(engine=engine, benchmark_id=bench, draws=0)["ratings"]
    rows = rating_rows(ratings)
    clear = ratings["questions"][0]
    assert rows[0]["question"] == "clear" and rows[0]["about"] == "prompt"
    assert rows[0]["distribution"] == f"No: {clear['distribution']['0']}, Yes: {clear['distribution']['1']}"
    assert rows[1]["about"] == "response" and rows[1]["answers"] == str(sum(ratings["questions"][1]["distribution"].values()))


def test_ratings_keep_each_levels_label(engine):
    bench = _labelled(engine, SAMPLES / "pairs")
    clear = build_report(engine=engine, benchmark_id=bench, draws=0)["ratings"]["questions"][0]
    assert clear["levels"] == [{"value": 1, "label": "Yes"}, {"value": 0, "label": "No"}]


def test_card_and_html_report_carry_own_metrics_and_ratings(engine, tmp_path):
    import html as html_mod

    from rmgap_annot.export import Rule, write_export
    from rmgap_annot.export.own_metrics import _md

    bench = _labelled(engine, SAMPLES / "rmb" / "RMB_dataset", picks=lambda item, u: item.keys[0])
    write_export(engine=engine, benchmark_id=bench, out_dir=tmp_path / "v", rule=Rule.of(min_naturalness=0))
    card = (tmp_path / "v" / "README.md").read_text(encoding="utf-8")
    page = (tmp_path / "v" / "report.html").read_text(encoding="utf-8")
    report = build_report(engine=engine, benchmark_id=bench)  # what the export itself reads
    section = report["benchmark_metrics"]
    assert "## RMB's own metrics" in card and "**Pairwise accuracy**" in card and "**BoN accuracy (best beats every loser)**" in card
    code = family_table(families(section)["Pairwise accuracy"], indent="· ")
    row = next(c for c in code if c["category"].endswith("Code Generation"))
    assert f"| · · Code Generation | {_md(row['people'])} | {row['n']} | {_md(row['length'])} |" in card
    assert "\\[" in _md(row["people"])  # cells are escaped Markdown
    assert "<h2>RMB's own metrics</h2>" in page and f"<td>{html_mod.escape(row['people'])}</td>" in page
    for r in rating_rows(report["ratings"]):
        assert f"| {r['question']} | {r['about']} | {_md(r['alpha'])} | {r['answers']} | {_md(r['distribution'])} |" in card
        assert f"<tr><td>{r['question']}</td><td>{r['about']}</td><td>{html_mod.escape(r['alpha'])}</td>" in page


def test_rmgap_card_has_the_rating_questions_but_no_own_metrics_table(engine, tmp_path):
    from rmgap_annot.export import write_export

    bench = import_any(engine=engine, path=sample_path()).benchmark_id
    write_export(engine=engine, benchmark_id=bench, out_dir=tmp_path / "v")
    card = (tmp_path / "v" / "README.md").read_text(encoding="utf-8")
    assert "## Rating questions" in card and "| naturalness | prompt | n/a" in card
    assert "own metrics" not in card
    assert "<h2>Rating questions</h2>" in (tmp_path / "v" / "report.html").read_text(encoding="utf-8")


def test_a_family_with_several_metrics_keeps_the_metric_column(engine):
    bench = _labelled(engine, SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl")
    section = build_report(engine=engine, benchmark_id=bench, draws=0)["benchmark_metrics"]
    (family,) = families(section).values()
    cells = family_table(family)
    ties = [c for c in cells if c["category"] == "Ties"]
    assert [c["metric"] for c in ties] == ["score", "ref_accuracy", "tied_accuracy", "tied_pick_correct",
                                           "correctness_preferred", "correctness_preferred_hard", "margin_score"]
    assert cells[-1]["category"] == "Score" and cells[-1]["people"].startswith("n/a (")


def test_rmgap_naturalness_resamples_records_and_names_levels_by_value(engine, benchmark_id):
    """An RMGAP import leaves Item.group_key empty: the record is the unit, not one group for everything."""
    from tests.analytics_helpers import add_labels, item_ids

    rows = [{"annotator": f"a{a}", "item_id": iid, "choice": "response1", "naturalness": 1 + (iid * (a + 2)) % 5}
            for iid in item_ids(engine, benchmark_id).values() for a in range(3)]
    add_labels(engine, rows)
    (q,) = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)["ratings"]["questions"]
    assert q["name"] == "naturalness" and q["n_groups"] == 8  # the eight records
    assert q["ci"][0] < q["ci"][1]
    row = rating_rows({"questions": [q]})[0]
    # Naturalness's level labels are sentences: tables and charts name the levels by value.
    assert row["distribution"].startswith("1: ") and "No real user" not in row["distribution"]


def test_study_ids_choose_whose_labels_both_sections_count(engine):
    from rmgap_annot.assignment import create_study

    bench = _labelled(engine, SAMPLES / "rmb" / "RMB_dataset")
    first = list_studies(engine=engine, benchmark_id=bench)[0].id
    other = create_study(engine=engine, benchmark_id=bench, name="other").id
    update_study(engine=engine, study_id=other, questions_json=dumps([CLEAR]))
    mine = build_report(engine=engine, benchmark_id=bench, draws=0, study_ids=[first])
    assert mine["benchmark_metrics"] == format_report(engine=engine, benchmark_id=bench, study_ids=[first], n_boot=0)
    empty = build_report(engine=engine, benchmark_id=bench, draws=0, study_ids=[other])
    assert empty["benchmark_metrics"]["n_labels"] == 0 and empty["benchmark_metrics"]["study_ids"] == [other]
    (clear,) = empty["ratings"]["questions"]  # the other study asks "clear" only
    assert clear["name"] == "clear" and sum(clear["distribution"].values()) == 0
