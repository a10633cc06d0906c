"""Scores computed elsewhere (a vLLM cluster, another lab) in and out.

One JSON object per line, the same shape both ways:
``{"record_id": str, "group": int, "prompt_index": int, "scores": {response_key: number|null}}`` for RMGAP;
another format names the entry by its own id column (RMB ``pair_uid`` / ``bon_uid``, else ``id``; or the
generic ``entry_id``) and ``item_index``: ``{"pair_uid": str, "item_index": 0, "scores": {"chosen": .., "reject": ..}}``
(null is a NaN score: skipped by the metrics, as RMGAP skips it).
Import is all or nothing: every line is checked first and every problem is
reported as ``FILE:LINE: field: message``, like a benchmark import.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from rmgap_annot.formats.rmgap import BenchmarkFileError, LineError, json_lines, read_text
from rmgap_annot.db import session_scope
from rmgap_annot.formats.store import ENTRY_ID, ITEM_INDEX
from rmgap_annot.item_refs import item_index
from rmgap_annot.models import Item, Record, Response, Score, Scorer
from rmgap_annot.tempfiles import clean_stale, temp_path

IMPORTED_FAMILY = "imported"


@dataclass
class ScoresImportResult:
    scorer_id: int
    name: str
    n_items: int
    created: bool  # False: this exact file was already imported under this name


def _number(value) -> Optional[float]:  # noqa: ANN001
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number or null, found {type(value).__name__}")
    value = float(value)
    if math.isinf(value):
        raise ValueError("must be finite")
    return None if math.isnan(value) else value


def import_scores(*, engine: Engine, benchmark_id: int, path: str | Path, name: Optional[str] = None, replace: bool = False) -> ScoresImportResult:
    """Validate a whole score file, then store it as scorer ``name`` in one transaction."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise BenchmarkFileError([LineError(file, 0, "(file)", "no such file")])
    text, digest = read_text(path)
    name = name or path.name.removesuffix(".gz").removesuffix(".jsonl")
    index = item_index(engine=engine, benchmark_id=benchmark_id)
    keys = index.keys
    errors: list[LineError] = []
    rows: list[dict] = []
    seen: dict[int, int] = {}
    for line_no, _raw, data, problem in json_lines(text):
        if problem:
            errors.append(LineError(file, line_no, "(line)", problem))
            continue
        if index.is_rmgap:
            missing = [f for f in ("record_id", "group", "prompt_index", "scores") if f not in data]
        else:
            missing = [f for f in ("scores",) if f not in data]
        if missing:
            errors.extend(LineError(file, line_no, f, "required field missing") for f in missing)
            continue
        bad = False
        if index.is_rmgap:
            for f in ("group", "prompt_index"):
                if isinstance(data[f], bool) or not isinstance(data[f], int):
                    errors.append(LineError(file, line_no, f, "must be an integer"))
                    bad = True
            if not isinstance(data["record_id"], str):
                errors.append(LineError(file, line_no, "record_id", "must be a string"))
                bad = True
        if not isinstance(data["scores"], dict):
            errors.append(LineError(file, line_no, "scores", "must be an object {response_key: number}"))
            bad = True
        if bad:
            continue
        if index.is_rmgap:
            found = index.items.get((data["record_id"], data["group"], data["prompt_index"]))
            if found is None:
                errors.append(LineError(file, line_no, "record_id", (
                    f"no item ({data['record_id']!r}, group {data['group']}, prompt_index {data['prompt_index']}) in this benchmark")))
                continue
        else:
            line_errors: list[LineError] = []
            found = index.resolve(data, lambda f, m: line_errors.append(LineError(file, line_no, f, m)))
            if found is None:
                errors.extend(line_errors)
                continue
        item_id, pk = found
        if item_id in seen:
            errors.append(LineError(file, line_no, "(line)", f"duplicate item (first on line {seen[item_id]})"))
            continue
        seen[item_id] = line_no
        expected = keys.get(pk, set())
        given = set(data["scores"])
        if given != expected:
            parts = []
            if expected - given:
                parts.append(f"missing {', '.join(sorted(expected - given))}")
            if given - expected:
                parts.append(f"unknown {', '.join(sorted(given - expected))}")
            errors.append(LineError(file, line_no, "scores", f"keys must be the record's response keys: {'; '.join(parts)}"))
            continue
        for key, value in data["scores"].items():
            try:
                rows.append({"item_id": item_id, "response_key": key, "value": _number(value), "truncated": False})
            except ValueError as exc:
                errors.append(LineError(file, line_no, f"scores.{key}", str(exc)))
    if not errors and not rows:
        errors.append(LineError(file, 1, "(file)", "no score rows found"))
    if errors:
        raise BenchmarkFileError(errors)
    fingerprint = f"file:{digest}"
    with session_scope(engine, write=True) as session:
        scorer = session.execute(select(Scorer).where(Scorer.name == name)).scalars().first()
        if scorer is not None and scorer.fingerprint == fingerprint:
            return ScoresImportResult(scorer.id, name, len(seen), False)
        if scorer is not None and not replace:
            raise BenchmarkFileError([LineError(file, 0, "--name", f"a scorer named {name!r} already exists; pass another --name or --replace")])
        if scorer is None:
            scorer = Scorer(name=name, family=IMPORTED_FAMILY, spec=f"file:{path.name}", fingerprint=fingerprint)
            session.add(scorer)
            session.flush()
        else:
            session.execute(delete(Score).where(Score.scorer_id == scorer.id))
            scorer.family, scorer.spec, scorer.fingerprint = IMPORTED_FAMILY, f"file:{path.name}", fingerprint
            scorer.n_truncated = scorer.n_unparseable = 0
            session.add(scorer)
        for r in rows:
            r["scorer_id"] = scorer.id
        session.execute(insert(Score), rows)
        return ScoresImportResult(scorer.id, name, len(seen), True)


