"""Property-based tests: mutated input files end in success or a FILE:LINE error, never a crash.

Mutations start from valid RMGAP records and do what real broken files do:
drop fields, swap in wrong types, huge strings, odd unicode (lone
surrogates, NUL, bidi overrides), wrong nesting, truncation and garbage
bytes. After an error the database is unchanged: on SQLite the file is
byte-for-byte what it was; on PostgreSQL every table has the same rows (row
count and an md5 of its sorted rows, computed by the server).

The tests that touch a database run on SQLite and on PostgreSQL (``db_url``
is ``backend_url`` here), with the same Hypothesis example counts.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from rmgap_annot.formats.rmgap import BenchmarkFileError, ImportResult, import_benchmark
from rmgap_annot.db import dispose_engines, get_engine, init_db, is_sqlite
from rmgap_annot.synthetic import make_record

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_TEXT = st.sampled_from(
    ["", " ", "\u0000", "\ud800", "\udfff", "\u202eevil", "\ufeff", "😀" * 3, "é\u0301", "\r\n", "<script>alert(1)</script>", "x" * 200_000]
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), ODD_TEXT,
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=8)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _parent(obj: Any, path: tuple) -> Any:
    for part in path[:-1]:
        obj = obj[part]
    return obj


def _mutate_record(data, record: dict) -> dict:
    path = data.draw(st.sampled_from(_paths(record)), label="path")
    parent, last = _parent(record, path), path[-1]
    kind = data.draw(st.sampled_from(["drop", "replace", "wrap_list", "wrap_dict", "huge", "duplicate_key_value"]), label="kind")
    if kind == "drop":
        del parent[last]
    elif kind == "replace":
        parent[last] = data.draw(VALUES, label="value")
    elif kind == "wrap_list":
        parent[last] = [parent[last]]
    elif kind == "wrap_dict":
        parent[last] = {"value": parent[last]}
    elif kind == "huge":
        parent[last] = "Ω" * 300_000
    elif isinstance(parent, list) and parent:
        parent.append(parent[0])
    return record


def _dumps(record: Any, data) -> str:
    # Some files are ASCII-escaped (lone surrogates survive that way), others raw UTF-8.
    if data.draw(st.booleans(), label="ascii"):
        return json.dumps(record, ensure_ascii=True)
    return json.dumps(record, ensure_ascii=False)


def _mutated_file(data, path: Path) -> bytes:
    seed = data.draw(st.integers(0, 10_000), label="seed")
    records = [make_record(f"rec-{seed}-{i}", d, random.Random(seed + i), long_text=False) for i, d in enumerate(("Chat", "Safety", "Writing"))]
    target = data.draw(st.integers(0, len(records) - 1), label="target")
    file_kind = data.draw(st.sampled_from(["record", "record", "record", "truncate", "garbage", "not_object", "blank"]), label="file_kind")
    lines = []
    for i, rec in enumerate(records):
        if i == target and file_kind == "record":
            try:
                lines.append(_dumps(_mutate_record(data, rec), data))
            except ValueError:  # json refuses NaN-free encodings only if asked; keep the valid line
                lines.append(json.dumps(rec))
        elif i == target and file_kind == "not_object":
            lines.append(json.dumps(data.draw(VALUES, label="line_value")))
        else:
            lines.append(json.dumps(rec, ensure_ascii=False))
    raw = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    if file_kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]
    elif file_kind == "garbage":
        pos = data.draw(st.integers(0, len(raw)), label="pos")
        raw = raw[:pos] + data.draw(st.binary(min_size=1, max_size=16), label="bytes") + raw[pos:]
    elif file_kind == "blank":
        raw = b"\n \n\t\n"
    path.write_bytes(raw)
    return raw


def _db_digest(path: Path) -> str:
    """The database file after every connection closed (SQLite folds the WAL in then)."""
    dispose_engines()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_file_line_errors(exc: BenchmarkFileError, file: Path) -> None:
    assert exc.errors, "an error must say what is wrong"
    pattern = re.compile(rf"^{re.escape(str(file))}:\d+: \S")
    for err in exc.errors:
        assert pattern.match(str(err)), str(err)


def _pg_contents(url: str, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Each table's row count and an md5 of its rows in a fixed order (PostgreSQL)."""
    with get_engine(url).connect() as conn:
        return {
            t: tuple(conn.execute(text(
                f'SELECT count(*), md5(coalesce(string_agg(r::text, E\'\\n\' ORDER BY r::text), \'\')) FROM "{t}" AS r'
            )).one())
            for t in tables
        }


@pytest.fixture
def db_url(backend_url: str) -> str:
    """This module's database tests run on SQLite and on PostgreSQL."""
    return backend_url


@pytest.fixture
def fuzz_db(db_url):
    """(url, snapshot): snapshot() changes whenever the database's contents do."""
    init_db(db_url)
    if is_sqlite(db_url):
        path = Path(make_url(db_url).database)
        return db_url, lambda: _db_digest(path)
    tables = sorted(inspect(get_engine(db_url)).get_table_names())
    assert {"benchmark", "record", "response", "item", "label", "score"} <= set(tables), tables
    return db_url, lambda: _pg_contents(db_url, tables)


@FUZZ
@given(data=st.data())
def test_benchmark_import_never_crashes_and_never_half_writes(fuzz_db, tmp_path, data):
    url, snapshot = fuzz_db
    src = tmp_path / "mutated.jsonl"
    _mutated_file(data, src)
    before = snapshot()
    try:
        result = import_benchmark(engine=get_engine(url), path=src)
    except BenchmarkFileError as exc:
        _assert_file_line_errors(exc, src)
        assert snapshot() == before, "the database changed although the import failed"
    else:
        assert isinstance(result, ImportResult)


