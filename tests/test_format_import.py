"""Importing the other benchmark formats into the database: whole and atomic, or not at all."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rmgap_annot.formats.rmgap import sample_path
from rmgap_annot.cli import app
from rmgap_annot.db import dispose_engines, session_scope
from rmgap_annot.formats import read
from rmgap_annot.formats.common import FormatFileError
from rmgap_annot.formats.store import import_any, schema_from_b64
from rmgap_annot.models import Benchmark, BenchmarkFile, Item, Record, Response, Study, StudyItem

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
# (format, sample path, entries, candidates per item as found in the sample)
CASES = [
    ("rmb", SAMPLES / "rmb" / "RMB_dataset", 7),
    ("rmb", SAMPLES / "rmb" / "RMB_dataset" / "BoN_set" / "Helpfulness" / "Code" / "Code Generation.json", 1),
    ("prb", SAMPLES / "prb" / "prb_sample.jsonl", 3),
    ("prb", SAMPLES / "prb" / "prb_sample.parquet", 3),
    ("rewardbench", SAMPLES / "rewardbench" / "rewardbench_sample.parquet", 5),
    ("rewardbench", SAMPLES / "rewardbench" / "rewardbench_sample.jsonl", 5),
    ("rewardbench2", SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl", 5),
    ("rewardbench2", SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet", 5),
    ("pairs", SAMPLES / "pairs", 6),
]
IDS = [f"{fmt}-{path.name}" for fmt, path, _ in CASES]


def _db_digest(db_url: str) -> str:
    """The database file's bytes (WAL folded in): 'unchanged' means byte for byte."""
    dispose_engines()
    path = Path(db_url.removeprefix("sqlite:///"))
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _counts(engine) -> dict[str, int]:
    with session_scope(engine) as s:
        return {m.__name__: s.execute(select(func.count()).select_from(m)).scalar_one()
                for m in (Benchmark, BenchmarkFile, Record, Response, Item, Study, StudyItem)}


@pytest.mark.parametrize("fmt,path,n_entries", CASES, ids=IDS)
def test_sample_imports_every_entry_with_its_items(engine, fmt, path, n_entries):
    loaded = read(path, fmt)
    result = import_any(engine=engine, path=path)  # the format detected from the content
    assert result.created
    assert sum(c["records"] for c in result.counts.values()) == n_entries
    with session_scope(engine) as s:
        bench = s.get(Benchmark, result.benchmark_id)
        assert bench.format == fmt and bench.n_records == n_entries and bench.file_hash == loaded.content_hash
        records = {r.record_id: r for r in s.execute(select(Record).where(Record.benchmark_id == bench.id)).scalars()}
        items = s.execute(select(Item).where(Item.benchmark_id == bench.id)).scalars().all()
        responses = s.execute(select(Response).join(Record, Record.id == Response.record_pk)
                              .where(Record.benchmark_id == bench.id)).scalars().all()
        files = s.execute(select(BenchmarkFile).where(BenchmarkFile.benchmark_id == bench.id)
                          .order_by(BenchmarkFile.position)).scalars().all()
        study = s.execute(select(Study).where(Study.benchmark_id == bench.id)).scalars().one()
        n_study_items = s.execute(select(func.count()).select_from(StudyItem)
                                  .where(StudyItem.study_id == study.id)).scalar_one()
    assert n_study_items == len(items) == len(loaded.items)
    assert [f.path for f in files] == list(dict.fromkeys(e.file for e in loaded.entries))
    by_pk = {r.id: r for r in records.values()}
    texts: dict[int, dict[str, str]] = {}
    for resp in responses:
        texts.setdefault(resp.record_pk, {})[resp.key] = resp.text
    for entry in loaded.entries:
        rec = records[entry.entry_id]
        assert rec.file_path == entry.file and rec.line_no == entry.position
        # Kept verbatim: a JSONL line as read, anything else equal as a JSON value.
        if entry.container == "jsonl":
            assert rec.raw_json == entry.raw
        assert json.loads(rec.raw_json) == entry.original
        for item in entry.items:
            assert texts[rec.id] == {c.key: c.text for c in item.candidates}
    for row in items:
        entry = next(e for e in loaded.entries if e.entry_id == by_pk[row.record_pk].record_id)
        item = entry.items[row.prompt_index]
        assert row.winner_key == item.correct_keys[0]
        assert json.loads(row.correct_keys_json) == list(item.correct_keys)
        assert row.category_path == "/".join(item.category_path)
        assert row.domain == (item.category_path[0] if item.category_path else "")
        assert row.group_key == item.group_id and (row.group, row.group_index, row.role) == (0, 0, "")
        if item.conversation:
            assert json.loads(row.context_json) == item.conversation
            assert row.text == [m for m in item.conversation if m["role"] == "user"][-1]["content"]
        else:
            assert row.context_json is None and row.text == item.prompt
        assert (json.loads(row.profile_json) if row.profile_json else None) == item.profile
        assert json.loads(row.hidden_json) == json.loads(json.dumps(item.hidden))
    for f in files:
        if f.container == "parquet":
            import pyarrow.parquet as pq

            assert schema_from_b64(f.schema_b64).equals(pq.read_schema(path))
        else:
            assert f.schema_b64 is None


