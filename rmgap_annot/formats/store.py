"""Benchmarks of the other formats in the database: import, and the entries back out for the export.

RMGAP keeps its own importer (``rmgap_annot.formats.rmgap``), whose record-level
export is byte for byte; this module gives every other format the same
guarantees: every problem reported before anything is written, one
transaction, and the same content (by hash) imported twice a no-op.

Each original entry is stored verbatim (``Record.raw_json``: a JSONL line as
read, a JSON array entry or a Parquet row as JSON text) with the file it came
from (``Record.file_path`` and ``BenchmarkFile``, which keeps a Parquet file's
Arrow schema), so the verified export can rebuild the benchmark's own files
and its evaluator reads them unchanged.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from rmgap_annot.formats.rmgap import ImportResult, LineError, import_benchmark as import_rmgap
from rmgap_annot.db import session_scope
from rmgap_annot.formats import FORMAT_NAMES, FORMATS, detect_format, read
from rmgap_annot.formats.common import Entry, FormatError, FormatFileError, Loaded, container_of
from rmgap_annot.models import Benchmark, BenchmarkFile, Item, Record, Response

# How each format names its entries' ids: labels and scores files address entries by these columns.
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "rmb": ("pair_uid", "bon_uid"),
    "prb": ("id",),
    "rewardbench": ("id",),
    "rewardbench2": ("id",),
    "pairs": ("id",),
}
ENTRY_ID = "entry_id"  # the generic column, accepted for every format
ITEM_INDEX = "item_index"
_UNIT_OF = {"jsonl": "line", "json": "entry", "parquet": "row"}


def id_column(fmt: str, raw: dict) -> str:
    """The column an entry's id is written under (RMB: pair_uid or bon_uid, as the entry has it)."""
    columns = ID_COLUMNS.get(fmt, (ENTRY_ID,))
    return next((c for c in columns if c in raw), columns[0])


def default_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name or "benchmark"


def import_any(*, engine: Engine, path: str | Path, format: str | None = None,  # noqa: A002 - the CLI's word
               name: str | None = None) -> ImportResult:
    """Import a benchmark file or folder in any format (detected from the content when None).

    RMGAP goes through its own importer unchanged.
    """
    if format is not None and format not in FORMAT_NAMES:
        raise FormatFileError([FormatError(str(path), 0, "--format", f"must be one of {', '.join(FORMAT_NAMES)}, not {format!r}")])
    try:
        fmt = format or detect_format(path)
    except FormatFileError as exc:
        raise _line_problems_first(Path(path), exc) from None
    if fmt == "rmgap":
        if Path(path).is_dir():
            raise FormatFileError([FormatError(str(path), 0, "(file)", "an RMGAP benchmark is one .jsonl file, not a folder")])
        return import_rmgap(engine=engine, path=path, name=name)
    return import_entries(engine=engine, loaded=read(path, fmt), name=name)


def _line_problems_first(path: Path, detection: FormatFileError) -> FormatFileError:
    """A JSONL file whose format could not be told: its unreadable lines first (too long, not JSON, ...), then why.

    Those problems are the file's whatever its format, so they are named by
    line as every importer names them; the detection's explanation follows.
    """
    if not (path.is_file() and container_of(path) == "jsonl"):
        return detection
    from rmgap_annot.formats.rmgap import json_lines, read_text

    text, _ = read_text(path, error=FormatFileError)
    lines = [FormatError(str(path), n, "(line)", problem) for n, _raw, _data, problem in json_lines(text) if problem]
    return FormatFileError(lines + detection.errors) if lines else detection


