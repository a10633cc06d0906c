"""The one item model every benchmark format maps to, and what the formats share.

A benchmark file holds *entries* (an RMB pair, a RewardBench row, ...); an
entry holds one or more *items* (what a person labels: a context and 2 to 8
candidate responses, one or more of them designated correct). Entries are
kept exactly as read, because the verified export must give each benchmark's
own evaluator a file it accepts unchanged; items are what the instrument
shows, labels and scores.

Problems are reported the way RMGAP's importer reports them
(``rmgap_annot.formats.rmgap``): every one, as ``FILE:LINE: field: message``
for JSONL, ``FILE:ENTRY N: ...`` for a JSON array file and ``FILE:ROW N:
...`` for Parquet, under the same limits (``rmgap_annot.limits``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Mapping, Optional, Sequence, Union

from rmgap_annot.formats.rmgap import MAX_ID_CHARS, BenchmarkFileError, LineError, json_lines, read_text
from rmgap_annot.limits import MAX_INPUT_BYTES, MAX_ITEM_BYTES, MAX_JSON_DEPTH, MAX_TEXT_CHARS, first_oversized_text, json_depth_exceeds

MIN_CANDIDATES = 2
# The annotate page gives each candidate a letter and a ranking slot; beyond
# eight a person can no longer hold the set in mind (the known benchmarks
# have at most seven).
MAX_CANDIDATES = 8
ROLES = ("system", "user", "assistant")
Unit = Literal["line", "entry", "row"]
Container = Literal["jsonl", "json", "parquet"]


@dataclass(frozen=True)
class FormatError(LineError):
    """A LineError whose position is a JSONL line, a JSON array entry or a Parquet row."""

    unit: Unit = "line"

    def __str__(self) -> str:
        where = str(self.line) if self.unit == "line" else f"{self.unit.upper()} {self.line}"
        return f"{self.file}:{where}: {self.field}: {self.message}"


class FormatFileError(BenchmarkFileError):
    """A benchmark file in one of the other formats is invalid; ``errors`` lists every problem."""


@dataclass(frozen=True)
class Candidate:
    key: str  # stable per format (RMB `chosen`/`reject`/`bon_best`/`loser_N`, ...): labels and scores name it
    text: str


@dataclass
class Item:
    """What one person labels once: a context and its candidates.

    ``hidden`` holds what must never reach an annotator's browser (generator
    names, rubrics, narratives, subset metadata); ``correct_keys`` too.
    ``group_id`` is the resampling unit for intervals: items sharing it are
    correlated (same conversation) and are drawn together.
    """

    format: str
    entry_id: str
    item_index: int
    candidates: list[Candidate]
    correct_keys: tuple[str, ...]
    category_path: tuple[str, ...]
    group_id: str
    prompt: str | None = None  # a single-turn context
    conversation: list[dict[str, str]] | None = None  # [{role, content}], the last turn the user's
    profile: list[dict[str, Any]] | None = None  # the user's past posts, each with a "text"
    hidden: dict[str, Any] = field(default_factory=dict)
    original: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the entry, verbatim

    @property
    def ref(self) -> tuple[str, int]:
        """How labels and scores address the item: (entry id, index within the entry)."""
        return (self.entry_id, self.item_index)

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.candidates]


@dataclass
class Entry:
    """One benchmark entry exactly as read, with the items made from it."""

    file: str  # relative to the folder read (or the file name), POSIX separators
    position: int  # line (JSONL), entry (JSON array) or row (Parquet), from 1
    unit: Unit
    container: Container
    entry_id: str
    original: dict[str, Any]
    raw: str | None = None  # the JSONL line as read: written back byte for byte
    schema: Any = None  # the Parquet file's Arrow schema: written back with the same types
    items: list[Item] = field(default_factory=list)


@dataclass
class Loaded:
    """What ``read`` returns: the entries in file order, and their items."""

    format: str
    path: Path
    entries: list[Entry]
    # sha256 over the files' names (relative) and bytes: an import is idempotent by it,
    # and a folder moved elsewhere keeps its hash.
    content_hash: str = ""

    @property
    def items(self) -> list[Item]:
        return [item for entry in self.entries for item in entry.items]


class Problems:
    """Collects every problem of one entry, each with its field path."""

    def __init__(self, file: str, position: int, unit: Unit):
        self.file, self.position, self.unit = file, position, unit
        self.errors: list[FormatError] = []

    def add(self, where: str, message: str) -> None:
        self.errors.append(FormatError(self.file, self.position, where or "(entry)", message, self.unit))

    def text(self, data: Mapping[str, Any], key: str, where: str | None = None) -> str | None:
        """A required, non-blank string field."""
        where = where or key
        if key not in data or data[key] is None:
            self.add(where, "is missing")
            return None
        return self.text_value(data[key], where)

    def text_value(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            self.add(where, f"must be a string, found {json_type(value)}")
            return None
        if not value.strip():
            self.add(where, "must not be empty or whitespace")
            return None
        return value

    def optional_text(self, data: Mapping[str, Any], key: str, where: str | None = None) -> str | None:
        if data.get(key) is None:
            return None
        if not isinstance(data[key], str):
            self.add(where or key, f"must be a string, found {json_type(data[key])}")
            return None
        return data[key]

    def obj(self, data: Mapping[str, Any], key: str, where: str | None = None) -> Mapping[str, Any] | None:
        where = where or key
        value = data.get(key)
        if value is None:
            self.add(where, "is missing")
            return None
        if not isinstance(value, dict):
            self.add(where, f"must be an object, found {json_type(value)}")
            return None
        return value

    def array(self, data: Mapping[str, Any], key: str, where: str | None = None) -> list[Any] | None:
        where = where or key
        value = data.get(key)
        if value is None:
            self.add(where, "is missing")
            return None
        if not isinstance(value, (list, tuple)):
            self.add(where, f"must be an array, found {json_type(value)}")
            return None
        return list(value)

    def conversation(self, value: Any, where: str, *, last: str | None = "user") -> list[dict[str, str]] | None:
        """A list of {role, content} messages; ``last`` is the role the final turn must have."""
        if value is None:
            self.add(where, "is missing")
            return None
        if not isinstance(value, (list, tuple)):
            self.add(where, f"must be an array of messages, found {json_type(value)}")
            return None
        if not value:
            self.add(where, "must hold at least one message")
            return None
        before = len(self.errors)
        messages: list[dict[str, str]] = []
        for i, msg in enumerate(value):
            at = f"{where}[{i}]"
            if not isinstance(msg, dict):
                self.add(at, f"must be an object with role and content, found {json_type(msg)}")
                continue
            role, content = msg.get("role"), self.text(msg, "content", f"{at}.content")
            if role not in ROLES:
                self.add(f"{at}.role", f"must be one of {', '.join(ROLES)}, found {role!r}")
            if content is not None and role in ROLES:
                messages.append({"role": role, "content": content})
        if len(self.errors) > before:
            return None
        if last is not None and messages[-1]["role"] != last:
            self.add(f"{where}[{len(messages) - 1}].role", f"the last turn must be the {last}'s, found {messages[-1]['role']!r}")
            return None
        return messages

    def candidates(self, candidates: Sequence[Candidate], where: str) -> None:
        """Between 2 and 8 candidates, no two with the same text (a person could not tell them apart)."""
        if not MIN_CANDIDATES <= len(candidates) <= MAX_CANDIDATES:
            self.add(where, f"holds {len(candidates)} candidate response(s); an item needs {MIN_CANDIDATES} to {MAX_CANDIDATES}")
        seen: dict[str, str] = {}
        for c in candidates:
            norm = same_text_key(c.text)
            if norm in seen:
                self.add(where, f"{c.key!r} has the same text as {seen[norm]!r}: a person cannot tell them apart")
            else:
                seen[norm] = c.key

    def item_size(self, item: Item, where: str) -> None:
        texts = [c.text for c in item.candidates] + [item.prompt or ""]
        texts += [m["content"] for m in item.conversation or []] + [p["text"] for p in item.profile or []]
        size = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
        if size > MAX_ITEM_BYTES:
            self.add(where, f"this item (context and responses) is {size:,} bytes, over the {MAX_ITEM_BYTES:,} the annotate page can show")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def normalise_text(text: str) -> str:
    """The same context, for grouping: Unicode NFC, whitespace runs collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def same_text_key(text: str) -> str:
    """What counts as the same response: Unicode NFC, ends trimmed.

    Inner whitespace is kept: in code an indentation is the whole difference.
    """
    return unicodedata.normalize("NFC", text).strip()