@pytest.mark.parametrize("fmt,path,n_entries", CASES[:1] + CASES[2:3] + CASES[-1:], ids=IDS[:1] + IDS[2:3] + IDS[-1:])
def test_same_content_again_is_a_noop(engine, db_url, tmp_path, fmt, path, n_entries):
    first = import_any(engine=engine, path=path, format=fmt)
    before = _db_digest(db_url)
    # A copy elsewhere (another folder name for a tree) is the same benchmark.
    copy = tmp_path / "elsewhere" / path.name
    if path.is_dir():
        shutil.copytree(path, copy)
    else:
        copy.parent.mkdir()
        shutil.copy(path, copy)
    again = import_any(engine=engine, path=copy, format=fmt, name="another-name")
    assert not again.created and again.benchmark_id == first.benchmark_id and again.name == first.name
    assert again.counts == first.counts
    assert _db_digest(db_url) == before


def test_rmgap_still_goes_through_its_own_importer(engine):
    result = import_any(engine=engine, path=sample_path())
    with session_scope(engine) as s:
        bench = s.get(Benchmark, result.benchmark_id)
        n_items = s.execute(select(func.count()).select_from(Item).where(Item.benchmark_id == bench.id)).scalar_one()
    assert bench.format == "rmgap" and n_items == 12 * bench.n_records


def _rmb_tree(tmp_path: Path) -> Path:
    root = tmp_path / "RMB_dataset"
    shutil.copytree(SAMPLES / "rmb" / "RMB_dataset", root)
    return root


BON_FILE = Path("BoN_set/Helpfulness/Code/Code Generation.json")
PAIR_FILE = Path("Pairwise_set/Helpfulness/Chat/Translation.json")


def _bad_rmb_one_candidate(tmp_path):
    root = _rmb_tree(tmp_path)
    entries = json.loads((root / BON_FILE).read_text(encoding="utf-8"))
    entries[0]["loser_list"] = []
    (root / BON_FILE).write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    return root, "rmb", f"{root / BON_FILE}:ENTRY 1: loser_list: must hold at least one loser"


def _bad_rmb_unclosed(tmp_path):
    root = _rmb_tree(tmp_path)
    text = (root / PAIR_FILE).read_text(encoding="utf-8").rstrip()
    assert text.endswith("]")
    (root / PAIR_FILE).write_text(text[:-1], encoding="utf-8")
    return root, "rmb", f"{root / PAIR_FILE}:ENTRY 1: (array): the JSON array is not closed"


def _bad_rmb_last_turn(tmp_path):
    root = _rmb_tree(tmp_path)
    entries = json.loads((root / PAIR_FILE).read_text(encoding="utf-8"))
    entries[0]["conversation_input"].append({"role": "assistant", "content": "Sure.", "language": "English"})
    (root / PAIR_FILE).write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return root, "rmb", f"{root / PAIR_FILE}:ENTRY 1: conversation_input"


def _bad_pairs_identical(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "Hi?", "chosen": "Hello.", "rejected": "Bye."}) + "\n"
                    + json.dumps({"id": "b", "prompt": "Hi?", "chosen": "Same.", "rejected": "Same."}) + "\n",
                    encoding="utf-8")
    return path, "pairs", f"{path}:2: "


def _bad_pairs_last_turn(tmp_path):
    path = tmp_path / "conv.jsonl"
    path.write_text(json.dumps({"id": "c", "prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
                                "chosen": [{"role": "assistant", "content": "A"}],
                                "rejected": [{"role": "assistant", "content": "B"}]}) + "\n", encoding="utf-8")
    return path, "pairs", f"{path}:1: prompt"


def _bad_prb_no_profile(tmp_path):
    lines = (SAMPLES / "prb" / "prb_sample.jsonl").read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[1])
    del entry["profile"]
    lines[1] = json.dumps(entry, ensure_ascii=False)
    path = tmp_path / "prb.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, "prb", f"{path}:2: profile: is missing"


