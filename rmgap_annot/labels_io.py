"""Labels in (gathered elsewhere, e.g. on a crowd platform) and out.

Import is strict and atomic like the benchmark import: every row is checked,
every problem reported as ``FILE:LINE: field: message``, and nothing is
written unless the whole file is valid. The export writes the same column
names the import reads, so an export re-imports into another database.

``choice`` is a response key of the item's record; an empty value (CSV),
``null`` (JSONL) or ``cant_decide`` (any case; also "can't decide") means
"Can't decide". A response key always wins over that spelling.
"""

from __future__ import annotations

import csv
import io
import json
import math
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.engine import Engine

from rmgap_annot.formats.rmgap import MAX_ID_CHARS, InputFileError, LineError, json_lines, read_text
from rmgap_annot.csv_cells import as_int, blank, restore, write_csv
from rmgap_annot.db import session_scope
from rmgap_annot.labels_frame import load_labels
from rmgap_annot.limits import MAX_CSV_FIELD_CHARS, MAX_JSON_DEPTH, MAX_TEXT_CHARS, json_depth_exceeds
from rmgap_annot.formats.common import TIE_CHOICES, FormatError, parquet_rows
from rmgap_annot.formats.store import ITEM_INDEX
from rmgap_annot.item_refs import ItemIndex, item_index
from rmgap_annot.models import Label, User
from rmgap_annot.questions import check_answers, questions_for
from rmgap_annot.studies import ensure_members

REQUIRED_COLUMNS = ("record_id", "group", "prompt_index", "annotator", "choice", "naturalness")
# The other formats: the entry's id column (see rmgap_annot.item_refs) besides these; naturalness is optional.
ENTRY_REQUIRED_COLUMNS = ("annotator", "choice")
OPTIONAL_COLUMNS = ("ranking", "reason", "comment", "seconds", "displayed_order", "ratings", "item_index")
CANT_DECIDE = {"", "cant_decide", "can't decide", "cant decide", "can’t decide"}
REASONS = ("none_fits", "several_fit", "prompt_unclear")
EXPORT_COLUMNS = [
    "label_id", "annotator", "record_id", "domain", "group", "prompt_index", "role", "winner_key", "choice",
    "ranking", "displayed_order", "naturalness", "reason", "comment", "seconds", "source", "shown_at",
    "first_submitted_at", "submitted_at", "revisions",
]
# After the entry id column(s) and item_index, for the formats other than RMGAP.
ENTRY_EXPORT_COLUMNS = [
    "domain", "winner_key", "choice", "ranking", "displayed_order", "naturalness", "ratings", "reason", "comment",
    "seconds", "source", "shown_at", "first_submitted_at", "submitted_at", "revisions",
]


class LabelsFileError(InputFileError):
    """The labels file is invalid; nothing was imported."""


@dataclass
class LabelsImportResult:
    n_labels: int
    n_replaced: int
    new_annotators: list[str]


def _required(index: ItemIndex) -> tuple[str, ...]:
    return REQUIRED_COLUMNS if index.is_rmgap else ENTRY_REQUIRED_COLUMNS


