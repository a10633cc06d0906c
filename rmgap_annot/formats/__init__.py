"""Every benchmark format: read and validate, write back verbatim, each benchmark's metric rules.

One module per format, all but RMGAP mapping to the item model of
``common``: ``rmgap`` (RMGAP's JSONL, twelve items per record, imported
by its own validator so its export stays byte for byte), ``rmb``, ``prb``,
``rewardbench``, ``rewardbench2`` and ``pairs``. ``store`` puts the other
formats into the database and gives their entries back for the export;
``detect_format`` tells them apart by content when ``--format`` is left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from rmgap_annot.formats import pairs, prb, rewardbench, rewardbench2, rmb
from rmgap_annot.formats.common import FormatError, FormatFileError, Loaded, category_counts, container_of

FORMATS: dict[str, ModuleType] = {
    "rmb": rmb, "prb": prb, "rewardbench": rewardbench, "rewardbench2": rewardbench2, "pairs": pairs,
}
FORMAT_NAMES = ("rmgap", *FORMATS)
_PEEK_BYTES = 1 << 16

_EXPECTED = (
    "rmb (pair_uid or bon_uid), rmgap (responses and prompt_groups), prb (question and profile), "
    "rewardbench2 (num_correct, or chosen as a list of texts), rewardbench (subset with chosen_model or rejected_model), "
    "pairs (chosen and rejected)"
)


def _detection_error(path: Path, message: str) -> FormatFileError:
    return FormatFileError([FormatError(str(path), 0, "(format)", f"{message}; pass --format ({', '.join(FORMAT_NAMES)})")])


def classify(columns: set[str], chosen: Any = None) -> str | None:
    """The format whose telltale fields ``columns`` holds; ``chosen`` is a sample value of the chosen column, if known."""
    if {"pair_uid", "bon_uid"} & columns:
        return "rmb"
    if {"responses", "prompt_groups"} <= columns:
        return "rmgap"
    if {"question", "profile"} <= columns:
        return "prb"
    chosen_texts = isinstance(chosen, list) and all(isinstance(c, str) for c in chosen) and bool(chosen)
    if "num_correct" in columns or (chosen_texts and "rejected" in columns):
        return "rewardbench2"
    if "subset" in columns and {"chosen_model", "rejected_model"} & columns:
        return "rewardbench"
    if {"chosen", "rejected"} <= columns:
        return "pairs"
    return None


def _sample_of(path: Path) -> tuple[set[str], Any]:
    """The first entry's field names and its ``chosen`` value (None when only the schema says)."""
    kind = container_of(path)
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise _detection_error(path, f"not a readable Parquet file ({exc})") from exc
        chosen = None
        if "chosen" in schema.names:
            t = schema.field("chosen").type
            if pa.types.is_list(t) or pa.types.is_large_list(t):
                chosen = [""] if pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type) else [{}]
        return set(schema.names), chosen
    if kind == "jsonl":
        from rmgap_annot.formats.rmgap import json_lines, read_text

        text, _ = read_text(path, error=FormatFileError)
        for line_no, _raw, data, problem in json_lines(text):
            if problem:
                raise _detection_error(path, f"line {line_no} is not a readable entry ({problem})")
            return set(data), data.get("chosen")
        raise _detection_error(path, "the file holds no entries")
    with open(path, "rb") as fh:
        head = fh.read(_PEEK_BYTES).decode("utf-8", "replace")
    if not head.lstrip().startswith("["):
        raise _detection_error(path, "a .json file here must be an RMB array of entries, and this one does not start with '['")
    found = {k for k in ("pair_uid", "bon_uid") if f'"{k}"' in head}
    return found, None


def detect_format(path: str | Path) -> str:
    """The format of a file or folder, decided from its content; raises FormatFileError explaining why not."""
    path = Path(path)
    if path.is_dir():
        if any(p.is_dir() and p.name in rmb.SETS for p in [path, *path.rglob("*")]):
            return "rmb"
        files = sorted(p for p in path.rglob("*") if p.is_file() and container_of(p))
        if not files:
            raise _detection_error(path, "the folder holds no .json, .jsonl or .parquet file")
        kinds = {container_of(p) for p in files}
        if "json" in kinds:
            return "rmb"
        path = files[0]
    elif not path.is_file():
        raise _detection_error(path, "no such file or folder")
    if container_of(path) is None:
        raise _detection_error(path, "the name ends in none of .json, .jsonl, .jsonl.gz, .parquet")
    columns, chosen = _sample_of(path)
    found = classify(columns, chosen)
    if found is None:
        shown = ", ".join(sorted(columns)[:20]) or "none"
        raise _detection_error(path, f"its first entry's fields ({shown}) match no known format; expected {_EXPECTED}")
    return found


def read(path: str | Path, format: str | None = None) -> Loaded:  # noqa: A002 - the CLI's word
    """Read and validate ``path`` in ``format`` (detected when None). RMGAP is not read here."""
    name = format or detect_format(path)
    if name not in FORMATS:
        raise _detection_error(Path(path), f"{name!r} is not read by this package (rmgap goes through import-benchmark)")
    return FORMATS[name].read(path)


@dataclass
class Summary:
    """What ``formats check`` prints: enough to see a file was understood as intended."""

    format: str
    files: int
    entries: int
    items: int
    groups: int
    candidates: dict[int, int] = field(default_factory=dict)  # candidates per item -> items
    categories: dict[str, int] = field(default_factory=dict)  # category path -> items


def summarise(loaded: Loaded) -> Summary:
    items = loaded.items
    return Summary(
        format=loaded.format,
        files=len({e.file for e in loaded.entries}),
        entries=len(loaded.entries),
        items=len(items),
        groups=len({i.group_id for i in items}),
        candidates=dict(sorted(Counter(len(i.candidates) for i in items).items())),
        categories=dict(sorted(category_counts(items).items())),
    )


def check(path: str | Path, format: str | None = None) -> Summary:  # noqa: A002
    """Validate a file or folder in any supported format (RMGAP included) and summarise it."""
    name = format or detect_format(path)
    if name == "rmgap":
        from rmgap_annot.formats.rmgap import ITEMS_PER_RECORD, N_RESPONSES, parse_file

        parsed = parse_file(path)
        domains = Counter(r.data["domain"] for r in parsed.records)
        n = len(parsed.records)
        return Summary("rmgap", 1, n, n * ITEMS_PER_RECORD, n, {N_RESPONSES: n * ITEMS_PER_RECORD},
                       {d: c * ITEMS_PER_RECORD for d, c in sorted(domains.items())})
    return summarise(read(path, name))
