"""Read, validate, import and write RMGAP JSONL.

Import and export share this module so that what goes in is what comes out:
each record's original line is stored verbatim and written back unchanged.

Validation is strict and complete: every line is checked, every problem is
reported as ``FILE:LINE: field: message``, and nothing is written unless the
whole file is valid (one transaction, so the database is unchanged on error).
Its bounded reader (``read_text``, ``json_lines``, ``LineError``) is the one
every other format, check file and labels file goes through.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from typing_extensions import Annotated

from rmgap_annot.db import session_scope
from rmgap_annot.models import Benchmark, Item, Record, Response
from rmgap_annot.limits import (
    MAX_INPUT_BYTES, MAX_ITEM_BYTES, MAX_JSON_DEPTH, MAX_LINE_CHARS, MAX_TEXT_CHARS, first_oversized_text, json_depth_exceeds,
)
from rmgap_annot.settings import DOMAINS

N_RESPONSES = 4
N_GROUPS = 4
N_PROMPTS = 3
ITEMS_PER_RECORD = N_GROUPS * N_PROMPTS
MAX_ERRORS_SHOWN = 50

NonBlank = Annotated[str, StringConstraints(strict=True, min_length=1)]
# Ids and keys are indexed: PostgreSQL refuses index entries over ~2.7 kB, so a
# longer one must be a line error, not a database error (SQLite has no limit).
MAX_ID_CHARS = 500
Identifier = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_CHARS)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    return value


class _ResponseIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: Identifier
    text: NonBlank

    _check_text = field_validator("key", "text")(_not_blank)


class _PromptIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["base", "rewrite"]
    text: NonBlank

    _check_text = field_validator("text")(_not_blank)


class _GroupIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    group: int
    winner: Identifier
    prompts: list[_PromptIn]

    @field_validator("group", mode="before")
    @classmethod
    def _int_group(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if not -(2**63) <= value < 2**63:  # the database stores 64-bit integers
            raise ValueError("is too large")
        return value

    @field_validator("prompts")
    @classmethod
    def _three_prompts(cls, value: list) -> list:
        if len(value) != N_PROMPTS:
            raise ValueError(f"must hold exactly {N_PROMPTS} prompts, found {len(value)}")
        return value


class RecordIn(BaseModel):
    """One line of RMGAP's test.jsonl; unknown extra fields are kept."""

    model_config = ConfigDict(extra="allow")
    id: Identifier
    domain: Literal["Chat", "Writing", "Reasoning", "Safety"]
    source: str | None = None
    models: dict[str, Any] | None = None
    responses: list[_ResponseIn]
    prompt_groups: list[_GroupIn]
    style_assignments: dict[str, Any] = {}

    @field_validator("responses")
    @classmethod
    def _four_responses(cls, value: list) -> list:
        if len(value) != N_RESPONSES:
            raise ValueError(f"must hold exactly {N_RESPONSES} responses, found {len(value)}")
        return value

    @field_validator("prompt_groups")
    @classmethod
    def _four_groups(cls, value: list) -> list:
        if len(value) != N_GROUPS:
            raise ValueError(f"must hold exactly {N_GROUPS} groups, found {len(value)}")
        return value


@dataclass(frozen=True)
class LineError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class InputFileError(Exception):
    """An input file (benchmark, labels, scores) is invalid; ``errors`` lists every problem."""

    def __init__(self, errors: list[LineError]):
        self.errors = errors
        super().__init__(format_errors(errors))


class BenchmarkFileError(InputFileError):
    """The benchmark file is invalid; nothing was imported."""