def test_cli_reports_a_broken_file_without_a_traceback(cli, engine, tmp_path, small_records):
    src = tmp_path / "broken.jsonl"
    text = "\n".join(json.dumps(r) for r in small_records)
    src.write_text(text[: len(text) // 2], encoding="utf-8")
    from typer.testing import CliRunner

    from rmgap_annot.cli import app

    result = CliRunner().invoke(app, ["--db", str(engine.url), "import-benchmark", str(src)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert re.search(rf"{re.escape(str(src))}:\d+: ", result.output)


TRICKY = [None, True, 2**70, -(2**70), 1.5, float("nan"), "", "\ud800", "\u0000", [], {}, [[]], {"key": {}}]


def test_every_field_replaced_by_every_tricky_value(fuzz_db, tmp_path):
    """Exhaustive where random search is thin: each field of a record, each tricky value."""
    url, _snapshot = fuzz_db
    base = make_record("tricky", "Reasoning", random.Random(7), long_text=False)
    src = tmp_path / "tricky.jsonl"
    engine = get_engine(url)
    outcomes = {"ok": 0, "error": 0}
    for path in _paths(base):
        for value in [*TRICKY, "__drop__"]:
            record = json.loads(json.dumps(base))
            parent = _parent(record, path)
            if value == "__drop__":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            src.write_text(json.dumps(record) + "\n", encoding="utf-8")
            try:
                import_benchmark(engine=engine, path=src)
                outcomes["ok"] += 1
            except BenchmarkFileError as exc:
                _assert_file_line_errors(exc, src)
                outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0


# --- label and score files ------------------------------------------------------

def _label_and_score_rows(records: list[dict]) -> tuple[list[dict], list[dict]]:
    labels, scores = [], []
    for rec in records[:3]:
        keys = [r["key"] for r in rec["responses"]]
        for g in rec["prompt_groups"]:
            for pi in range(3):
                base = {"record_id": rec["id"], "group": g["group"], "prompt_index": pi}
                labels.append(base | {"annotator": f"crowd-{pi}", "choice": g["winner"], "naturalness": 1 + pi})
                scores.append(base | {"scores": {k: float(i) for i, k in enumerate(keys)}})
    return labels, scores


def _fuzz_rows_file(data, rows: list[dict], path: Path) -> None:
    rows = json.loads(json.dumps(rows))
    target = data.draw(st.integers(0, len(rows) - 1), label="row")
    rows[target] = _mutate_record(data, rows[target]) if rows[target] else rows[target]
    lines = [_dumps(r, data) for r in rows]
    raw = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]
    path.write_bytes(raw)


def _importer_errors() -> tuple[type[Exception], ...]:
    from rmgap_annot.formats.rmgap import BenchmarkFileError

    errors: list[type[Exception]] = [BenchmarkFileError]
    try:
        from rmgap_annot.labels_io import LabelsFileError

        errors.append(LabelsFileError)
    except ImportError:
        pass
    return tuple(errors)


@pytest.mark.parametrize("kind", ["labels", "scores"])
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_label_and_score_imports_never_crash(fuzz_db, tmp_path, small_file, small_records, kind, data):
    importer = pytest.importorskip(f"rmgap_annot.{kind}_io")
    url, snapshot = fuzz_db
    engine = get_engine(url)
    bench_id = import_benchmark(engine=engine, path=small_file, name="small").benchmark_id
    rows = _label_and_score_rows(small_records)[0 if kind == "labels" else 1]
    src = tmp_path / f"mutated-{kind}.jsonl"
    _fuzz_rows_file(data, rows, src)
    before = snapshot()
    engine = get_engine(url)
    try:
        if kind == "labels":
            importer.import_labels(engine=engine, path=src, benchmark_id=bench_id)
        else:
            importer.import_scores(engine=engine, path=src, benchmark_id=bench_id, name="fuzzed", replace=True)
    except _importer_errors() as exc:
        _assert_file_line_errors(exc, src)
        assert snapshot() == before, "the database changed although the import failed"


def test_huge_ids_and_annotator_names_are_line_errors(fuzz_db, tmp_path, small_file, small_records):
    """Found by the PostgreSQL fuzz run: an indexed value over ~2.7 kB was a database error there."""
    from rmgap_annot.labels_io import import_labels

    url, snapshot = fuzz_db
    engine = get_engine(url)
    bench_id = import_benchmark(engine=engine, path=small_file, name="small").benchmark_id
    huge = "\u03a9" * 300_000
    src = tmp_path / "huge.jsonl"
    for field in ("id", "key"):
        record = json.loads(json.dumps(small_records[0])) | {"id": "new-record"}
        if field == "id":
            record["id"] = huge
        else:
            record["responses"][0]["key"] = huge
        src.write_text(json.dumps(record) + "\n", encoding="utf-8")
        before = snapshot()
        with pytest.raises(BenchmarkFileError) as exc:
            import_benchmark(engine=engine, path=src)
        _assert_file_line_errors(exc.value, src)
        assert "at most 500 characters" in str(exc.value)
        assert snapshot() == before
    labels = _label_and_score_rows(small_records)[0]
    labels[1]["annotator"] = huge
    src.write_text("\n".join(json.dumps(r) for r in labels) + "\n", encoding="utf-8")
    before = snapshot()
    with pytest.raises(_importer_errors()) as exc:
        import_labels(engine=engine, path=src, benchmark_id=bench_id)
    _assert_file_line_errors(exc.value, src)
    assert f"{src}:2: annotator: longer than 500 characters" in str(exc.value)
    assert snapshot() == before
