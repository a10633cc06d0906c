"""Labels and scores files for every format: items addressed by the benchmark's own entry ids."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.cli import app
from rmgap_annot.db import session_scope
from rmgap_annot.formats.store import import_any
from rmgap_annot.labels_io import LabelsFileError, export_labels, import_labels
from rmgap_annot.models import Item, Label, Record, Score
from rmgap_annot.scores_io import export_scores, import_scores
from rmgap_annot.scoring.runner import run_scoring
from rmgap_annot.studies import resolve_study

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
RMB = SAMPLES / "rmb" / "RMB_dataset"
RB2 = SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet"


def _items(engine, bench_id):
    """record_id -> (item id, candidate keys)."""
    from rmgap_annot.models import Response

    with session_scope(engine) as s:
        rows = s.execute(select(Item.id, Record.record_id, Item.record_pk).join(Record, Record.id == Item.record_pk)
                         .where(Item.benchmark_id == bench_id)).all()
        keys = {}
        for pk, key in s.execute(select(Response.record_pk, Response.key)):
            keys.setdefault(pk, []).append(key)
    return {rid: (iid, sorted(keys[pk])) for iid, rid, pk in rows}


def _labels(engine, study_id=None):
    with session_scope(engine) as s:
        stmt = select(Label.item_id, Label.user_id, Label.choice_key, Label.ranking_json, Label.study_id)
        if study_id is not None:
            stmt = stmt.where(Label.study_id == study_id)
        return sorted(s.execute(stmt).all(), key=lambda r: (r[0], r[1]))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])  # what labels export writes, labels import reads
def test_rmb_labels_round_trip_with_pair_uid_and_bon_uid_and_ties(engine, db_url, tmp_path, suffix):
    bench = import_any(engine=engine, path=RMB).benchmark_id
    items = _items(engine, bench)
    ann = create_user(engine=engine, name="ann", role="annotator")
    bob = create_user(engine=engine, name="bob", role="annotator")
    submit_label(engine=engine, user_id=ann, item_id=items["rmb-pair-code-0001"][0], choice_key="tie_good")
    submit_label(engine=engine, user_id=bob, item_id=items["rmb-pair-code-0001"][0], choice_key="tie_bad")
    submit_label(engine=engine, user_id=ann, item_id=items["rmb-pair-translate-0001"][0], choice_key="reject")
    bon_id, bon_keys = items["rmb-bon-code-0001"]
    ranking = ["loser_3", *[k for k in bon_keys if k != "loser_3"]]
    submit_label(engine=engine, user_id=ann, item_id=bon_id, choice_key="loser_3", ranking=ranking)
    submit_label(engine=engine, user_id=bob, item_id=bon_id, choice_key=None, reason="several_fit")
    out = tmp_path / f"labels{suffix}"
    assert export_labels(engine=engine, benchmark_id=bench, out=out, real_names=True) == 5
    if suffix == ".csv":
        with open(out, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert "record_id" not in rows[0] and {"pair_uid", "bon_uid", "item_index"} <= set(rows[0])
        by_choice = {r["choice"]: r for r in rows}
        assert by_choice["tie_good"]["pair_uid"] == "rmb-pair-code-0001" and by_choice["tie_good"]["bon_uid"] == ""
        assert by_choice["loser_3"]["bon_uid"] == "rmb-bon-code-0001" and by_choice["loser_3"]["pair_uid"] == ""
    before = _labels(engine)
    with session_scope(engine) as s:
        s.execute(Label.__table__.delete())
    result = import_labels(engine=engine, path=out, benchmark_id=bench)
    assert result.n_labels == 5 and result.new_annotators == []
    after = _labels(engine)
    assert [(i, u, c, r) for i, u, c, r, _ in after] == [(i, u, c, r) for i, u, c, r, _ in before]


def test_generic_entry_id_and_errors_name_the_line(engine, tmp_path):
    bench = import_any(engine=engine, path=RB2).benchmark_id
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in [
        {"entry_id": "tied:7", "item_index": 0, "annotator": "crowd-1", "choice": "chosen_2"},
        {"id": 102, "annotator": "crowd-1", "choice": "rejected_1"},  # RewardBench ids may be numbers
    ]) + "\n", encoding="utf-8")
    assert import_labels(engine=engine, path=good, benchmark_id=bench).n_labels == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(r) for r in [
        {"id": "nope", "annotator": "x", "choice": "chosen_0"},
        {"id": "857", "annotator": "x", "choice": "tie_good"},  # a tie needs two candidates
        {"id": "857", "item_index": 3, "annotator": "y", "choice": "chosen_0"},
        {"annotator": "z", "choice": "chosen_0"},
        {"id": "857", "entry_id": "102", "annotator": "w", "choice": "chosen_0"},
    ]) + "\n", encoding="utf-8")
    n_before = len(_labels(engine))
    with pytest.raises(LabelsFileError) as info:
        import_labels(engine=engine, path=bad, benchmark_id=bench)
    shown = [str(e) for e in info.value.errors]
    assert f"{bad}:1: id: no entry 'nope' in this benchmark" in shown
    assert any(line.startswith(f"{bad}:2: choice: 'tie_good' is not a response key") for line in shown)
    assert f"{bad}:3: item_index: entry '857' has no item 3 (0-based)" in shown
    assert any(line.startswith(f"{bad}:4: id: an entry id is needed") for line in shown)
    assert any(line.startswith(f"{bad}:5: entry_id: names entry '102' but id names '857'") for line in shown)
    assert len(_labels(engine)) == n_before


def test_csv_header_must_name_an_entry(engine, tmp_path):
    bench = import_any(engine=engine, path=RB2).benchmark_id
    path = tmp_path / "l.csv"
    path.write_text("record_id,group,prompt_index,annotator,choice\n102,0,0,a,chosen_0\n", encoding="utf-8")
    with pytest.raises(LabelsFileError) as info:
        import_labels(engine=engine, path=path, benchmark_id=bench)
    assert str(info.value.errors[0]).startswith(f"{path}:1: (header): missing column(s): id or entry_id")


def test_formula_cells_in_new_columns_are_neutralised_and_restored(engine, tmp_path):
    bench = import_any(engine=engine, path=SAMPLES / "pairs").benchmark_id
    items = _items(engine, bench)
    uid = create_user(engine=engine, name="=HYPERLINK(\"x\")", role="annotator")
    submit_label(engine=engine, user_id=uid, item_id=items["conv-1"][0], choice_key="chosen",
                 comment="=1+1")
    out = tmp_path / "l.csv"
    export_labels(engine=engine, benchmark_id=bench, out=out, real_names=True)  # a backup: names kept
    with open(out, newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    assert row["id"] == "conv-1" and not row["annotator"].startswith("=") and not row["comment"].startswith("=")
    with session_scope(engine) as s:
        s.execute(Label.__table__.delete())
    import_labels(engine=engine, path=out, benchmark_id=bench)
    with session_scope(engine) as s:
        assert s.execute(select(Label.comment)).scalar_one() == "=1+1"


def test_labels_cli_takes_study(engine, db_url, tmp_path):
    bench = import_any(engine=engine, path=SAMPLES / "pairs", name="pp").benchmark_id
    runner = CliRunner()
    made = runner.invoke(app, ["--db", db_url, "study", "create", "pilot", "--benchmark", "pp"])
    assert made.exit_code == 0, made.output
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"id": "conv-2", "annotator": "p1", "choice": "tie_bad"}) + "\n", encoding="utf-8")
    ambiguous = runner.invoke(app, ["--db", db_url, "labels", "import", str(path)])
    assert ambiguous.exit_code == 2 and "several studies" in ambiguous.output
    ok = runner.invoke(app, ["--db", db_url, "labels", "import", str(path), "--study", "pilot"])
    assert ok.exit_code == 0, ok.output
    pilot = resolve_study(engine=engine, name="pilot")
    assert [(c, sid) for _, _, c, _, sid in _labels(engine)] == [("tie_bad", pilot)]
    out = tmp_path / "out.jsonl"
    first = runner.invoke(app, ["--db", db_url, "labels", "export", "--out", str(out), "--study", "pp"])
    assert first.exit_code == 0 and "Wrote 0 labels" in first.output
    both = runner.invoke(app, ["--db", db_url, "labels", "export", "--out", str(out), "--study", "all"])
    assert both.exit_code == 0 and "Wrote 1 labels" in both.output
    row = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert (row["id"], row["item_index"], row["choice"]) == ("conv-2", 0, "tie_bad")
    assert bench


@pytest.mark.parametrize("path", [RMB, RB2, SAMPLES / "prb" / "prb_sample.parquet", SAMPLES / "pairs"],
                         ids=["rmb", "rewardbench2", "prb", "pairs"])
def test_scores_round_trip_every_format(engine, tmp_path, path):
    bench = import_any(engine=engine, path=path).benchmark_id
    run = run_scoring(engine=engine, benchmark_id=bench, spec="length", name="len")
    with session_scope(engine) as s:
        n_items = s.execute(select(func.count()).select_from(Item).where(Item.benchmark_id == bench)).scalar_one()
        stored = sorted(s.execute(select(Score.item_id, Score.response_key, Score.value)).all())
    assert run.n_scored == n_items
    out = tmp_path / "len.jsonl"
    assert export_scores(engine=engine, benchmark_id=bench, scorer_name="len", out=out) == n_items
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all("record_id" not in r and "item_index" in r for r in rows)
    # Length is each candidate's length in characters, whatever N.
    items = _items(engine, bench)
    assert {len(r["scores"]) for r in rows} == {len(keys) for _, keys in items.values()}
    imported = import_scores(engine=engine, benchmark_id=bench, path=out, name="len-again")
    assert imported.created and imported.n_items == n_items
    with session_scope(engine) as s:
        again = sorted(s.execute(select(Score.item_id, Score.response_key, Score.value)
                                 .where(Score.scorer_id == imported.scorer_id)).all())
    assert again == [r for r in stored]


def test_scores_import_names_bad_lines(engine, tmp_path):
    from rmgap_annot.formats.rmgap import BenchmarkFileError

    bench = import_any(engine=engine, path=RMB).benchmark_id
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"pair_uid": "rmb-pair-code-0001", "scores": {"chosen": 1, "reject": 0}},
        {"bon_uid": "rmb-bon-code-0001", "scores": {"bon_best": 1}},
        {"pair_uid": "missing", "scores": {"chosen": 1, "reject": 0}},
    ]) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkFileError) as info:
        import_scores(engine=engine, benchmark_id=bench, path=path)
    shown = [str(e) for e in info.value.errors]
    assert any(line.startswith(f"{path}:2: scores: keys must be the record's response keys: missing loser_0") for line in shown)
    assert f"{path}:3: pair_uid: no entry 'missing' in this benchmark" in shown
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Score)).scalar_one() == 0


def test_ratings_are_checked_on_the_studys_scales_and_round_trip(engine, db_url, tmp_path):
    bench = import_any(engine=engine, path=SAMPLES / "prb" / "prb_sample.jsonl", name="prb").benchmark_id
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db_url, "study", "set", "--study", "prb", "--questions", "prb-human-check"]).exit_code == 0
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "prb-art-0001", "annotator": "r1", "choice": "chosen",
         "ratings": {"factuality": {"chosen": 5, "rejected": 2}, "usefulness": {"chosen": 4, "rejected": 3}}},
        {"id": "prb-art-0001", "annotator": "r2", "choice": "rejected", "ratings": {"factuality": {"chosen": 9, "rejected": 1}}},
        {"id": "prb-art-0001", "annotator": "r3", "choice": "rejected", "ratings": {"tone": 3}},
        {"id": "prb-art-0001", "annotator": "r4", "choice": "rejected", "ratings": "[1]"},
    ]) + "\n", encoding="utf-8")
    with pytest.raises(LabelsFileError) as info:
        import_labels(engine=engine, path=path, benchmark_id=bench)
    shown = [str(e) for e in info.value.errors]
    assert shown == [
        f"{path}:2: ratings: factuality: 9 is not on the scale [1, 2, 3, 4, 5]",
        f"{path}:3: ratings: unknown rating question(s): tone",
        f"{path}:4: ratings: must be a JSON object of rating answers {{question: value}} (as the export writes it)",
    ]
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    import_labels(engine=engine, path=path, benchmark_id=bench)
    out = tmp_path / "out.csv"
    export_labels(engine=engine, benchmark_id=bench, out=out)
    with session_scope(engine) as s:
        stored = s.execute(select(Label.ratings_json)).scalar_one()
        s.execute(Label.__table__.delete())
    assert json.loads(stored) == {"factuality": {"chosen": 5, "rejected": 2}, "usefulness": {"chosen": 4, "rejected": 3}}
    import_labels(engine=engine, path=out, benchmark_id=bench)  # the CSV's ratings column reads back the same
    with session_scope(engine) as s:
        assert s.execute(select(Label.ratings_json)).scalar_one() == stored