def _csv_rows(name: str, text: str, index: ItemIndex) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a labels CSV, strictly: a broken quote or a wrong field count is a line error.

    A lenient reader turns an unterminated quote into one field holding the
    rest of the file, which then imports as a label; the strict reader stops
    there instead. Cells written by ``csv_cells.neutralise`` are restored.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None) or []
    except csv.Error as exc:
        raise LabelsFileError([LineError(name, 1, "(header)", f"unreadable CSV: {exc}")]) from exc
    missing = [c for c in _required(index) if c not in header]
    if not index.has_address(set(header)) and not index.is_rmgap:
        missing.insert(0, index.address_hint())
    if missing:
        raise LabelsFileError([LineError(name, 1, "(header)", f"missing column(s): {', '.join(missing)}")])
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if "unexpected end of data" in message:
                message = "a quoted field opened on this line is never closed (unterminated quote)"
            elif "field larger than field limit" in message:
                message = f"a field is longer than {MAX_CSV_FIELD_CHARS:,} characters"
            else:
                message = f"unreadable CSV: {message}"
            yield start, {"__error__": message}
            return  # the reader cannot find the next row reliably after this
        line = start
        start = reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0]):
            continue  # a blank line
        if len(fields) != len(header):
            more_or_fewer = "more" if len(fields) > len(header) else "fewer"
            yield line, {"__error__": f"{len(fields)} values, {more_or_fewer} than the header's {len(header)} columns"}
            continue
        if any("\x00" in f for f in fields):
            column = header[next(i for i, f in enumerate(fields) if "\x00" in f)]
            yield line, {"__error__": "contains a NUL character, which is not text", "__field__": column}
            continue
        long = next((i for i, f in enumerate(fields) if len(f) > MAX_TEXT_CHARS), None)
        if long is not None:
            yield line, {"__error__": f"longer than {MAX_TEXT_CHARS:,} characters", "__field__": header[long]}
            continue
        yield line, {col: restore(value) for col, value in zip(header, fields)}


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return Path(path.stem).suffix.lower() if suffix == ".gz" else suffix


def _rows(path: Path, index: ItemIndex) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, row) for a .csv, .jsonl or .parquet file; raises LabelsFileError on unreadable input."""
    name = str(path)
    suffix = _suffix(path)
    if suffix == ".parquet":  # what export_labels writes; binary, so before the text reader
        yield from _parquet_label_rows(path, index)
        return
    text, _digest = read_text(path, error=LabelsFileError)
    if suffix == ".csv":
        yield from _csv_rows(name, text, index)
    elif suffix in (".jsonl", ".ndjson"):
        for line_no, _raw, obj, problem in json_lines(text):
            if problem:
                yield line_no, {"__error__": problem}
                continue
            missing = [c for c in _required(index) if c not in obj]
            if missing:
                yield line_no, {"__error__": f"missing field(s): {', '.join(missing)}", "__field__": missing[0]}
                continue
            yield line_no, obj
    else:
        raise LabelsFileError([LineError(name, 0, "(file)", f"unknown file type {suffix!r}: use .csv, .jsonl or .parquet")])


def _parquet_label_rows(path: Path, index: ItemIndex) -> Iterator[tuple[int, dict[str, Any]]]:
    rows, problems = parquet_rows(path, str(path))
    whole_file = [p for p in problems if p.line == 0]
    if whole_file:
        raise LabelsFileError(whole_file)
    for problem in problems:
        yield problem.line, {"__error__": problem.message}
    for row in rows:
        missing = [c for c in _required(index) if c not in row.data]
        if missing:
            yield row.position, {"__error__": f"missing column(s): {', '.join(missing)}", "__field__": missing[0]}
            continue
        yield row.position, row.data


def _positioned(errors: list[LineError], path: Path) -> list[LineError]:
    """A Parquet file's problems named by row (``FILE:ROW 3``), as the benchmark importers name them."""
    if _suffix(path) != ".parquet":
        return errors
    return [FormatError(e.file, e.line, e.field, e.message, "row") if e.line else e for e in errors]