def _bad_rewardbench2_one_candidate(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet"
    rows = pq.read_table(src).to_pylist()
    rows[2]["rejected"] = []
    rows[2]["num_incorrect"] = 0
    rows[2]["total_completions"] = 1
    path = tmp_path / "rb2.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(src)), path)
    return path, "rewardbench2", f"{path}:ROW 3: "


def _bad_duplicate_ids(tmp_path):
    lines = (SAMPLES / "rewardbench" / "rewardbench_sample.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "rb.jsonl"
    path.write_text("\n".join([*lines, lines[0]]) + "\n", encoding="utf-8")
    return path, "rewardbench", f"{path}:{len(lines) + 1}: (id): duplicate entry id '30' (first in"


BAD = [_bad_rmb_one_candidate, _bad_rmb_unclosed, _bad_rmb_last_turn, _bad_pairs_identical, _bad_pairs_last_turn,
       _bad_prb_no_profile, _bad_rewardbench2_one_candidate, _bad_duplicate_ids]


@pytest.mark.parametrize("make", BAD, ids=[f.__name__.removeprefix("_bad_") for f in BAD])
def test_bad_input_is_named_precisely_and_changes_nothing(engine, db_url, tmp_path, make):
    import_any(engine=engine, path=SAMPLES / "pairs")  # something already there, to stay unchanged
    path, fmt, expected = make(tmp_path)
    before_counts = _counts(engine)
    before = _db_digest(db_url)
    with pytest.raises(FormatFileError) as info:
        import_any(engine=engine, path=path, format=fmt)
    shown = [str(e) for e in info.value.errors]
    assert any(line.startswith(expected) for line in shown), shown
    assert _db_digest(db_url) == before
    assert _counts(engine) == before_counts


def test_cli_imports_each_format_and_explains_a_failed_detection(engine, tmp_path, db_url):
    from typer.testing import CliRunner

    runner = CliRunner()
    ok = runner.invoke(app, ["--db", db_url, "import-benchmark", str(SAMPLES / "rmb" / "RMB_dataset"), "--name", "rmb"])
    assert ok.exit_code == 0, ok.output
    assert "Imported benchmark 'rmb'" in ok.output and "Helpfulness" in ok.output
    forced = runner.invoke(app, ["--db", db_url, "import-benchmark", str(SAMPLES / "prb" / "prb_sample.jsonl"),
                                 "--format", "prb"])
    assert forced.exit_code == 0, forced.output
    # The wrong --format: the reader names what it missed, exit 2.
    wrong = runner.invoke(app, ["--db", db_url, "import-benchmark", str(SAMPLES / "pairs" / "standard.jsonl"),
                                "--format", "prb"])
    assert wrong.exit_code == 2 and "standard.jsonl:1: question" in wrong.output
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"question_text": "x", "answer": "y"}\n', encoding="utf-8")
    before = _db_digest(db_url)
    failed = runner.invoke(app, ["--db", db_url, "import-benchmark", str(odd)])
    assert failed.exit_code == 2
    assert "match no known format" in failed.output and "pass --format" in failed.output
    assert "Traceback" not in failed.output
    unknown = runner.invoke(app, ["--db", db_url, "import-benchmark", str(odd), "--format", "nope"])
    assert unknown.exit_code == 2 and "--format must be one of" in unknown.output
    assert _db_digest(db_url) == before
    listed = runner.invoke(app, ["--db", db_url, "benchmarks"])
    assert "rmb (id 1" in listed.output and "Harmlessness" in listed.output


@pytest.mark.postgres
def test_postgres_imports_atomically_and_idempotently(pg_url, tmp_path):
    from rmgap_annot.db import get_engine, init_db

    init_db(pg_url)
    engine = get_engine(pg_url)
    first = import_any(engine=engine, path=SAMPLES / "rmb" / "RMB_dataset")
    parquet = import_any(engine=engine, path=SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet")
    assert first.created and parquet.created
    before = _counts(engine)
    assert not import_any(engine=engine, path=SAMPLES / "rmb" / "RMB_dataset").created
    path, fmt, expected = _bad_duplicate_ids(tmp_path)
    with pytest.raises(FormatFileError):
        import_any(engine=engine, path=path, format=fmt)
    assert _counts(engine) == before
    with session_scope(engine) as s:
        raw = s.execute(select(Record.raw_json).where(Record.record_id == "tied:7")).scalar_one()
    assert json.loads(raw) == next(e.original for e in read(SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet").entries
                                   if e.entry_id == "tied:7")


def test_unreadable_lines_are_named_when_the_format_cannot_be_told(engine, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"prompt": "a", "chosen": \n[1, 2]\n', encoding="utf-8")
    with pytest.raises(FormatFileError) as info:
        import_any(engine=engine, path=path)
    shown = [str(e) for e in info.value.errors]
    assert shown[0].startswith(f"{path}:1: (line): invalid JSON")
    assert shown[1].startswith(f"{path}:2: (line): expected a JSON object")
    assert "pass --format" in shown[-1]
