"""Hostile or careless input files end in exit 2 with FILE:LINE, never a crash or a stuck item.

Each case goes through the real CLI (in-process, exceptions not caught, so a
traceback fails the test) and compares the SQLite file byte for byte before
and after. The limits come from ``rmgap_annot.limits``; where a real file at
the limit would be hundreds of MB, the test lowers the limit in the module
that applies it and feeds a file just over it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from rmgap_annot.formats import rmgap as benchmark_mod
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import dispose_engines, get_engine, init_db
from rmgap_annot.labels_io import LabelsFileError, import_labels
from rmgap_annot.limits import MAX_CSV_FIELD_CHARS, MAX_INPUT_BYTES, MAX_JSON_DEPTH, MAX_TEXT_CHARS, json_depth_exceeds
from rmgap_annot.synthetic import make_records, write_jsonl

DEEP = "[" * 200_000 + "]" * 200_000
HEADER = "record_id,group,prompt_index,annotator,choice,naturalness,comment\n"


def _db_digest(url: str) -> str:
    dispose_engines()
    return hashlib.sha256(Path(make_url(url).database).read_bytes()).hexdigest()


def _label_row(rec: dict, annotator: str = "crowd-1", comment: str = "") -> str:
    return f"{rec['id']},0,0,{annotator},,3,{comment}\n"


def _run_bad(cli, db_url: str, args: list[str], file: Path, line: int) -> str:
    before = _db_digest(db_url)
    result = cli(*args, str(file))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(rf"^{re.escape(str(file))}:{line}: ", result.output, re.M), result.output
    assert _db_digest(db_url) == before, "the database changed although the import failed"
    return result.output


# --- nesting depth --------------------------------------------------------------


def test_depth_scan_ignores_brackets_inside_strings():
    assert json_depth_exceeds(DEEP)
    assert not json_depth_exceeds(json.dumps({"text": DEEP}))
    assert not json_depth_exceeds("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert json_depth_exceeds("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert json_depth_exceeds('{"a": "\\"[", "b": ' + "[" * 100 + "]" * 100 + "}")


@pytest.mark.parametrize("kind", ["import-benchmark", "labels", "scores"])
def test_deeply_nested_json_is_a_line_error(cli, db_url, benchmark_id, small_records, tmp_path, kind):
    rec = small_records[0]
    good = {
        "import-benchmark": json.dumps(small_records[0] | {"id": "other"}),
        "labels": json.dumps({"record_id": rec["id"], "group": 0, "prompt_index": 0, "annotator": "a", "choice": None, "naturalness": 3}),
        "scores": json.dumps({"record_id": rec["id"], "group": 0, "prompt_index": 0, "scores": {r["key"]: 1.0 for r in rec["responses"]}}),
    }[kind]
    path = tmp_path / "deep.jsonl"
    path.write_text(good + "\n" + '{"id": "x", "extra": ' + DEEP + "}\n", encoding="utf-8")
    args = {"import-benchmark": ["import-benchmark"], "labels": ["labels", "import"], "scores": ["scores", "import"]}[kind]
    out = _run_bad(cli, db_url, args, path, 2)
    assert f"nested deeper than {MAX_JSON_DEPTH}" in out


def test_deep_ranking_in_a_csv_cell_is_a_line_error(cli, db_url, benchmark_id, small_records, tmp_path):
    path = tmp_path / "deep.csv"
    path.write_text("record_id,group,prompt_index,annotator,choice,naturalness,ranking\n"
                    f"{small_records[0]['id']},0,0,a,,3,\"{'[' * 5000}\"\n", encoding="utf-8")
    _run_bad(cli, db_url, ["labels", "import"], path, 2)


# --- CSV ------------------------------------------------------------------------


def test_a_csv_field_over_the_csv_limit_is_a_line_error(cli, db_url, benchmark_id, small_records, tmp_path):
    path = tmp_path / "long.csv"
    rec = small_records[0]
    path.write_text(HEADER + _label_row(rec) + _label_row(rec, "crowd-2", "x" * (MAX_CSV_FIELD_CHARS + 1)), encoding="utf-8")
    assert f"{MAX_CSV_FIELD_CHARS:,}" in _run_bad(cli, db_url, ["labels", "import"], path, 3)


def test_an_unterminated_quote_is_an_error_not_a_label(cli, db_url, benchmark_id, small_records, tmp_path):
    path = tmp_path / "quote.csv"
    # The quote opens the annotator's cell: a lenient reader makes the rest of
    # the file the annotator's name and imports the row as a Can't decide label.
    rid = small_records[0]["id"]
    path.write_text(HEADER + _label_row(small_records[0]) + f'{rid},0,1,"unterminated,response1,3,,\n', encoding="utf-8")
    assert "unterminated" in _run_bad(cli, db_url, ["labels", "import"], path, 3)


@pytest.mark.parametrize("row, line", [("{rid},0,0,a,,3\n", 2), ("{rid},0,0,a,,3,c,extra\n", 2)])
def test_a_row_with_the_wrong_number_of_values_is_an_error(cli, db_url, benchmark_id, small_records, tmp_path, row, line):
    path = tmp_path / "count.csv"
    path.write_text(HEADER + row.format(rid=small_records[0]["id"]), encoding="utf-8")
    assert "header's 7 columns" in _run_bad(cli, db_url, ["labels", "import"], path, line)


def test_a_quoted_newline_inside_a_comment_still_imports(engine, benchmark_id, small_records, tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text(HEADER + _label_row(small_records[0], comment='"two\nlines"'), encoding="utf-8")
    assert import_labels(engine=engine, path=path, benchmark_id=benchmark_id).n_labels == 1


def test_nul_in_a_csv_annotator_name_is_a_line_error(cli, db_url, benchmark_id, small_records, tmp_path):
    path = tmp_path / "nul.csv"
    path.write_text(HEADER + _label_row(small_records[0]) + _label_row(small_records[0], "evil\x00name"), encoding="utf-8")
    out = _run_bad(cli, db_url, ["labels", "import"], path, 3)
    assert ": annotator: contains a NUL" in out


def test_a_csv_text_field_over_the_text_limit_is_a_line_error(engine, benchmark_id, small_records, tmp_path, monkeypatch):
    from rmgap_annot import labels_io

    monkeypatch.setattr(labels_io, "MAX_TEXT_CHARS", 100)
    path = tmp_path / "text.csv"
    path.write_text(HEADER + _label_row(small_records[0], comment="y" * 101), encoding="utf-8")
    with pytest.raises(LabelsFileError) as exc:
        import_labels(engine=engine, path=path, benchmark_id=benchmark_id)
    assert [str(e) for e in exc.value.errors] == [f"{path}:2: comment: longer than 100 characters"]


# --- sizes ----------------------------------------------------------------------


def test_a_text_over_the_per_text_limit_is_a_line_error(cli, db_url, benchmark_id, record_factory, tmp_path):
    rec = record_factory("huge")
    rec["responses"][2]["text"] = "z" * (MAX_TEXT_CHARS + 1)
    path = write_jsonl(tmp_path / "huge.jsonl", [rec])
    out = _run_bad(cli, db_url, ["import-benchmark"], path, 1)
    assert "responses[2].text: text longer than" in out


def test_an_item_the_page_cannot_show_is_refused(engine, record_factory, tmp_path, monkeypatch):
    rec = record_factory("big")
    size = sum(len(r["text"].encode()) for r in rec["responses"]) + len(rec["prompt_groups"][0]["prompts"][0]["text"].encode())
    monkeypatch.setattr(benchmark_mod, "MAX_ITEM_BYTES", size - 1)
    path = write_jsonl(tmp_path / "big.jsonl", [rec])
    with pytest.raises(benchmark_mod.BenchmarkFileError, match="the annotate page can show"):
        import_benchmark(engine=engine, path=path)


def test_a_line_over_the_line_limit_is_a_line_error(cli, db_url, benchmark_id, small_records, tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark_mod, "MAX_LINE_CHARS", 50_000)
    records = make_records({"Chat": 2}, seed=5, long_text=False)
    records[1]["responses"][0]["text"] = "w" * 60_000
    path = write_jsonl(tmp_path / "long.jsonl", records)
    assert "line longer than 50,000 characters" in _run_bad(cli, db_url, ["import-benchmark"], path, 2)


def test_a_file_over_the_size_limit_is_refused(cli, db_url, benchmark_id, small_file, tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark_mod, "MAX_INPUT_BYTES", small_file.stat().st_size - 1)
    assert "larger than" in _run_bad(cli, db_url, ["import-benchmark"], small_file, 0)


def _gzip_bomb(path: Path, inflated: int) -> Path:
    block = b"\n" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        for _ in range(inflated // len(block)):
            fh.write(block)
    return path


@pytest.mark.parametrize("kind", ["import-benchmark", "labels", "scores"])
def test_a_gzip_bomb_is_refused_while_it_inflates(cli, db_url, benchmark_id, tmp_path, monkeypatch, kind):
    monkeypatch.setattr(benchmark_mod, "MAX_INPUT_BYTES", 4 << 20)
    bomb = _gzip_bomb(tmp_path / ("bomb.csv.gz" if kind == "labels" else "bomb.jsonl.gz"), 16 << 20)
    args = {"import-benchmark": ["import-benchmark"], "labels": ["labels", "import"], "scores": ["scores", "import"]}[kind]
    assert "larger than 4,194,304 bytes (decompressed)" in _run_bad(cli, db_url, args, bomb, 0)


def test_a_1_gib_gzip_bomb_stays_within_the_documented_memory_bound(tmp_path):
    """The README promises peak memory under MAX_INPUT_BYTES + 256 MiB for any input file."""
    bomb = _gzip_bomb(tmp_path / "bomb.jsonl.gz", 1 << 30)
    assert bomb.stat().st_size < 2 << 20
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's peak into an
    # exec'd child's ru_maxrss, so under a big pytest process it measured pytest.
    script = textwrap.dedent(f"""
        import re, sys
        from pathlib import Path
        from rmgap_annot.formats.rmgap import BenchmarkFileError, read_text
        try:
            read_text(Path({str(bomb)!r}))
        except BenchmarkFileError as exc:
            print("refused:", exc)
        status = Path("/proc/self/status").read_text()
        print("peak_kib", re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "refused:" in out and "decompressed" in out
    peak_bytes = int(out.split("peak_kib")[1]) * 1024
    assert peak_bytes < MAX_INPUT_BYTES + (256 << 20), peak_bytes


# --- NUL on PostgreSQL too ------------------------------------------------------


def _pg_contents(url: str) -> dict:
    engine = get_engine(url)
    tables = sorted(inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {
            t: tuple(conn.execute(text(
                f'SELECT count(*), md5(coalesce(string_agg(r::text, E\'\\n\' ORDER BY r::text), \'\')) FROM "{t}" AS r'
            )).one())
            for t in tables
        }


@pytest.mark.postgres
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_nul_in_a_label_file_is_a_line_error_on_postgres(pg_url, small_file, small_records, tmp_path, suffix):
    init_db(pg_url)
    engine = get_engine(pg_url)
    bench = import_benchmark(engine=engine, path=small_file, name="small").benchmark_id
    rec = small_records[0]
    path = tmp_path / f"nul{suffix}"
    if suffix == ".csv":
        path.write_text(HEADER + _label_row(rec) + _label_row(rec, "evil\x00name"), encoding="utf-8")
    else:
        rows = [{"record_id": rec["id"], "group": 0, "prompt_index": 0, "annotator": name, "choice": None, "naturalness": 3}
                for name in ("crowd-1", "evil\x00name")]
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    before = _pg_contents(pg_url)
    with pytest.raises(LabelsFileError) as exc:
        import_labels(engine=engine, path=path, benchmark_id=bench)
    assert [e.line for e in exc.value.errors] == [3 if suffix == ".csv" else 2]
    assert "NUL" in str(exc.value)
    assert _pg_contents(pg_url) == before


def test_line_numbers_count_blank_lines_without_listing_them(engine, benchmark_id, tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n" * 1000 + "  \r\n\t\n" + "not json\n" + "\n" * 5 + "[1]\n", encoding="utf-8")
    with pytest.raises(benchmark_mod.BenchmarkFileError) as exc:
        import_benchmark(engine=engine, path=path)
    assert [e.line for e in exc.value.errors] == [1003, 1009]


def test_a_gzip_compressed_labels_csv_imports(engine, benchmark_id, small_records, tmp_path):
    path = tmp_path / "labels.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write(HEADER + _label_row(small_records[0]))
    assert import_labels(engine=engine, path=path, benchmark_id=benchmark_id).n_labels == 1