def _key_list(value: Any) -> list[str]:
    """A list of response keys from a JSON list, JSON text, or 'a>b>c>d' / 'a,b,c,d'."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        if json_depth_exceeds(text):
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        parsed = json.loads(text)
        if not isinstance(parsed, list):
            raise ValueError("not a list")
        return [str(v) for v in parsed]
    for sep in (">", ",", "|"):
        if sep in text:
            return [p.strip() for p in text.split(sep)]
    return [text]


def import_labels(*, engine: Engine, path: str | Path, benchmark_id: int, replace: bool = False,
                  study_id: int | None = None) -> LabelsImportResult:
    """Validate every row, then insert all labels in one transaction, into one study.

    A label for an (annotator, item) that already has one is an error unless
    ``replace`` (then the old label is replaced). Unknown annotators are
    created as annotators without a password.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise LabelsFileError([LineError(name, 0, "(file)", "no such file")])
    index = item_index(engine=engine, benchmark_id=benchmark_id)
    from rmgap_annot.assignment import get_study

    study = get_study(engine=engine, benchmark_id=benchmark_id, study_id=study_id)
    if study.benchmark_id != benchmark_id:
        raise LabelsFileError([LineError(name, 0, "--study", f"study {study.name!r} is over another benchmark")])
    study_id = study.id
    optional_questions = tuple(dataclasses.replace(q, required=False) for q in questions_for(study.questions_json, index.format)
                               if q.name != "naturalness")

    errors: list[LineError] = []
    parsed: list[dict[str, Any]] = []
    seen: dict[tuple[str, int], int] = {}
    for line, row in _rows(path, index):
        if "__error__" in row:
            errors.append(LineError(name, line, row.get("__field__", "(line)"), row["__error__"]))
            continue
        row_errors: list[LineError] = []

        def err(field: str, message: str) -> None:
            row_errors.append(LineError(name, line, field, message))

        target = index.resolve(row, err)
        rid = next((str(row[c]).strip() for c in ("record_id", *index.id_columns, "entry_id") if not blank(row.get(c))), "")
        annotator = row.get("annotator")
        annotator = "" if blank(annotator) else str(annotator).strip()
        if not annotator:
            err("annotator", "must not be empty")
        elif len(annotator) > MAX_ID_CHARS:
            err("annotator", f"longer than {MAX_ID_CHARS} characters")
            annotator = ""
        record_keys = index.keys.get(target[1], set()) if target else set()
        allowed = index.choices(target[1]) if target else set()

        raw_choice = row.get("choice")
        choice: str | None
        if not blank(raw_choice) and str(raw_choice).strip() in allowed:
            choice = str(raw_choice).strip()
        elif blank(raw_choice) or str(raw_choice).strip().lower() in CANT_DECIDE:
            choice = None
        else:
            choice = None
            if target:
                ties = f" or {' / '.join(TIE_CHOICES)}" if allowed - record_keys else ""
                err("choice", f"{raw_choice!r} is not a response key of record {rid!r} (keys: {', '.join(sorted(record_keys))}){ties}; leave it empty or write cant_decide for Can't decide")

        naturalness = None
        raw_nat = row.get("naturalness")
        if not blank(raw_nat):
            try:
                naturalness = as_int(raw_nat)
                if not 1 <= naturalness <= 5:
                    raise ValueError
            except (TypeError, ValueError):
                err("naturalness", f"must be an integer 1..5 or empty, not {raw_nat!r}")
                naturalness = None

        ranking = None
        if not blank(row.get("ranking")):
            try:
                ranking = _key_list(row["ranking"])
            except (ValueError, json.JSONDecodeError):
                err("ranking", "must be a JSON list of response keys or 'key>key>key>key'")
            if ranking is not None and target:
                if sorted(ranking) != sorted(record_keys):
                    err("ranking", f"must order each response key of record {rid!r} exactly once ({', '.join(sorted(record_keys))})")
                elif choice is None or choice in TIE_CHOICES:
                    err("ranking", "a ranking needs a choice (its first key), not Can't decide or a tie")
                elif choice != ranking[0]:
                    err("choice", f"{choice!r} is not the ranking's first key {ranking[0]!r}")

        displayed = None
        if not blank(row.get("displayed_order")):
            try:
                displayed = _key_list(row["displayed_order"])
            except (ValueError, json.JSONDecodeError):
                err("displayed_order", "must be a JSON list of response keys or 'key,key,key,key'")
            if displayed is not None and target and sorted(displayed) != sorted(record_keys):
                err("displayed_order", f"must list each response key of record {rid!r} exactly once, in slots A..D")

        ratings = None
        if not blank(row.get("ratings")):
            ratings = row["ratings"]
            if isinstance(ratings, str):
                try:
                    ratings = json.loads(ratings) if not json_depth_exceeds(ratings) else None
                except json.JSONDecodeError:
                    ratings = None
            if not isinstance(ratings, dict) or not ratings:
                err("ratings", "must be a JSON object of rating answers {question: value} (as the export writes it)")
                ratings = None
            elif target:
                try:  # on the study's scales; a question left out is fine (the file may hold part of the answers)
                    _, ratings_text = check_answers(optional_questions, naturalness=None, ratings=ratings, keys=record_keys)
                except ValueError as exc:
                    err("ratings", str(exc))
                    ratings = None
                else:
                    ratings = json.loads(ratings_text) if ratings_text else None

        reason = None if blank(row.get("reason")) else str(row["reason"]).strip()
        if reason is not None and reason not in REASONS:
            err("reason", f"must be one of {', '.join(REASONS)} or empty, not {reason!r}")
        comment = None if blank(row.get("comment")) else str(row["comment"])
        seconds = None
        if not blank(row.get("seconds")):
            try:
                seconds = float(row["seconds"])
                if not math.isfinite(seconds) or seconds < 0:
                    raise ValueError
            except (TypeError, ValueError):
                err("seconds", f"must be a non-negative number, not {row.get('seconds')!r}")
                seconds = None

        if target and annotator:
            first = seen.get((annotator, target[0]))
            if first is not None:
                err("annotator", f"{annotator!r} already labelled this item on line {first}")
            else:
                seen[(annotator, target[0])] = line
        if row_errors:
            errors.extend(row_errors)
            continue
        parsed.append(
            {
                "line": line, "annotator": annotator, "item_id": target[0], "choice_key": choice, "reason": reason,
                "ranking_json": json.dumps(ranking) if ranking else None,
                "displayed_order_json": json.dumps(displayed) if displayed else None,
                "naturalness": naturalness, "comment": comment, "seconds": seconds,
                "ratings_json": json.dumps(ratings, ensure_ascii=False, sort_keys=True) if ratings else None,
            }
        )
    if not errors and not parsed:
        errors.append(LineError(name, 1, "(file)", "no labels found"))
    if errors:
        raise LabelsFileError(_positioned(errors, path))

    from rmgap_annot.models import utcnow

    with session_scope(engine, write=True) as session:
        users = dict(session.execute(select(User.name, User.id)).all())
        new_names = sorted({p["annotator"] for p in parsed} - set(users))
        from rmgap_annot.crowd.links import is_participant_name

        taken = {n for n in new_names if is_participant_name(n)}
        if taken:
            # Only the study link makes participants (keyed by platform and id): a file
            # must not mint an account that would pass for one.
            raise LabelsFileError(_positioned([
                LineError(name, p["line"], "annotator", f"{p['annotator']!r} is a crowd participant's name; only a study link creates those")
                for p in parsed if p["annotator"] in taken
            ], path))
        for n in new_names:
            user = User(name=n, role="annotator", password_hash=None)
            session.add(user)
            session.flush()
            users[n] = user.id
        pairs = [(users[p["annotator"]], p["item_id"]) for p in parsed]
        existing: dict[tuple[int, int], int] = {}
        for chunk_start in range(0, len(pairs), 400):
            chunk = pairs[chunk_start : chunk_start + 400]
            for lid, uid, iid in session.execute(
                select(Label.id, Label.user_id, Label.item_id)
                .where(Label.study_id == study_id, tuple_(Label.user_id, Label.item_id).in_(chunk))
            ).all():
                existing[(uid, iid)] = lid
        if existing and not replace:
            clash = [LineError(name, p["line"], "annotator", f"{p['annotator']!r} already has a label on this item (use --replace to overwrite)")
                     for p, pair in zip(parsed, pairs) if pair in existing]
            raise LabelsFileError(_positioned(clash, path))
        if existing:
            ids = list(existing.values())
            for s in range(0, len(ids), 500):
                session.execute(delete(Label).where(Label.id.in_(ids[s : s + 500])))
        now = utcnow()
        ensure_members(session, study_id=study_id, user_ids=list(dict.fromkeys(users[p["annotator"]] for p in parsed)))
        session.execute(
            insert(Label),
            [
                {
                    "study_id": study_id, "user_id": users[p["annotator"]], "item_id": p["item_id"], "choice_key": p["choice_key"],
                    "reason": p["reason"], "ranking_json": p["ranking_json"], "displayed_order_json": p["displayed_order_json"],
                    "naturalness": p["naturalness"], "comment": p["comment"], "seconds": p["seconds"], "source": "import",
                    "first_submitted_at": now, "submitted_at": now, "revisions": 0, "ratings_json": p["ratings_json"],
                }
                for p in parsed
            ],
        )
    return LabelsImportResult(len(parsed), len(existing), new_names)


