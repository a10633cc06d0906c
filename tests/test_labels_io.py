"""Labels in and out: strict atomic import, exports in three formats that re-import."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from sqlalchemy import func, select

from rmgap_annot.db import session_scope
from rmgap_annot.labels_io import LabelsFileError, import_labels
from rmgap_annot.models import Label, User
from tests.analytics_helpers import item_ids, winners

HEADER = ["record_id", "group", "prompt_index", "annotator", "choice", "naturalness"]


def _write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _n_labels(engine) -> int:
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(Label)).scalar_one()


def test_csv_import_creates_annotators_without_password(engine, benchmark_id, small_records, tmp_path, cli):
    rid = small_records[0]["id"]
    path = _write_csv(tmp_path / "l.csv", [
        [rid, 0, 0, "crowd-1", "response2", 4],
        [rid, 0, 0, "crowd-2", "", 5],
        [rid, 0, 1, "crowd-2", "CANT_DECIDE", ""],
    ])
    res = cli("labels", "import", str(path))
    assert res.exit_code == 0, res.output
    assert "Imported 3 labels" in res.output
    with session_scope(engine) as s:
        users = s.execute(select(User.name, User.role, User.password_hash)).all()
        labels = s.execute(select(Label.choice_key, Label.naturalness, Label.source).order_by(Label.id)).all()
    assert sorted(users) == [("crowd-1", "annotator", None), ("crowd-2", "annotator", None)]
    assert labels == [("response2", 4, "import"), (None, 5, "import"), (None, None, "import")]


def test_errors_name_file_line_field_and_change_nothing(engine, benchmark_id, small_records, tmp_path, cli):
    rid = small_records[0]["id"]
    path = _write_csv(tmp_path / "bad.csv", [
        [rid, 0, 0, "a", "response1", 3],          # line 2: fine
        ["nope", 0, 0, "a", "response1", 3],       # line 3: unknown record
        [rid, 7, 0, "a", "response1", 3],          # line 4: no such group
        [rid, 0, 3, "a", "response1", 3],          # line 5: prompt index out of range
        [rid, 0, 1, "a", "B", 3],                  # line 6: a display letter, not a key
        [rid, 0, 2, "a", "response1", 6],          # line 7: naturalness out of range
        [rid, 0, 0, "a", "response2", 3],          # line 8: duplicate of line 2
        [rid, "x", 0, "", "response1", 3],         # line 9: two problems
    ])
    res = cli("labels", "import", str(path))
    assert res.exit_code == 2
    err = res.stderr
    for expected in (
        f"{path}:3: record_id:", f"{path}:4: group:", f"{path}:5: prompt_index:", f"{path}:6: choice:",
        f"{path}:7: naturalness:", f"{path}:8: annotator:", f"{path}:9: group:", f"{path}:9: annotator:",
    ):
        assert expected in err
    assert f"{path}:2:" not in err
    assert _n_labels(engine) == 0
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0


def test_many_errors_show_fifty_then_a_count(engine, benchmark_id, tmp_path, cli):
    path = _write_csv(tmp_path / "many.csv", [["nope", 0, 0, "a", "x", 3]] * 60)
    res = cli("labels", "import", str(path))
    assert res.exit_code == 2
    assert "and 10 more errors" in res.stderr or "more" in res.stderr.splitlines()[50]


def test_missing_column_and_unknown_type(engine, benchmark_id, tmp_path):
    path = _write_csv(tmp_path / "h.csv", [["r", 0, 0, "a", "x"]], header=HEADER[:-1])
    with pytest.raises(LabelsFileError) as exc:
        import_labels(engine=engine, path=path, benchmark_id=benchmark_id)
    assert "h.csv:1: (header): missing column(s): naturalness" in str(exc.value)
    other = tmp_path / "l.xlsx"
    other.write_text("x")
    with pytest.raises(LabelsFileError, match="use .csv, .jsonl or .parquet"):
        import_labels(engine=engine, path=other, benchmark_id=benchmark_id)


def test_jsonl_with_ranking_and_display_order(engine, benchmark_id, small_records, tmp_path):
    rid = small_records[0]["id"]
    keys = ["response3", "response1", "response2", "response4"]
    lines = [
        {"record_id": rid, "group": 0, "prompt_index": 0, "annotator": "a", "choice": "response3", "naturalness": 5,
         "ranking": keys, "displayed_order": "response1,response2,response3,response4", "seconds": 12.5, "comment": "ok"},
        {"record_id": rid, "group": 0, "prompt_index": 1, "annotator": "a", "choice": "response1", "naturalness": 2,
         "ranking": "response3>response1>response2>response4"},
        {"record_id": rid, "group": 0, "prompt_index": 2, "annotator": "a", "choice": None, "naturalness": None,
         "reason": "prompt_unclear"},
    ]
    path = tmp_path / "l.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    with pytest.raises(LabelsFileError) as exc:
        import_labels(engine=engine, path=path, benchmark_id=benchmark_id)
    assert "l.jsonl:2: choice: 'response1' is not the ranking's first key 'response3'" in str(exc.value)
    lines[1]["choice"] = "response3"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    assert import_labels(engine=engine, path=path, benchmark_id=benchmark_id).n_labels == 3
    with session_scope(engine) as s:
        rows = s.execute(select(Label.ranking_json, Label.displayed_order_json, Label.seconds, Label.reason).order_by(Label.id)).all()
    assert json.loads(rows[0][0]) == keys and json.loads(rows[1][0]) == keys
    assert json.loads(rows[0][1]) == ["response1", "response2", "response3", "response4"]
    assert rows[0][2] == 12.5 and rows[2][3] == "prompt_unclear"


def test_existing_labels_refused_unless_replace(engine, benchmark_id, small_records, tmp_path, cli):
    rid = small_records[0]["id"]
    path = _write_csv(tmp_path / "l.csv", [[rid, 0, 0, "a", "response1", 3]])
    assert cli("labels", "import", str(path)).exit_code == 0
    again = cli("labels", "import", str(path))
    assert again.exit_code == 2 and "already has a label" in again.stderr
    path = _write_csv(tmp_path / "l.csv", [[rid, 0, 0, "a", "response2", 4]])
    assert cli("labels", "import", "--replace", str(path)).exit_code == 0
    with session_scope(engine) as s:
        assert s.execute(select(Label.choice_key, Label.naturalness)).all() == [("response2", 4)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export_round_trips(engine, benchmark_id, small_records, tmp_path, cli, suffix, db_url):
    ids = item_ids(engine, benchmark_id)
    win = winners(engine, benchmark_id)
    rid = small_records[0]["id"]
    keys = ["response1", "response2", "response3", "response4"]
    path = tmp_path / "in.jsonl"
    lines = [
        {"record_id": rid, "group": 0, "prompt_index": 0, "annotator": "a", "choice": "response1", "naturalness": 4,
         "displayed_order": keys, "ranking": keys},
        {"record_id": rid, "group": 1, "prompt_index": 2, "annotator": "b", "choice": "", "naturalness": 2, "comment": "hmm, \"quoted\"\nnewline"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    assert cli("labels", "import", str(path)).exit_code == 0
    out = tmp_path / f"labels{suffix}"
    res = cli("labels", "export", "--out", str(out))
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out) if suffix == ".parquet" else (pd.read_csv(out, keep_default_na=False) if suffix == ".csv" else pd.read_json(out, lines=True))
    assert len(df) == 2
    first = df.iloc[0]
    assert (first["record_id"], int(first["group"]), int(first["prompt_index"]), first["domain"]) == (rid, 0, 0, small_records[0]["domain"])
    assert first["winner_key"] == win[ids[(rid, 0, 0)]]
    # The export re-imports into a fresh database with the same labels.
    from rmgap_annot.formats.rmgap import import_benchmark
    from rmgap_annot.db import get_engine, init_db
    from rmgap_annot.synthetic import write_jsonl

    url2 = f"sqlite:///{tmp_path / 'second.sqlite'}"
    init_db(url2)
    engine2 = get_engine(url2)
    bid2 = import_benchmark(engine=engine2, path=write_jsonl(tmp_path / "b.jsonl", small_records)).benchmark_id
    assert import_labels(engine=engine2, path=out, benchmark_id=bid2).n_labels == 2
    with session_scope(engine2) as s:
        got = s.execute(select(Label.choice_key, Label.naturalness, Label.comment, Label.ranking_json).order_by(Label.id)).all()
    assert got[0][:2] == ("response1", 4) and json.loads(got[0][3]) == keys
    assert got[1][:3] == (None, 2, "hmm, \"quoted\"\nnewline")


def test_a_bad_parquet_labels_file_names_the_row_and_changes_nothing(engine, benchmark_id, small_records, tmp_path, cli):
    rid = small_records[0]["id"]
    rows = pd.DataFrame([
        {"record_id": rid, "group": 0, "prompt_index": 0, "annotator": "a", "choice": "response1", "naturalness": 4},
        {"record_id": rid, "group": 0, "prompt_index": 1, "annotator": "a", "choice": "response9", "naturalness": 4},
    ])
    path = tmp_path / "labels.parquet"
    rows.to_parquet(path, index=False)
    res = cli("labels", "import", str(path))
    assert res.exit_code == 2 and f"{path}:ROW 2: choice: 'response9'" in res.stderr, res.stderr
    fake = tmp_path / "fake.parquet"
    fake.write_text("record_id,group\n", encoding="utf-8")
    res = cli("labels", "import", str(fake))
    assert res.exit_code == 2 and f"{fake}:0: (file): not a readable Parquet file" in res.stderr, res.stderr
    rows.drop(columns=["annotator"]).to_parquet(path, index=False)
    res = cli("labels", "import", str(path))
    assert res.exit_code == 2 and f"{path}:ROW 1: annotator: missing column(s): annotator" in res.stderr, res.stderr
    with session_scope(engine) as s:
        assert s.execute(select(Label)).first() is None


def test_export_rejects_unknown_extension(engine, benchmark_id, tmp_path, cli):
    res = cli("labels", "export", "--out", str(tmp_path / "x.xlsx"))
    assert res.exit_code == 2 and "use .csv, .jsonl or .parquet" in res.stderr


def test_a_labels_file_cannot_create_a_crowd_participant(engine, benchmark_id, small_records, tmp_path, cli):
    """Participants are made only by a study link; a file naming a new 'prolific:...' is refused, nothing written."""
    rid = small_records[0]["id"]
    path = _write_csv(tmp_path / "l.csv", [
        [rid, 0, 0, "ok-person", "response2", 4],
        [rid, 0, 1, "Prolific:5f0c1e2d3a4b5c6d7e8f9a01", "response2", 4],
    ])
    res = cli("labels", "import", str(path))
    assert res.exit_code == 2, res.output
    assert "l.csv:3: annotator:" in res.output and "study link" in res.output
    with session_scope(engine) as s:
        assert s.execute(select(Label.id)).first() is None
        assert s.execute(select(User.id).where(User.name == "ok-person")).first() is None