def context_group(format_name: str, context: Any) -> str:
    """A group id from the normalised context: entries over one conversation are one resampling unit.

    RMB's pairwise and BoN entries over the same conversation, RewardBench's
    subsets that reuse a prompt with different pairs: their outcomes are
    correlated, so intervals must draw them together.
    """
    if isinstance(context, str):
        norm: Any = normalise_text(context)
    else:
        norm = [[m["role"], normalise_text(m["content"])] for m in context]
    digest = hashlib.sha256(json.dumps(norm, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"{format_name}:{digest[:16]}"


def entry_id_of(value: Any) -> str | None:
    """An id field as text (RewardBench's ids are integers), or None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


# --- reading -------------------------------------------------------------

TABULAR_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


def container_of(path: Path) -> Container | None:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    return None


def input_files(path: str | Path, *, containers: tuple[Container, ...]) -> tuple[Path, list[tuple[Path, str]]]:
    """(root, [(file, name relative to root)]) for a file or every matching file under a folder."""
    path = Path(path)
    if path.is_file():
        if container_of(path) not in containers:
            wanted = ", ".join(sorted({"." + c for c in containers}))
            raise FormatFileError([FormatError(str(path), 0, "(file)", f"not a {wanted} file")])
        return path.parent, [(path, path.name)]
    if not path.is_dir():
        raise FormatFileError([FormatError(str(path), 0, "(file)", "no such file or folder")])
    found = sorted(p for p in path.rglob("*") if p.is_file() and container_of(p) in containers)
    if not found:
        wanted = ", ".join(sorted({"." + c for c in containers}))
        raise FormatFileError([FormatError(str(path), 0, "(folder)", f"holds no {wanted} file")])
    return path, [(p, p.relative_to(path).as_posix()) for p in found]


@dataclass
class Row:
    """One raw entry of a file with its position, before format validation."""

    file: str
    position: int
    unit: Unit
    container: Container
    data: dict[str, Any]
    raw: str | None = None
    schema: Any = None


def read_rows(path: Path, name: str, errors: list[FormatError]) -> list[Row]:
    """Every entry of one JSONL, JSON array or Parquet file; problems go to ``errors``.

    Rows carry ``name`` (relative to the folder read: the name written back);
    errors name ``path`` as given, so a person can open the file.
    """
    kind = container_of(path)
    reader = _jsonl_rows if kind == "jsonl" else _parquet_rows if kind == "parquet" else _json_array_rows
    rows = reader(path, str(path), errors)
    for row in rows:
        row.file = name
    return rows


def _jsonl_rows(path: Path, name: str, errors: list[FormatError]) -> list[Row]:
    text, _digest = read_text(path, error=FormatFileError)
    rows = []
    for line_no, raw, data, problem in json_lines(text):
        if problem:
            errors.append(FormatError(name, line_no, "(line)", problem, "line"))
        else:
            rows.append(Row(name, line_no, "line", "jsonl", data, raw=raw))
    if not rows and not errors:
        errors.append(FormatError(name, 1, "(file)", "no entries found", "line"))
    return rows


def _entry_problem(data: Any, raw: str | None = None) -> str | None:
    """The limits every parsed entry is held to (the same as a JSONL line's).

    ``raw`` is the entry's JSON text: NUL and lone surrogates can only come
    from escapes in it, so most entries skip those walks (Parquet strings are
    valid UTF-8 already, but may hold NUL).
    """
    if not isinstance(data, dict):
        return f"expected a JSON object, found {json_type(data)}"
    if (raw is None or "\\u0000" in raw or "\x00" in raw) and has_nul(data):
        return "contains a NUL character (\\u0000), which is not text"
    if raw is not None and "\\ud" in raw.lower():
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone UTF-16 surrogate escape (\\udXXX), which is not text"
    # A decoded string is never longer than the JSON text it came from.
    if (raw is None or len(raw) > MAX_TEXT_CHARS) and (where := first_oversized_text(data)) is not None:
        return f"{where}: text longer than {MAX_TEXT_CHARS:,} characters"
    return None


def _json_array_rows(path: Path, name: str, errors: list[FormatError]) -> list[Row]:
    """The entries of a file holding one JSON array, decoded one entry at a time.

    Decoding entry by entry (not ``json.load`` of the whole file) is what
    lets a syntax error, an unclosed array or an over-deep entry be reported
    with its entry number.
    """
    text, _digest = read_text(path, error=FormatFileError)
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")

    def err(n: int, where: str, message: str) -> None:
        errors.append(FormatError(name, n, where, message, "entry"))

    def at(pos: int) -> str:
        line = text.count("\n", 0, pos) + 1
        return f"line {line} column {pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"

    pos = ws.match(text, 0).end()
    if pos >= len(text) or text[pos] != "[":
        errors.append(FormatError(name, 0, "(file)", f"expected a JSON array (an RMB file is one array of entries), found {text[pos:pos + 20]!r} at {at(pos)}"))
        return []
    pos = ws.match(text, pos + 1).end()
    rows: list[Row] = []
    n = 0
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            n += 1
            if pos >= len(text):
                err(n, "(array)", "the JSON array is not closed: the file ends where an entry or ']' should be")
                return rows
            start = pos
            try:
                data, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                err(n, "(entry)", f"invalid JSON: {exc.msg} at {at(exc.pos)}")
                return rows
            except RecursionError:
                err(n, "(entry)", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
                return rows
            raw = text[start:pos]
            if json_depth_exceeds(raw):
                err(n, "(entry)", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            elif (problem := _entry_problem(data, raw)) is not None:
                err(n, "(entry)", problem)
            else:
                rows.append(Row(name, n, "entry", "json", data))
            pos = ws.match(text, pos).end()
            if pos >= len(text):
                err(n, "(array)", "the JSON array is not closed: the file ends after this entry without ']'")
                return rows
            if text[pos] == "]":
                pos += 1
                break
            if text[pos] != ",":
                err(n, "(array)", f"expected ',' or ']' after this entry, found {text[pos]!r} at {at(pos)}")
                return rows
            pos = ws.match(text, pos + 1).end()
    rest = ws.match(text, pos).end()
    if rest < len(text):
        errors.append(FormatError(name, 0, "(file)", f"text after the closing ']' at {at(rest)}"))
    if not rows and not errors:
        errors.append(FormatError(name, 0, "(file)", "the array holds no entries"))
    return rows


def _schema_depth(arrow_type: Any) -> int:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return 1 + max((_schema_depth(f.type) for f in arrow_type), default=0)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return 1 + _schema_depth(arrow_type.value_type)
    if pa.types.is_map(arrow_type):
        return 1 + max(_schema_depth(arrow_type.key_type), _schema_depth(arrow_type.item_type))
    return 0


def parquet_rows(path: Path, name: str) -> tuple[list[Row], list[FormatError]]:
    """A Parquet file's rows held to the import limits, and its problems (``FILE:0`` for the whole file).

    For tables other than benchmarks (labels): the same limits, the same ``FILE:ROW N`` positions.
    """
    errors: list[FormatError] = []
    return _parquet_rows(path, name, errors), errors


def _parquet_rows(path: Path, name: str, errors: list[FormatError]) -> list[Row]:
    """The rows of a Parquet file as JSON-like values, held to the JSONL limits.

    The decompressed size is known from the footer before any row is read,
    so a small file that inflates past the limit is refused for free.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def file_error(message: str) -> list[Row]:
        errors.append(FormatError(name, 0, "(file)", message))  # about the whole file: FILE:0, as for JSONL
        return []

    if path.stat().st_size > MAX_INPUT_BYTES:
        return file_error(f"larger than {MAX_INPUT_BYTES:,} bytes; split the file")
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        return file_error(f"not a readable Parquet file: {exc}")
    meta = pf.metadata
    inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if inflated > MAX_INPUT_BYTES:
        return file_error(f"{inflated:,} bytes decompressed, over {MAX_INPUT_BYTES:,}; split the file")
    schema = pf.schema_arrow
    depth = max((_schema_depth(f.type) for f in schema), default=0) + 1
    if depth > MAX_JSON_DEPTH:
        return file_error(f"columns nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        table = pf.read()
    except (pa.ArrowException, OSError) as exc:
        return file_error(f"not a readable Parquet file: {exc}")
    rows = []
    for i, data in enumerate(table.to_pylist(), start=1):
        problem = _entry_problem(data)
        if problem:
            errors.append(FormatError(name, i, "(row)", problem, "row"))
        else:
            rows.append(Row(name, i, "row", "parquet", data, schema=schema))
    if not rows and not errors:
        file_error("no rows found")
    return rows


def has_nul(data: Any) -> bool:
    if isinstance(data, str):
        return "\x00" in data
    if isinstance(data, dict):
        return any(has_nul(k) or has_nul(v) for k, v in data.items())
    if isinstance(data, (list, tuple)):
        return any(has_nul(v) for v in data)
    return False


def read_entries(
    path: str | Path,
    *,
    format_name: str,
    containers: tuple[Container, ...],
    build: Any,
) -> Loaded:
    """Read every file, validate every entry with ``build(row, problems) -> Entry | None``, raise with every problem.

    Entry ids must be unique across the files read: labels and scores address items by them.
    """
    root, files = input_files(path, containers=containers)
    errors: list[FormatError] = []
    entries: list[Entry] = []
    first_seen: dict[str, tuple[Path, int, Unit]] = {}
    for file, name in files:
        file_errors: list[FormatError] = []
        for row in read_rows(file, name, file_errors):
            problems = Problems(str(file), row.position, row.unit)
            entry = build(row, problems)
            file_errors.extend(problems.errors)
            if entry is None or problems.errors:
                continue
            if len(entry.entry_id) > MAX_ID_CHARS:  # ids will be indexed: PostgreSQL refuses long index entries
                problems.add("(id)", f"entry id longer than {MAX_ID_CHARS} characters")
                file_errors.extend(problems.errors)
                continue
            if entry.entry_id in first_seen:
                f, p, u = first_seen[entry.entry_id]
                problems.add("(id)", f"duplicate entry id {entry.entry_id!r} (first in {f}, {u} {p})")
                file_errors.extend(problems.errors)
                continue
            first_seen[entry.entry_id] = (file, row.position, row.unit)
            entries.append(entry)
        errors.extend(sorted(file_errors, key=lambda e: e.line))  # in file order (stable within an entry)
    if errors:
        raise FormatFileError(errors)
    return Loaded(format=format_name, path=Path(path), entries=entries, content_hash=files_hash(
        # One file: its bytes alone, as RMGAP's import (a renamed copy is the same benchmark).
        [(f, "") for f, _ in files] if Path(path).is_file() else files))


def files_hash(files: Sequence[tuple[Path, str]]) -> str:
    """sha256 over each file's relative name and the sha256 of its bytes, in name order."""
    outer = hashlib.sha256()
    for file, name in sorted(files, key=lambda f: f[1]):
        inner = hashlib.sha256()
        with open(file, "rb") as fh:
            while block := fh.read(1 << 20):
                inner.update(block)
        outer.update(f"{name}\0{inner.hexdigest()}\n".encode("utf-8"))
    return outer.hexdigest()


def entry_from(row: Row, entry_id: str) -> Entry:
    return Entry(
        file=row.file, position=row.position, unit=row.unit, container=row.container, entry_id=entry_id,
        original=row.data, raw=row.raw, schema=row.schema,
    )


def single_item_entry(problems: "Problems", row: Row, entry_id: str, item: Item) -> Optional[Entry]:
    """The entry holding its one item, once the item passes the size check (None when anything was wrong)."""
    problems.item_size(item, "(entry)")
    if problems.errors:
        return None
    entry = entry_from(row, entry_id)
    entry.items.append(item)
    return entry


# --- writing -------------------------------------------------------------


def write_entries(entries: Iterable[Entry], out: str | Path) -> list[Path]:
    """Write kept entries under folder ``out``, each file under the name it was read from.

    JSONL lines are written byte for byte as read; Parquet is written with
    the schema it was read with; a JSON array file becomes an array of its
    kept entries. Files with no kept entry are not written. Returns the
    files written.
    """
    out = Path(out)
    by_file: dict[str, list[Entry]] = {}
    for entry in entries:
        by_file.setdefault(entry.file, []).append(entry)
    written = []
    for name, kept in by_file.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        kind = kept[0].container
        if kind == "jsonl":
            opener = gzip.open if name.lower().endswith(".gz") else open
            with opener(target, "wt", encoding="utf-8", newline="\n") as fh:  # type: ignore[operator]
                for entry in kept:
                    fh.write(entry.raw if entry.raw is not None else json.dumps(entry.original, ensure_ascii=False))
                    fh.write("\n")
        elif kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([e.original for e in kept], schema=kept[0].schema)
            pq.write_table(table, target)
        else:
            with open(target, "w", encoding="utf-8", newline="\n") as fh:
                json.dump([e.original for e in kept], fh, ensure_ascii=False, indent=2)
                fh.write("\n")
        written.append(target)
    return written


# --- metrics -------------------------------------------------------------

ItemScores = Mapping[str, float]  # candidate key -> score
Scores = Mapping[tuple[str, int], ItemScores]  # item ref -> that item's candidate scores


@dataclass(frozen=True)
class Rate:
    """A proportion over ``n`` items, or None with the reason it is undefined."""

    value: float | None
    n: int
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n": self.n, "reason": self.reason}


def rate(total: float, n: int, what: str = "scored items") -> Rate:
    if n == 0:
        return Rate(None, 0, f"no {what}")
    return Rate(total / n, n)


def mean_of(rates: Iterable[Rate], what: str) -> Rate:
    """Unweighted mean of the defined rates (each benchmark's 'averaged up the tree')."""
    rates = list(rates)
    defined = [r for r in rates if r.value is not None]
    if not defined:
        return Rate(None, 0, f"no {what} with a value")
    return Rate(sum(r.value for r in defined) / len(defined), sum(r.n for r in defined))


def scored(items: Iterable[Item], scores: Scores) -> Iterator[tuple[Item, dict[str, float]]]:
    """The items that have scores, each with its scores checked against its candidate keys.

    An item with no scores is left out (a person may not have labelled it
    yet); an item with scores for some candidates only, or a NaN, is a
    caller's bug and raises ValueError.
    """
    for item in items:
        given = scores.get(item.ref)
        if given is None:
            continue
        if set(given) != set(item.keys):
            raise ValueError(f"item {item.ref}: scores for {sorted(given)}, candidates are {sorted(item.keys)}")
        values = {k: float(v) for k, v in given.items()}
        if any(math.isnan(v) for v in values.values()):
            raise ValueError(f"item {item.ref}: a score is NaN")
        yield item, values


def beats_all(scores: Mapping[str, float], winner: str) -> bool:
    """Strict: the winner's score is above every other candidate's (a tie is a loss)."""
    return all(scores[winner] > v for k, v in scores.items() if k != winner)


TIE_GOOD = "tie_good"  # "Both equally good": a pairwise item's tie option
TIE_BAD = "tie_bad"  # "Both bad"
TIE_CHOICES = (TIE_GOOD, TIE_BAD)
Pick = Union[str, None, Sequence[str]]  # a key, a tie choice, None (no pick), or the values tied for the plurality


class PickScores(dict):
    """Scores made from a person's pick (``pick_scores``): their order means something, their differences do not.

    A rule that needs score margins (RewardBench 2's Ties composite) tells
    these apart from a reward model's scores and says why it has no value.
    """


def pick_scores(item: Item, pick: Pick) -> dict[str, float]:
    """Scores that make a person's (or the plurality's) pick go through a benchmark's model rule.

    Why scores: each benchmark's tie rule is written for equal scores, so a
    human tie goes through the very rule a reward model's tie does.

    - a candidate key: it scores 1, the others 0;
    - ``tie_good`` / ``tie_bad`` ("Both equally good" / "Both bad") and
      ``None`` (no pick: every label was "Can't decide"): every candidate
      alike, a tie: a loss for RMB, RewardBench and pairs (strict ``>``),
      counted apart for Personalized RewardBench, 1/N credit for RewardBench 2;
    - a sequence (a plurality tied between several values): the tied keys
      score 1, the others 0, so RewardBench 2 gives 1/k credit when the
      correct one is among the k and the strict rules count a loss; a
      sequence holding a tie choice is a tie of every candidate.
    """
    if pick is None or pick in TIE_CHOICES:
        return PickScores({key: 0.0 for key in item.keys})
    tied = [pick] if isinstance(pick, str) else list(pick)
    for value in tied:
        if value not in item.keys and value not in TIE_CHOICES:
            raise ValueError(f"item {item.ref}: {value!r} is not one of its candidates {item.keys} nor a tie choice")
    if any(value in TIE_CHOICES for value in tied):
        return PickScores({key: 0.0 for key in item.keys})
    return PickScores({key: float(key in tied) for key in item.keys})


def plurality_pick(choices: Iterable[str | None]) -> Pick:
    """The crowd's answer on one item: the most chosen value; "Can't decide" (None) is not a vote.

    A tie for first place is returned as the sorted tuple of the tied
    values (``pick_scores`` turns it into the benchmark's own tie rule);
    no vote at all gives None.
    """
    votes = Counter(c for c in choices if c is not None)
    if not votes:
        return None
    top = max(votes.values())
    best = sorted(v for v, n in votes.items() if n == top)
    return best[0] if len(best) == 1 else tuple(best)


def plurality_picks(labels: Iterable[tuple[tuple[str, int], str | None]]) -> dict[tuple[str, int], Pick]:
    """Per item ref, the plurality pick of its labels (``(ref, choice)`` pairs)."""
    by_item: dict[tuple[str, int], list[str | None]] = {}
    for ref, choice in labels:
        by_item.setdefault(tuple(ref), []).append(choice)
    return {ref: plurality_pick(choices) for ref, choices in by_item.items()}


def pick_kind(pick: Pick) -> str:
    """How an item's aggregated pick reads in the report: decided, tie_good, tie_bad, split or no_pick."""
    if pick is None:
        return "no_pick"
    if isinstance(pick, str):
        return pick if pick in TIE_CHOICES else "decided"
    return "split"


def ranking_scores(item: Item, ranking: Sequence[str]) -> dict[str, float]:
    """Scores from a full ranking, best first: the first gets N-1, the last 0."""
    if sorted(ranking) != sorted(item.keys):
        raise ValueError(f"item {item.ref}: ranking {list(ranking)} is not a permutation of {item.keys}")
    n = len(ranking)
    return {key: float(n - 1 - i) for i, key in enumerate(ranking)}


def category_counts(items: Iterable[Item]) -> Counter:
    return Counter("/".join(item.category_path) or "(none)" for item in items)