def export_frame(*, engine: Engine, benchmark_id: int, study_ids: list[int] | None = None,
                 real_names: bool = False) -> pd.DataFrame:
    """The labels as the export writes them (import's column names plus context).

    RMGAP: ``record_id, group, prompt_index``; the other formats: the entry's
    id under the benchmark's own column (RMB ``pair_uid`` or ``bon_uid``, else
    ``id``) and ``item_index``, with the rating answers as ``ratings``.

    Annotators are named by their pseudonym in the study (``ann-07``;
    ``STUDY/ann-07`` when several studies are exported), since a labels file
    leaves the system. ``real_names`` keeps the user names, for a
    researcher's own backup that ``labels import`` reads back onto the same
    accounts (imported under pseudonyms, the labels would belong to new
    accounts named ``ann-07``).
    """
    from rmgap_annot.studies import coder_names  # noqa: PLC0415

    df = load_labels(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids)
    if not real_names and len(df):
        names = coder_names(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids)
        df["annotator"] = [names[(s, u)] for s, u in zip(df["study_id"], df["user_id"])]
    df = df.rename(columns={"choice_key": "choice"})
    index = item_index(engine=engine, benchmark_id=benchmark_id)
    if index.is_rmgap:
        return df[EXPORT_COLUMNS]
    out = pd.DataFrame({"label_id": df["label_id"], "annotator": df["annotator"]})
    for column in index.id_columns:
        out[column] = [rid if index.id_column_of.get(int(iid)) == column else None
                       for rid, iid in zip(df["record_id"], df["item_id"])]
    out[ITEM_INDEX] = df["prompt_index"]
    for column in ENTRY_EXPORT_COLUMNS:
        out[column] = df[column] if column != "ratings" else [json.loads(r) if r else None for r in df["ratings_json"]]
    return out