def score_rows(*, engine: Engine, benchmark_id: int, scorer_name: str) -> list[dict]:
    """The export rows of one scorer, in file order (record line, group, prompt).

    Addressed as the import reads them: RMGAP ``record_id, group,
    prompt_index``; another format its entry id column and ``item_index``.
    """
    index = item_index(engine=engine, benchmark_id=benchmark_id)
    with session_scope(engine) as session:
        scorer_id = session.execute(select(Scorer.id).where(Scorer.name == scorer_name)).scalar_one_or_none()
        if scorer_id is None:
            raise LookupError(f"no scorer named {scorer_name!r}")
        rows = session.execute(
            select(Item.id, Record.record_id, Item.group, Item.prompt_index, Score.response_key, Score.value, Response.position)
            .join(Item, Item.id == Score.item_id)
            .join(Record, Record.id == Item.record_pk)
            .join(Response, (Response.record_pk == Item.record_pk) & (Response.key == Score.response_key))
            .where(Score.scorer_id == scorer_id, Item.benchmark_id == benchmark_id)
            .order_by(Record.file_path, Record.line_no, Item.group_index, Item.prompt_index, Response.position)
        ).all()
    out: list[dict] = []
    last = None
    for iid, rid, grp, pi, key, value, _ in rows:
        if iid != last:
            last = iid
            if index.is_rmgap:
                out.append({"record_id": rid, "group": grp, "prompt_index": pi, "scores": {}})
            else:
                out.append({index.id_column_of.get(iid, ENTRY_ID): rid, ITEM_INDEX: pi, "scores": {}})
        out[-1]["scores"][key] = value
    return out


def export_scores(*, engine: Engine, benchmark_id: int, scorer_name: str, out: str | Path) -> int:
    """Write the scorer's rows as JSONL atomically (a temp file renamed into place)."""
    rows = score_rows(engine=engine, benchmark_id=benchmark_id, scorer_name=scorer_name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)  # files of an export killed before it could clean up
    tmp = temp_path(out, "tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(rows)

