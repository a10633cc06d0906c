"""export-verified in each benchmark's own form: label, score, export, read the export back: the same entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.cli import app
from rmgap_annot.db import session_scope
from rmgap_annot.export import MANIFEST, ExportError, Rule, foreign_files, write_export
from rmgap_annot.export.files import BENCHMARK_DIR
from rmgap_annot.formats import read
from rmgap_annot.formats.store import import_any
from rmgap_annot.models import Item, Record
from rmgap_annot.scoring.runner import run_scoring
from rmgap_annot.studies import list_studies

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
CASES = [
    ("rmb", SAMPLES / "rmb" / "RMB_dataset"),
    ("prb", SAMPLES / "prb" / "prb_sample.jsonl"),
    ("prb", SAMPLES / "prb" / "prb_sample.parquet"),
    ("rewardbench", SAMPLES / "rewardbench" / "rewardbench_sample.parquet"),
    ("rewardbench2", SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl"),
    ("rewardbench2", SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet"),
    ("pairs", SAMPLES / "pairs"),
]
IDS = [f"{fmt}-{path.name}" for fmt, path in CASES]


def _items(engine, bench_id) -> list[tuple[int, str, list[str], list[str]]]:
    """(item id, entry id, candidate keys, correct keys) in file order."""
    from rmgap_annot.models import Response

    with session_scope(engine) as s:
        rows = s.execute(
            select(Item.id, Record.record_id, Item.record_pk, Item.correct_keys_json)
            .join(Record, Record.id == Item.record_pk).where(Item.benchmark_id == bench_id)
            .order_by(Record.file_path, Record.line_no)
        ).all()
        keys: dict[int, list[str]] = {}
        for pk, key in s.execute(select(Response.record_pk, Response.key).order_by(Response.position)):
            keys.setdefault(pk, []).append(key)
    return [(iid, rid, keys[pk], json.loads(ck)) for iid, rid, pk, ck in rows]


def _label_everything(engine, bench_id) -> tuple[set[str], set[str]]:
    """Three people label every item: the first entry fails (a tie, or a wrong pick), the rest pass.

    Returns (entries expected kept, entries expected dropped). An entry with
    several correct candidates gets its last one picked: any correct pick counts.
    """
    study_id = list_studies(engine=engine, benchmark_id=bench_id)[0].id
    users = [create_user(engine=engine, name=f"a{i}", role="annotator") for i in range(3)]
    items = _items(engine, bench_id)
    kept, dropped = set(), set()
    for n, (iid, rid, keys, correct) in enumerate(items):
        for u in users:
            if n == 0:
                wrong = "tie_bad" if len(keys) == 2 else next(k for k in keys if k not in correct)
                submit_label(engine=engine, user_id=u, item_id=iid, choice_key=wrong, study_id=study_id)
            else:
                submit_label(engine=engine, user_id=u, item_id=iid, choice_key=correct[-1], study_id=study_id)
        (dropped if n == 0 else kept).add(rid)
    return kept, dropped


def _read_back(fmt: str, source: Path, out: Path):
    target = out / BENCHMARK_DIR
    return read(target if source.is_dir() else target / source.name, fmt)


@pytest.mark.parametrize("fmt,path", CASES, ids=IDS)
def test_export_writes_kept_entries_in_their_own_form_and_they_read_back_identical(engine, tmp_path, fmt, path):
    original = read(path, fmt)
    bench = import_any(engine=engine, path=path).benchmark_id
    kept, dropped = _label_everything(engine, bench)
    scored = run_scoring(engine=engine, benchmark_id=bench, spec="length", name="length")
    assert scored.n_scored == len(original.items)
    out = tmp_path / "export"
    # The default rule asks a mean naturalness of 3; no study of these formats asks it, so it is not applied.
    result = write_export(engine=engine, benchmark_id=bench, out_dir=out, rule=Rule())
    assert result.rule.min_naturalness == 0
    assert result.n_written == len(kept)
    assert result.summary["All"]["records_kept"] == len(kept) and result.summary["All"]["records"] == len(original.entries)
    assert not (out / "test.jsonl").exists()
    for name in ("labels.csv", "labels.parquet", "README.md", "report.html", MANIFEST):
        assert (out / name).is_file()
    back = _read_back(fmt, path, out)
    expected = [e for e in original.entries if e.entry_id in kept]
    assert [e.entry_id for e in back.entries] == [e.entry_id for e in expected]
    assert [e.file for e in back.entries] == [e.file for e in expected]
    for got, want in zip(back.entries, expected):
        assert got.original == want.original  # equal as JSON values
        if want.container == "jsonl":
            assert got.raw == want.raw  # line for line, byte for byte
        if want.container == "parquet":
            assert got.schema.equals(want.schema)
    if path.is_file() and original.entries[0].container == "jsonl":
        src_lines = path.read_text(encoding="utf-8").splitlines()
        out_lines = (out / BENCHMARK_DIR / path.name).read_text(encoding="utf-8").splitlines()
        assert out_lines == [line for line in src_lines if json.loads(line)["id"] not in dropped]
    assert foreign_files(out) == []  # the whole tree is the export's: --force may replace it
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"`{BENCHMARK_DIR}/` (record level) holds the kept entries in the benchmark's own form ({fmt})" in card
    # The export imports again as a benchmark of its own, entry for entry.
    again = import_any(engine=engine, path=(out / BENCHMARK_DIR) if path.is_dir() else out / BENCHMARK_DIR / path.name)
    assert again.created and sum(c["records"] for c in again.counts.values()) == len(kept)


def test_rmb_export_keeps_the_tree_and_json_arrays(engine, tmp_path):
    path = SAMPLES / "rmb" / "RMB_dataset"
    bench = import_any(engine=engine, path=path).benchmark_id
    _label_everything(engine, bench)
    out = tmp_path / "export"
    write_export(engine=engine, benchmark_id=bench, out_dir=out)
    written = sorted(p.relative_to(out / BENCHMARK_DIR).as_posix() for p in (out / BENCHMARK_DIR).rglob("*.json"))
    first = _items(engine, bench)[0][1]
    sources = {p.relative_to(path).as_posix(): json.loads(p.read_text(encoding="utf-8")) for p in path.rglob("*.json")}
    # A file whose every entry was dropped is not written; every other keeps its name and place in the tree.
    expected = sorted(name for name, entries in sources.items()
                      if any(e.get("pair_uid", e.get("bon_uid")) != first for e in entries))
    assert written == expected
    for name in written:
        data = json.loads((out / BENCHMARK_DIR / name).read_text(encoding="utf-8"))
        assert isinstance(data, list)
        assert data == [e for e in sources[name] if e.get("pair_uid", e.get("bon_uid")) != first]


def test_force_replaces_a_tree_export_but_not_a_foreign_file_in_it(engine, tmp_path):
    bench = import_any(engine=engine, path=SAMPLES / "rmb" / "RMB_dataset").benchmark_id
    _label_everything(engine, bench)
    out = tmp_path / "export"
    write_export(engine=engine, benchmark_id=bench, out_dir=out)
    write_export(engine=engine, benchmark_id=bench, out_dir=out, force=True)  # its own tree: replaced
    stray = out / BENCHMARK_DIR / "Pairwise_set" / "notes.txt"
    stray.write_text("mine", encoding="utf-8")
    with pytest.raises(ExportError, match="notes.txt"):
        write_export(engine=engine, benchmark_id=bench, out_dir=out, force=True)
    assert stray.read_text(encoding="utf-8") == "mine"


def test_naturalness_applies_when_the_study_asks_it(engine, db_url, tmp_path):
    bench = import_any(engine=engine, path=SAMPLES / "pairs", name="pp").benchmark_id
    runner = CliRunner()
    asked = runner.invoke(app, ["--db", db_url, "study", "set", "--study", "pp", "--questions", "rmgap"])
    assert asked.exit_code == 0, asked.output
    study_id = list_studies(engine=engine, benchmark_id=bench)[0].id
    users = [create_user(engine=engine, name=f"n{i}", role="annotator") for i in range(3)]
    (iid, _, _, correct), (iid2, _, _, correct2) = _items(engine, bench)[:2]
    for u in users:
        submit_label(engine=engine, user_id=u, item_id=iid, choice_key=correct[0], naturalness=2, study_id=study_id)
        submit_label(engine=engine, user_id=u, item_id=iid2, choice_key=correct2[0], naturalness=5, study_id=study_id)
    result = write_export(engine=engine, benchmark_id=bench, out_dir=tmp_path / "e", rule=Rule())
    assert result.rule.min_naturalness == 3
    assert result.summary["All"]["items_dropped"]["unnatural"] == 1
    assert result.n_written == 1


def test_cli_export_verified_speaks_entries(engine, db_url, tmp_path):
    bench = import_any(engine=engine, path=SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl", name="rb2").benchmark_id
    kept, _ = _label_everything(engine, bench)
    res = CliRunner().invoke(app, ["--db", db_url, "export-verified", "--out", str(tmp_path / "x"), "--benchmark", "rb2"])
    assert res.exit_code == 0, res.output
    assert f"Wrote {len(kept)} verified entries of 'rb2'" in res.output and "benchmark/" in res.output
    assert "Ties" in res.output and "Writing" not in res.output


def test_home_and_export_pages_show_another_formats_benchmark(engine, db_url, monkeypatch):
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.chdir(root)
    bench = import_any(engine=engine, path=SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl").benchmark_id
    kept, _ = _label_everything(engine, bench)
    rid = create_user(engine=engine, name="res", role="researcher")
    for path in ("pages/home.py", "pages/export.py"):
        at = AppTest.from_file(str(root / path), default_timeout=30)
        at.session_state["user_id"], at.session_state["role"] = rid, "researcher"
        at.run()
        assert not at.exception, (path, at.exception)
        if path == "pages/export.py":
            # The preview judges as the export does: no naturalness asked, any correct key passes.
            assert any(f"{len(kept)} of 5 records" in m.value for m in at.markdown)
            table = at.dataframe[0].value
            assert "Ties" in set(table["domain"]) and "Math" in set(table["domain"])
        else:
            table = at.dataframe[0].value
            assert set(table["domain"]) == {"Factuality", "Focus", "Math", "Ties", "total"}


def test_hf_dataset_judges_as_the_export(engine, tmp_path):
    from rmgap_annot.hf_dataset import write_hf_dataset

    bench = import_any(engine=engine, path=SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl").benchmark_id
    kept, _ = _label_everything(engine, bench)
    result = write_hf_dataset(engine=engine, benchmark_id=bench, out_dir=tmp_path / "hf", rule=Rule(), level="item",
                              license_id="cc-by-4.0")
    # No naturalness was asked, and tied:7's pick (a correct key other than the first) passes.
    assert result.n_items == len(kept)