def format_errors(errors: list[LineError], limit: int = MAX_ERRORS_SHOWN) -> str:
    lines = [str(e) for e in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more errors ({len(errors)} in all)")
    return "\n".join(lines)


def _loc_to_field(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(record)"


@dataclass
class ParsedRecord:
    line_no: int
    raw: str
    data: dict[str, Any]


@dataclass
class ParsedFile:
    path: Path
    content_hash: str
    records: list[ParsedRecord] = field(default_factory=list)


def _read_bounded(path: Path, *, error: type[InputFileError]) -> bytes | bytearray:
    """The file's bytes, inflated if gzip, refused once they pass MAX_INPUT_BYTES.

    A .gz is read block by block, so a small file that inflates to gigabytes
    costs at most the limit in memory, never the inflated size.
    """
    name = str(path)
    too_big = LineError(name, 0, "(file)", f"larger than {MAX_INPUT_BYTES:,} bytes (decompressed); split the file")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != b"\x1f\x8b":
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise error([too_big])
        return path.read_bytes()
    # Blocks are kept in a list and joined once, at the end: a growing bytearray
    # is reallocated (and for a moment held twice) as it grows, which made the
    # peak of a refused bomb vary between 0.3 and 0.9 GiB from run to run.
    blocks: list[bytes] = []
    size = 0
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                blocks.append(block)
                size += len(block)
                if size > MAX_INPUT_BYTES:
                    blocks.clear()
                    raise error([too_big])
    except (OSError, EOFError, zlib.error) as exc:
        raise error([LineError(name, 1, "(file)", f"not a readable gzip file: {exc}")]) from exc
    out = b"".join(blocks)
    blocks.clear()
    return out


def read_text(path: Path, *, error: type[InputFileError] = BenchmarkFileError) -> tuple[str, str]:
    """Decoded text of a .jsonl / .jsonl.gz file and its sha256 (BOM removed).

    Raises ``error`` naming the line of the first undecodable byte, or when
    the (decompressed) file is over MAX_INPUT_BYTES.
    """
    raw = _read_bounded(path, error=error)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(
            [LineError(str(path), line, "(line)", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})")]
        ) from exc
    return text, hashlib.sha256(raw).hexdigest()


def validate_record(data: Any, *, file: str, line: int) -> list[LineError]:
    """Every problem with one parsed line, as LineErrors (empty when valid)."""
    if not isinstance(data, dict):
        return [LineError(file, line, "(line)", f"expected a JSON object, found {type(data).__name__}")]
    try:
        record = RecordIn.model_validate(data)
    except ValidationError as exc:
        return [LineError(file, line, _loc_to_field(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
    errors: list[LineError] = []
    keys = [r.key for r in record.responses]
    dup = sorted(k for k, n in Counter(keys).items() if n > 1)
    if dup:
        errors.append(LineError(file, line, "responses", f"duplicate response keys: {', '.join(dup)}"))
    key_set = set(keys)
    for gi, group in enumerate(record.prompt_groups):
        if group.winner not in key_set:
            errors.append(
                LineError(file, line, f"prompt_groups[{gi}].winner", f"{group.winner!r} is not a response key (keys: {', '.join(keys)})")
            )
    group_ids = [g.group for g in record.prompt_groups]
    dup_groups = sorted(g for g, n in Counter(group_ids).items() if n > 1)
    if dup_groups:
        errors.append(LineError(file, line, "prompt_groups", f"duplicate group numbers: {dup_groups}"))
    response_bytes = sum(len(r.text.encode("utf-8", "surrogatepass")) for r in record.responses)
    for gi, group in enumerate(record.prompt_groups):
        for pi, prompt in enumerate(group.prompts):
            size = response_bytes + len(prompt.text.encode("utf-8", "surrogatepass"))
            if size > MAX_ITEM_BYTES:
                errors.append(LineError(file, line, f"prompt_groups[{gi}].prompts[{pi}]", (
                    f"this item (prompt and responses) is {size:,} bytes, over the {MAX_ITEM_BYTES:,} the annotate page can show")))
    winners = [g.winner for g in record.prompt_groups]
    if not errors and sorted(winners) != sorted(keys):
        errors.append(
            LineError(file, line, "prompt_groups", f"each response must win exactly one group; winners are {', '.join(winners)}")
        )
    return errors


def _has_lone_surrogate(data: Any) -> bool:
    """JSON may escape half a UTF-16 pair; such a string cannot be stored as UTF-8."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _has_nul(data: Any) -> bool:
    if isinstance(data, str):
        return "\x00" in data
    if isinstance(data, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_has_nul(v) for v in data)
    return False


_NON_BLANK_LINE = re.compile(r"^[ \t\r\f\v]*\S[^\n]*", re.M)


def json_lines(text: str) -> Iterator[tuple[int, str, Any, str | None]]:
    """(line number, raw line, JSON object, error) for each non-blank line.

    Shared by every JSONL importer so they agree on what a readable line is:
    a JSON object within the limits (line length, nesting depth, text length:
    see ``rmgap_annot.limits``) holding only text that every backend can
    store (no lone UTF-16 surrogates, no NUL, which PostgreSQL refuses).
    ``error`` is None for a good line; otherwise the object is None and
    ``error`` says why.
    """
    line_no, counted_to = 1, 0
    # Only lines with something on them, found at C speed: a file of millions
    # of blank lines (a gzip bomb's favourite) never becomes a list of them.
    for match in _NON_BLANK_LINE.finditer(text):
        line_no += text.count("\n", counted_to, match.start())
        counted_to = match.start()
        raw = match.group().rstrip("\r")
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_CHARS:
            yield line_no, "", None, f"line longer than {MAX_LINE_CHARS:,} characters"
            continue
        if json_depth_exceeds(raw):
            yield line_no, "", None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield line_no, raw, None, f"invalid JSON: {exc.msg} at column {exc.colno}"
            continue
        except RecursionError:  # the depth scan should have caught it; never a traceback
            yield line_no, "", None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            continue
        if not isinstance(data, dict):
            yield line_no, raw, None, f"expected a JSON object, found {type(data).__name__}"
        elif "\\ud" in raw.lower() and _has_lone_surrogate(data):
            yield line_no, raw, None, "contains a lone UTF-16 surrogate escape (\\udXXX), which is not text"
        elif ("\\u0000" in raw or "\x00" in raw) and _has_nul(data):
            yield line_no, raw, None, "contains a NUL character (\\u0000), which is not text"
        elif (where := first_oversized_text(data)) is not None:
            yield line_no, raw, None, f"{where}: text longer than {MAX_TEXT_CHARS:,} characters"
        else:
            yield line_no, raw, data, None


def parse_file(path: str | Path) -> ParsedFile:
    """Parse and validate a whole file; raise BenchmarkFileError with every problem."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise BenchmarkFileError([LineError(name, 0, "(file)", "no such file")])
    text, digest = read_text(path)
    parsed = ParsedFile(path=path, content_hash=digest)
    errors: list[LineError] = []
    seen_ids: dict[str, int] = {}
    for line_no, raw, data, problem in json_lines(text):
        if problem:
            errors.append(LineError(name, line_no, "(line)", problem))
            continue
        line_errors = validate_record(data, file=name, line=line_no)
        if line_errors:
            errors.extend(line_errors)
            continue
        rid = data["id"]
        if rid in seen_ids:
            errors.append(LineError(name, line_no, "id", f"duplicate record id {rid!r} (first on line {seen_ids[rid]})"))
            continue
        seen_ids[rid] = line_no
        parsed.records.append(ParsedRecord(line_no=line_no, raw=raw, data=data))
    if not errors and not parsed.records:
        errors.append(LineError(name, 1, "(file)", "no records found"))
    if errors:
        raise BenchmarkFileError(errors)
    return parsed


@dataclass
class ImportResult:
    benchmark_id: int
    name: str
    created: bool  # False: the same content was already imported
    counts: dict[str, dict[str, int]]  # domain -> {"records": n, "items": n}


def _domain_counts(domains: Iterable[str]) -> dict[str, dict[str, int]]:
    counter = Counter(domains)
    return {d: {"records": counter.get(d, 0), "items": counter.get(d, 0) * ITEMS_PER_RECORD} for d in DOMAINS}


def import_benchmark(*, engine: Engine, path: str | Path, name: str | None = None) -> ImportResult:
    """Validate then import a file in one transaction.

    The same content (by hash) imported twice is a no-op that returns the
    existing benchmark; a different file becomes a new benchmark.
    """
    parsed = parse_file(path)
    path = Path(path)
    default_name = path.name.removesuffix(".gz").removesuffix(".jsonl")
    with session_scope(engine, write=True) as session:
        existing = session.execute(select(Benchmark).where(Benchmark.file_hash == parsed.content_hash)).scalars().first()
        if existing is not None:
            domains = session.execute(select(Record.domain).where(Record.benchmark_id == existing.id)).scalars().all()
            return ImportResult(existing.id, existing.name, False, _domain_counts(domains))
        bench_name = name or default_name
        if session.execute(select(Benchmark.id).where(Benchmark.name == bench_name)).first() is not None:
            if name:
                raise BenchmarkFileError(
                    [LineError(str(path), 0, "--name", f"a different benchmark is already called {bench_name!r}")]
                )
            bench_name = f"{bench_name}-{parsed.content_hash[:8]}"
        bench = Benchmark(name=bench_name, file_hash=parsed.content_hash, source_path=str(path), n_records=len(parsed.records))
        session.add(bench)
        session.flush()
        _insert_records(session, bench.id, parsed.records)
        create_first_study(session, bench.id)
        return ImportResult(bench.id, bench.name, True, _domain_counts(r.data["domain"] for r in parsed.records))


def create_first_study(session, benchmark_id: int) -> None:  # noqa: ANN001
    """Every benchmark arrives with its study (named after it), in the import's own transaction."""
    from rmgap_annot.assignment import _study_for_update

    _study_for_update(session, benchmark_id)


def _insert_records(session, benchmark_id: int, records: list[ParsedRecord]) -> None:  # noqa: ANN001
    """Bulk inserts (executemany): the full benchmark is ~20k rows."""
    session.execute(
        insert(Record),
        [
            {
                "benchmark_id": benchmark_id,
                "record_id": r.data["id"],
                "line_no": r.line_no,
                "domain": r.data["domain"],
                "source": r.data.get("source"),
                "style_json": json.dumps(r.data.get("style_assignments", {}), ensure_ascii=False),
                "raw_json": r.raw,
            }
            for r in records
        ],
    )
    pk_by_id = dict(session.execute(select(Record.record_id, Record.id).where(Record.benchmark_id == benchmark_id)).all())
    responses, items = [], []
    for r in records:
        pk = pk_by_id[r.data["id"]]
        for pos, resp in enumerate(r.data["responses"]):
            responses.append({"record_pk": pk, "key": resp["key"], "position": pos, "text": resp["text"]})
        for gi, group in enumerate(r.data["prompt_groups"]):
            for pi, prompt in enumerate(group["prompts"]):
                items.append(
                    {
                        "benchmark_id": benchmark_id,
                        "record_pk": pk,
                        "domain": r.data["domain"],
                        "group": group["group"],
                        "group_index": gi,
                        "prompt_index": pi,
                        "role": prompt["role"],
                        "text": prompt["text"],
                        "winner_key": group["winner"],
                        # The twelve items of a record share its four responses: the record is
                        # their resampling unit, as another format's conversation is.
                        "category_path": r.data["domain"],
                        "group_key": r.data["id"],
                    }
                )
    session.execute(insert(Response), responses)
    session.execute(insert(Item), items)


def write_records(path: str | Path, raw_lines: Iterable[str]) -> int:
    """Write records as JSONL, each line exactly as it was imported."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for raw in raw_lines:
            fh.write(raw)
            fh.write("\n")
            n += 1
    return n


def sample_path() -> Path:
    """The bundled sample benchmark (shipped inside the package)."""
    return Path(__file__).parents[1] / "data" / "sample.jsonl"