def _schema_b64(schema) -> str | None:  # noqa: ANN001 - a pyarrow.Schema
    return None if schema is None else base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_b64(text: str | None):  # noqa: ANN201 - a pyarrow.Schema or None
    if not text:
        return None
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def _raw_json(entry: Entry, errors: list[FormatError]) -> str | None:
    """The entry as stored: a JSONL line verbatim, anything else as JSON text (checked to round-trip)."""
    if entry.raw is not None:
        return entry.raw
    try:
        text = json.dumps(entry.original, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        errors.append(FormatError(entry.file, entry.position, f"({entry.unit})",
                                  f"holds a value JSON cannot carry, so it could not be exported again ({exc})", entry.unit))
        return None
    if json.loads(text) != entry.original:
        errors.append(FormatError(entry.file, entry.position, f"({entry.unit})",
                                  "holds a value that does not survive as JSON (a float NaN or a tuple)", entry.unit))
        return None
    return text


def _domain(item) -> str:  # noqa: ANN001
    return item.category_path[0] if item.category_path else ""


def _counts(domains: Iterable[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """domain -> {records, items} from (domain, items in the entry) pairs."""
    out: dict[str, dict[str, int]] = {}
    for domain, n_items in domains:
        c = out.setdefault(domain, {"records": 0, "items": 0})
        c["records"] += 1
        c["items"] += n_items
    return dict(sorted(out.items()))


def import_entries(*, engine: Engine, loaded: Loaded, name: str | None = None) -> ImportResult:
    """Store a read benchmark (``formats.read``) in one transaction, with its first study.

    Raises FormatFileError naming every entry that cannot be stored (the
    reader has already refused every invalid one); nothing is written then.
    """
    errors: list[FormatError] = []
    raws = [_raw_json(e, errors) for e in loaded.entries]
    if errors:
        raise FormatFileError(errors)
    path = loaded.path
    with session_scope(engine, write=True) as session:
        existing = session.execute(select(Benchmark).where(Benchmark.file_hash == loaded.content_hash)).scalars().first()
        if existing is not None:
            rows = session.execute(
                select(Item.domain, Item.record_pk).where(Item.benchmark_id == existing.id)).all()
            per_record = Counter(pk for _, pk in rows)
            domain_of = {pk: d for d, pk in rows}
            return ImportResult(existing.id, existing.name, False, _counts((domain_of[pk], n) for pk, n in per_record.items()))
        bench_name = name or default_name(path)
        if session.execute(select(Benchmark.id).where(Benchmark.name == bench_name)).first() is not None:
            if name:
                raise FormatFileError([LineError(str(path), 0, "--name", f"a different benchmark is already called {bench_name!r}")])
            bench_name = f"{bench_name}-{loaded.content_hash[:8]}"
        bench = Benchmark(name=bench_name, file_hash=loaded.content_hash, source_path=str(path),
                          n_records=len(loaded.entries), format=loaded.format)
        session.add(bench)
        session.flush()
        files: dict[str, Entry] = {}
        for entry in loaded.entries:
            files.setdefault(entry.file, entry)
        session.execute(insert(BenchmarkFile), [
            {"benchmark_id": bench.id, "path": f, "container": e.container, "position": i, "schema_b64": _schema_b64(e.schema)}
            for i, (f, e) in enumerate(files.items())
        ])
        session.execute(insert(Record), [
            {
                "benchmark_id": bench.id, "record_id": e.entry_id, "line_no": e.position, "file_path": e.file,
                "domain": _domain(e.items[0]) if e.items else "", "source": None, "style_json": "{}", "raw_json": raw,
            }
            for e, raw in zip(loaded.entries, raws)
        ])
        pk_by_id = dict(session.execute(select(Record.record_id, Record.id).where(Record.benchmark_id == bench.id)).all())
        responses, items = [], []
        for e in loaded.entries:
            pk = pk_by_id[e.entry_id]
            # Every item of an entry shares its candidates (RMGAP's record is the same shape).
            seen_keys: set[str] = set()
            for item in e.items:
                for pos, cand in enumerate(item.candidates):
                    if cand.key not in seen_keys:
                        seen_keys.add(cand.key)
                        responses.append({"record_pk": pk, "key": cand.key, "position": pos, "text": cand.text})
                conversation = item.conversation
                items.append({
                    "benchmark_id": bench.id, "record_pk": pk, "domain": _domain(item), "group": 0, "group_index": 0,
                    "prompt_index": item.item_index, "role": "",
                    "text": item.prompt if item.prompt is not None else _last_user_turn(conversation),
                    "winner_key": item.correct_keys[0],
                    "correct_keys_json": json.dumps(list(item.correct_keys), ensure_ascii=False),
                    "context_json": json.dumps(conversation, ensure_ascii=False) if conversation else None,
                    "profile_json": json.dumps(item.profile, ensure_ascii=False) if item.profile else None,
                    "category_path": "/".join(item.category_path), "group_key": item.group_id,
                    "hidden_json": json.dumps(item.hidden, ensure_ascii=False, default=str) if item.hidden else None,
                })
        session.execute(insert(Response), responses)
        session.execute(insert(Item), items)
        from rmgap_annot.formats.rmgap import create_first_study

        create_first_study(session, bench.id)
        return ImportResult(bench.id, bench.name, True, _counts((_domain(e.items[0]) if e.items else "", len(e.items))
                                                               for e in loaded.entries))


def _last_user_turn(conversation: list[dict[str, str]] | None) -> str:
    for message in reversed(conversation or []):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""


def responses_by_record(session, benchmark_id: int) -> dict[int, list[tuple[str, str]]]:  # noqa: ANN001
    """Record pk -> its candidates (key, text) in file order: one query for a whole benchmark."""
    out: dict[int, list[tuple[str, str]]] = {}
    for pk, key, text in session.execute(
        select(Response.record_pk, Response.key, Response.text)
        .join(Record, Record.id == Response.record_pk)
        .where(Record.benchmark_id == benchmark_id)
        .order_by(Response.record_pk, Response.position)
    ).all():
        out.setdefault(pk, []).append((key, text))
    return out


def stored_entries(*, engine: Engine, benchmark_id: int, record_ids: set[str] | None = None) -> list[Entry]:
    """The benchmark's entries as read (file order), rebuilt from the stored originals; only ``record_ids`` when given.

    Items are not rebuilt: the writers need the entries only.
    """
    with session_scope(engine) as session:
        files = {
            f.path: f for f in session.execute(
                select(BenchmarkFile).where(BenchmarkFile.benchmark_id == benchmark_id)).scalars()
        }
        rows = session.execute(
            select(Record.record_id, Record.file_path, Record.line_no, Record.raw_json)
            .where(Record.benchmark_id == benchmark_id)
        ).all()
    schemas = {p: schema_from_b64(f.schema_b64) for p, f in files.items()}
    out = []
    for rid, file_path, line_no, raw in rows:
        if record_ids is not None and rid not in record_ids:
            continue
        f = files.get(file_path)
        container = f.container if f is not None else "jsonl"
        out.append(Entry(
            file=file_path, position=line_no, unit=_UNIT_OF[container], container=container, entry_id=rid,
            original=json.loads(raw), raw=raw if container == "jsonl" else None, schema=schemas.get(file_path),
        ))
    order = {p: f.position for p, f in files.items()}
    out.sort(key=lambda e: (order.get(e.file, 0), e.position))
    return out


def write_benchmark_entries(*, engine: Engine, benchmark_id: int, fmt: str, record_ids: set[str], out: Path) -> int:
    """Write the kept entries under ``out`` in the benchmark's own form; returns how many."""
    entries = stored_entries(engine=engine, benchmark_id=benchmark_id, record_ids=record_ids)
    module = FORMATS.get(fmt)
    writer = getattr(module, "write", None) if module is not None else None
    if writer is None:
        from rmgap_annot.formats.common import write_entries as writer
    writer(entries, out)
    return len(entries)
