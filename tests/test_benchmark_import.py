"""Importing RMGAP files: valid files land whole, invalid ones change nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rmgap_annot.formats.rmgap import BenchmarkFileError, import_benchmark, parse_file
from rmgap_annot.db import dispose_engines, session_scope
from rmgap_annot.models import Benchmark, Item, Record, Response
from rmgap_annot.synthetic import write_jsonl


def _db_bytes(db_url: str) -> bytes:
    """The database's content, WAL folded in, so 'unchanged' means byte-for-byte."""
    dispose_engines()
    path = Path(db_url.removeprefix("sqlite:///"))
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return hashlib.sha256(path.read_bytes()).digest()


def _count(engine, model) -> int:
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def test_valid_file_imports_records_responses_and_items(engine, small_file, small_records):
    result = import_benchmark(engine=engine, path=small_file)
    assert result.created
    assert result.counts["Chat"] == {"records": 2, "items": 24}
    assert _count(engine, Record) == 8
    assert _count(engine, Response) == 32
    assert _count(engine, Item) == 96
    with session_scope(engine) as s:
        rec = s.execute(select(Record).where(Record.record_id == small_records[0]["id"])).scalar_one()
        # The stored line is the original, every field kept (unknown ones too).
        assert json.loads(rec.raw_json) == small_records[0]
        items = s.execute(select(Item).where(Item.record_pk == rec.id).order_by(Item.group_index, Item.prompt_index)).scalars().all()
    first_group = small_records[0]["prompt_groups"][0]
    assert [i.text for i in items[:3]] == [p["text"] for p in first_group["prompts"]]
    assert {i.winner_key for i in items[:3]} == {first_group["winner"]}
    assert [i.role for i in items[:3]] == ["base", "rewrite", "rewrite"]


def test_reimport_same_content_is_a_noop(engine, small_file, db_url):
    first = import_benchmark(engine=engine, path=small_file)
    before = _db_bytes(db_url)
    again = import_benchmark(engine=engine, path=small_file, name="another-name")
    assert not again.created and again.benchmark_id == first.benchmark_id
    assert _db_bytes(db_url) == before


def test_gzip_and_bom_are_the_same_content(engine, tmp_path, small_file):
    import_benchmark(engine=engine, path=small_file)
    gz = tmp_path / "small.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\xef\xbb\xbf" + small_file.read_bytes()))
    assert not import_benchmark(engine=engine, path=gz).created


def test_different_file_becomes_second_benchmark(engine, tmp_path, small_records, small_file):
    import_benchmark(engine=engine, path=small_file)
    other = write_jsonl(tmp_path / "small.jsonl.other", small_records[:4])
    result = import_benchmark(engine=engine, path=other)
    assert result.created
    assert _count(engine, Benchmark) == 2
    assert _count(engine, Record) == 12


def _mutations():
    """(name, mutate(record), field expected in the error)."""

    def drop_response(r):
        r["responses"].pop()

    def extra_prompt(r):
        r["prompt_groups"][1]["prompts"].append({"role": "rewrite", "text": "x"})

    def three_groups(r):
        r["prompt_groups"].pop()

    def bad_winner(r):
        r["prompt_groups"][2]["winner"] = "response9"

    def dup_key(r):
        r["responses"][1]["key"] = r["responses"][0]["key"]

    def empty_text(r):
        r["responses"][3]["text"] = "   "

    def empty_prompt(r):
        r["prompt_groups"][0]["prompts"][2]["text"] = ""

    def bad_domain(r):
        r["domain"] = "Math"

    def bad_role(r):
        r["prompt_groups"][0]["prompts"][0]["role"] = "paraphrase"

    def str_group(r):
        r["prompt_groups"][0]["group"] = "zero"

    def winners_not_permutation(r):
        r["prompt_groups"][1]["winner"] = r["prompt_groups"][0]["winner"]

    return [
        ("wrong count of responses", drop_response, "responses"),
        ("wrong count of prompts", extra_prompt, "prompt_groups[1].prompts"),
        ("wrong count of groups", three_groups, "prompt_groups"),
        ("winner not a response key", bad_winner, "prompt_groups[2].winner"),
        ("duplicate keys", dup_key, "responses"),
        ("empty response text", empty_text, "responses[3].text"),
        ("empty prompt text", empty_prompt, "prompt_groups[0].prompts[2].text"),
        ("unknown domain", bad_domain, "domain"),
        ("unknown role", bad_role, "prompt_groups[0].prompts[0].role"),
        ("group not an integer", str_group, "prompt_groups[0].group"),
        ("a response wins two groups", winners_not_permutation, "prompt_groups"),
    ]


