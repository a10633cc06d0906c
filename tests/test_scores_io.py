"""Score files in and out: same shape both ways, all-or-nothing import."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from rmgap_annot.formats.rmgap import BenchmarkFileError
from rmgap_annot.db import session_scope
from rmgap_annot.models import Score, Scorer
from rmgap_annot.scores_io import export_scores, import_scores, score_rows
from rmgap_annot.scoring import ScoringOptions
from rmgap_annot.scoring.runner import run_scoring


def n_scores(engine):
    with session_scope(engine) as session:
        return session.execute(select(func.count()).select_from(Score)).scalar_one()


def test_export_then_import_round_trips(engine, benchmark_id, small_records, tmp_path):
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="random", options=ScoringOptions(seed=1))
    out = tmp_path / "random.jsonl"
    assert export_scores(engine=engine, benchmark_id=benchmark_id, scorer_name="random", out=out) == 96
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["record_id"] == small_records[0]["id"] and lines[0]["group"] == 0 and lines[0]["prompt_index"] == 0
    assert list(lines[0]["scores"]) == ["response1", "response2", "response3", "response4"]
    result = import_scores(engine=engine, benchmark_id=benchmark_id, path=out, name="copy")
    assert result.created and result.n_items == 96
    assert score_rows(engine=engine, benchmark_id=benchmark_id, scorer_name="copy") == lines
    again = import_scores(engine=engine, benchmark_id=benchmark_id, path=out, name="copy")
    assert not again.created


def test_null_is_nan_and_round_trips(engine, benchmark_id, small_records, tmp_path):
    rec = small_records[0]
    keys = [r["key"] for r in rec["responses"]]
    path = tmp_path / "nan.jsonl"
    path.write_text(json.dumps({"record_id": rec["id"], "group": 0, "prompt_index": 1, "scores": {k: (None if k == keys[0] else 1) for k in keys}}) + "\n")
    import_scores(engine=engine, benchmark_id=benchmark_id, path=path, name="nan")
    row = score_rows(engine=engine, benchmark_id=benchmark_id, scorer_name="nan")[0]
    assert row["scores"][keys[0]] is None and row["scores"][keys[1]] == 1.0


def test_every_problem_is_reported_and_nothing_is_stored(engine, benchmark_id, small_records, tmp_path):
    rec = small_records[0]
    keys = [r["key"] for r in rec["responses"]]
    good = {"record_id": rec["id"], "group": 0, "prompt_index": 0, "scores": {k: 1.0 for k in keys}}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "record_id": "nope"}),
        json.dumps({**good, "prompt_index": 1, "scores": {keys[0]: 1.0}}),
        json.dumps({**good, "prompt_index": 2, "scores": {**good["scores"], keys[1]: "high"}}),
        json.dumps(good),
        json.dumps({"record_id": rec["id"], "group": "0"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkFileError) as info:
        import_scores(engine=engine, benchmark_id=benchmark_id, path=path, name="bad")
    text = [str(e) for e in info.value.errors]
    assert f"{path}:2: (line): invalid JSON" in text[0]
    assert any(t.startswith(f"{path}:3: record_id: no item") for t in text)
    assert any(t.startswith(f"{path}:4: scores: keys must be") and "missing" in t for t in text)
    assert any(t.startswith(f"{path}:5: scores.{keys[1]}: must be a number") for t in text)
    assert any(t.startswith(f"{path}:6: (line): duplicate item (first on line 1)") for t in text)
    assert any(t.startswith(f"{path}:7: scores: required field missing") for t in text)
    assert n_scores(engine) == 0
    with session_scope(engine) as session:
        assert session.execute(select(func.count()).select_from(Scorer)).scalar_one() == 0


def test_cli_import_and_export(cli, engine, benchmark_id, tmp_path):
    assert cli("score", "--scorer", "length", "--no-progress").exit_code == 0
    out = tmp_path / "len.jsonl"
    res = cli("scores", "export", "--scorer", "length", "--out", str(out))
    assert res.exit_code == 0 and "Wrote 96 items" in res.output
    res = cli("scores", "import", str(out), "--name", "len-copy")
    assert res.exit_code == 0 and "Imported scorer 'len-copy': 96 items" in res.output
    assert cli("scores", "import", str(out), "--name", "length").exit_code == 2  # name clash, different file
    assert cli("scores", "export", "--scorer", "missing", "--out", str(out)).exit_code == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[]\n")
    res = cli("scores", "import", str(bad))
    assert res.exit_code == 2 and f"{bad}:1: (line): expected a JSON object" in res.output