def export_labels(*, engine: Engine, benchmark_id: int, out: str | Path, study_ids: list[int] | None = None,
                  real_names: bool = False) -> int:
    """Write every label to ``out`` (.csv, .jsonl or .parquet by extension); returns the count.

    CSV writes "Can't decide" as an empty choice and lists as JSON text, and
    quotes cells a spreadsheet would run as formulas (``csv_cells``, undone by
    the import); JSONL and Parquet keep nulls, lists and text as they are.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".parquet"):
        raise ValueError(f"unknown export type {suffix!r}: use .csv, .jsonl or .parquet")
    df = export_frame(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids, real_names=real_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    for col in ("shown_at", "first_submitted_at", "submitted_at"):
        df[col] = [None if pd.isna(t) else t.isoformat() for t in df[col]]
    if suffix == ".csv":
        csv_df = df.copy()
        for col in ("ranking", "displayed_order", "ratings"):
            if col in csv_df:
                csv_df[col] = csv_df[col].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else "")
        write_csv(csv_df, out)
    elif suffix == ".jsonl":
        with open(out, "w", encoding="utf-8", newline="\n") as fh:
            for rec in df.to_dict(orient="records"):
                clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
                fh.write(json.dumps(clean, ensure_ascii=False, default=str) + "\n")
    else:
        df["naturalness"] = df["naturalness"].astype("Int64")
        if "ratings" in df:  # Parquet cannot hold free-form objects: JSON text, as the import reads it
            df["ratings"] = df["ratings"].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else None)
        df.to_parquet(out, index=False)
    return len(df)