@pytest.mark.parametrize("name,mutate,field", _mutations(), ids=[m[0] for m in _mutations()])
def test_invalid_record_names_line_and_field_and_changes_nothing(engine, db_url, tmp_path, small_records, name, mutate, field):
    mutate(small_records[5])
    path = write_jsonl(tmp_path / "bad.jsonl", small_records)
    before = _db_bytes(db_url)
    with pytest.raises(BenchmarkFileError) as exc:
        import_benchmark(engine=engine, path=path)
    errors = exc.value.errors
    assert any(e.line == 6 and e.field == field for e in errors), [str(e) for e in errors]
    assert all(str(e).startswith(f"{path}:6: ") for e in errors)
    assert _db_bytes(db_url) == before


@pytest.mark.parametrize(
    "line,expected",
    [
        ('{"id": "x", "domain": "Chat", "responses": [', "invalid JSON"),
        ('[1, 2, 3]', "expected a JSON object"),
        ('"just a string"', "expected a JSON object"),
    ],
    ids=["truncated JSON", "array line", "string line"],
)
def test_malformed_lines(engine, db_url, tmp_path, small_records, line, expected):
    text = "\n".join(json.dumps(r) for r in small_records[:3]) + "\n" + line + "\n"
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    before = _db_bytes(db_url)
    with pytest.raises(BenchmarkFileError) as exc:
        import_benchmark(engine=engine, path=path)
    assert [(e.line, expected in e.message) for e in exc.value.errors] == [(4, True)]
    assert _db_bytes(db_url) == before


def test_non_utf8_bytes_name_their_line(engine, db_url, tmp_path, small_records):
    good = "\n".join(json.dumps(r) for r in small_records[:2]).encode()
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(good + b'\n{"id": "caf\xe9"}\n')
    before = _db_bytes(db_url)
    with pytest.raises(BenchmarkFileError) as exc:
        import_benchmark(engine=engine, path=path)
    (err,) = exc.value.errors
    assert err.line == 3 and "UTF-8" in err.message
    assert _db_bytes(db_url) == before


def test_duplicate_record_id_and_every_error_reported(tmp_path, small_records):
    small_records[3]["id"] = small_records[0]["id"]
    small_records[6]["domain"] = "Nope"
    path = write_jsonl(tmp_path / "bad.jsonl", small_records)
    with pytest.raises(BenchmarkFileError) as exc:
        parse_file(path)
    got = {(e.line, e.field) for e in exc.value.errors}
    assert got == {(4, "id"), (7, "domain")}


def test_cli_import_prints_counts_and_errors(cli, small_file, tmp_path, small_records):
    ok = cli("import-benchmark", str(small_file), "--name", "s")
    assert ok.exit_code == 0, ok.output
    assert "Chat" in ok.output and "24" in ok.output
    again = cli("import-benchmark", str(small_file))
    assert again.exit_code == 0 and "nothing changed" in again.output
    for r in small_records:
        r["domain"] = "Bad"
    bad = write_jsonl(tmp_path / "bad.jsonl", small_records * 8)  # 64 bad lines -> capped output
    res = cli("import-benchmark", str(bad))
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(str(bad))]
    assert len(lines) == 50
    assert "14 more errors" in res.stderr


def test_rmgap_items_are_grouped_by_their_record(engine, small_file):
    """The record is an RMGAP item's resampling unit, stored like another format's group."""
    import_benchmark(engine=engine, path=small_file)
    with session_scope(engine) as s:
        rows = s.execute(select(Item.group_key, Item.category_path, Item.domain, Record.record_id)
                         .join(Record, Record.id == Item.record_pk)).all()
    assert rows and all(g == rid and c == d for g, c, d, rid in rows)
