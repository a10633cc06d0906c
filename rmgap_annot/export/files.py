"""The export folder: the subset and label files, written atomically, and the --force rules.

- **Records come out byte for byte.** ``test.jsonl`` is the stored original
  lines (``Record.raw_json``) in file order, so RMGAP's own evaluator reads
  it unchanged.
- **Nothing is half-written.** Every file goes into a temporary folder beside
  the target, which is renamed into place only when all files are complete.
- **Only an export is replaced.** A folder is replaced (with ``--force``) only
  when its manifest lists every file in it, unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from fractions import Fraction
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from rmgap_annot import __version__
from rmgap_annot.formats.rmgap import write_records
from rmgap_annot.csv_cells import write_csv
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.export.card import alpha_lines, card_extras, card_planning, card_referee, dataset_card, verdict_block
from rmgap_annot.export.errors import ExportError
from rmgap_annot.export.html_report import write_report_html
from rmgap_annot.export.own_metrics import card_own_metrics
from rmgap_annot.settings import DOMAINS
from rmgap_annot.export.rule import Rule, apply_rule, format_fraction, item_stats, record_verdicts, summarize
from rmgap_annot.export.sources import _benchmark, _item_rows, _record_lines, load_analytics
from rmgap_annot.formats.store import write_benchmark_entries
from rmgap_annot.labels_frame import load_items
from rmgap_annot.stats.truth import AGGREGATES, PLURALITY, aggregated_picks, override_picks
from rmgap_annot.tempfiles import clean_stale, temp_path

LEVELS = ("record", "item")
# Where a benchmark of another format than RMGAP gets its kept entries, in its own files and tree.
BENCHMARK_DIR = "benchmark"
EXPORT_FILES = ("test.jsonl", "items.jsonl", "labels.parquet", "labels.csv", "README.md", "report.html")
# Written last into every export: the files it holds and their sha256. Only a
# folder whose files all match it is one this tool wrote (and may replace).
MANIFEST = ".rmgap-annot-export.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_items(path: Path, rows: list[dict[str, Any]]) -> int:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


# The account's database id would link a pseudonym back to an account (and across studies): never published.
PRIVATE_LABEL_COLUMNS = ("user_id",)


def write_labels(folder: Path, labels: pd.DataFrame) -> None:
    """Every raw label, Parquet (typed, raw text) and CSV (lists as JSON text, formula-safe cells).

    Annotators appear under their pseudonym (``counted_labels`` names them);
    the account id stays in the database.
    """
    frame = labels.drop(columns=[c for c in PRIVATE_LABEL_COLUMNS if c in labels.columns])
    for col in ("ranking", "displayed_order"):
        if col in frame:
            frame[col] = frame[col].map(lambda v: None if v is None or (not isinstance(v, list) and pd.isna(v)) else list(v))
    frame.to_parquet(folder / "labels.parquet", index=False)
    csv = frame.copy()
    for col in ("ranking", "displayed_order"):
        if col in csv:
            csv[col] = csv[col].map(lambda v: None if v is None else json.dumps(v, ensure_ascii=False))
    write_csv(csv, folder / "labels.csv")


def write_export(
    *, engine: Engine, benchmark_id: int, out_dir: str | Path, rule: Rule = Rule(), level: str = "record",
    force: bool = False, analytics: tuple[dict | None, str | None] | None = None, aggregate: str = "plurality",
    study_ids: list[int] | None = None,
) -> "ExportResult":
    """Write the verified subset into ``out_dir`` atomically.

    Everything is written into a temporary folder beside ``out_dir`` first and
    renamed into place at the end. An ``out_dir`` that exists and is not
    empty is refused unless ``force``; even then only a folder this tool wrote
    is replaced: it must hold the manifest (``MANIFEST``) and nothing the
    manifest does not list with the same sha256, so a typo cannot wipe a
    project folder or a hand-edited file. The previous export stays intact
    until the new one is complete. ``study_ids``: the studies whose labels
    count (None: all of the benchmark's, pooled).
    """
    if level not in LEVELS:
        raise ExportError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    if aggregate not in AGGREGATES:
        raise ExportError(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    out_dir = Path(out_dir)
    _check_target(out_dir, force=force)
    bench = _benchmark(engine, benchmark_id)
    rule = effective_rule(engine=engine, benchmark_id=benchmark_id, rule=rule, fmt=bench.format)
    # Excluded annotators' labels count nowhere, the export included (see rmgap_annot.exclusions).
    counted = counted_labels(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids)
    labels = counted.labels
    stats = verdict_stats(engine=engine, benchmark_id=benchmark_id, labels=labels, aggregate=aggregate, fmt=bench.format)
    verdicts = apply_rule(stats, rule)
    records = record_verdicts(verdicts)
    summary = summarize(verdicts, records)
    report, why_not = analytics if analytics is not None else load_analytics(engine=engine, benchmark_id=benchmark_id,
                                                                             study_ids=study_ids)
    created_at = datetime.now(timezone.utc)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)  # folders of an export killed before it could clean up
    tmp = temp_path(out_dir, "tmp")
    tmp.mkdir()
    try:
        files: dict[str, str] = {}
        if level == "record" and bench.format != "rmgap":
            kept = set(records.loc[records["verified"], "record_id"])
            (tmp / BENCHMARK_DIR).mkdir()
            n_out = write_benchmark_entries(engine=engine, benchmark_id=benchmark_id, fmt=bench.format, record_ids=kept,
                                            out=tmp / BENCHMARK_DIR)
            for written in sorted((tmp / BENCHMARK_DIR).rglob("*")):
                if written.is_file():
                    files[written.relative_to(tmp).as_posix()] = _sha256(written)
        elif level == "record":
            kept = set(records.loc[records["verified"], "record_id"])
            n_out = write_records(tmp / "test.jsonl", _record_lines(engine, benchmark_id, kept))
        else:
            n_out = write_items(tmp / "items.jsonl", _item_rows(engine, verdicts))
        write_labels(tmp, labels)
        for name in ("test.jsonl", "items.jsonl", "labels.parquet", "labels.csv"):
            if (tmp / name).exists():
                files[name] = _sha256(tmp / name)
        rmgap = bench.format == "rmgap"
        # Another format's own categories only (RMGAP's four domains are empty there), and none of
        # RMGAP's own analyses (verdict, referee, planning): its own metrics and agreement follow.
        shown = summary if rmgap else {d: v for d, v in summary.items() if d not in DOMAINS or v["items"]}
        card = dataset_card(
            bench=bench, rule=rule, level=level, summary=shown, alphas=alpha_lines(report, why_not) if rmgap else None,
            files=files, n_labels=len(labels), created_at=created_at,
            verdict=verdict_block(report, why_not) if rmgap else "",
            entries_note=None if bench.format == "rmgap" else (
                f"`{BENCHMARK_DIR}/` (record level) holds the kept entries in the benchmark's own form ({bench.format}): "
                "the same file names and folder tree, JSONL lines byte for byte, JSON arrays entry for entry, "
                "Parquet with the same schema, so its own evaluator reads them unchanged."),
        )
        card += card_extras(aggregate=aggregate, exclusions=counted.section())
        if rmgap:
            card += card_referee(report, why_not)
            card += card_planning(report, why_not)
        card += card_own_metrics(report, why_not)
        (tmp / "README.md").write_text(card, encoding="utf-8", newline="\n")
        write_report_html(
            tmp / "report.html", bench=bench, rule=rule, summary=shown, verdicts=verdicts, analytics=report,
            why_not=why_not, created_at=created_at,
        )
        _write_manifest(tmp, created_at=created_at)
        _swap_into_place(tmp, out_dir, force=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(
        out_dir=out_dir, level=level, rule=rule, summary=summary, n_written=n_out,
        files=[out_dir / name for name in (*EXPORT_FILES, BENCHMARK_DIR) if (out_dir / name).exists()],
        analytics_note=why_not,
    )


def verdict_stats(*, engine: Engine, benchmark_id: int, labels: pd.DataFrame, aggregate: str = PLURALITY,
                  fmt: str = "rmgap") -> pd.DataFrame:
    """Per item, the tallies the rule reads (``rule.item_stats``), with each item's designated winners for another
    format than RMGAP and the picks of ``aggregate``: what the export and the Export page's preview both judge."""
    stats = item_stats(labels=labels, items=load_items(engine=engine, benchmark_id=benchmark_id))
    if fmt != "rmgap":
        stats["correct_keys"] = stats["item_id"].map(_correct_keys(engine, benchmark_id))
    if aggregate != PLURALITY:
        fitted = aggregated_picks(engine=engine, benchmark_id=benchmark_id, labels=labels, method=aggregate, fit_if_missing=True)
        stats = override_picks(stats, fitted["picks"])
    return stats


def effective_rule(*, engine: Engine, benchmark_id: int, rule: Rule, fmt: str) -> Rule:
    """The rule with its naturalness check switched off when no study of the benchmark asks naturalness.

    Only RMGAP asks it by default; requiring a mean naturalness nobody was
    asked for would drop every item as "unnatural". A ``--min-rating`` must
    name a question a study of the benchmark asks, with a threshold on its
    scale: a typo would otherwise drop every item as "low rating".
    """
    from sqlalchemy import select

    from rmgap_annot.db import session_scope
    from rmgap_annot.models import Study
    from rmgap_annot.questions import questions_for

    with session_scope(engine) as session:
        settings = session.execute(select(Study.questions_json).where(Study.benchmark_id == benchmark_id)).scalars().all()
    asked = {q.name: q for text in (settings or [None]) for q in questions_for(text, fmt)}
    for name, least in rule.min_ratings:
        if name == "naturalness":
            raise ExportError("--min-rating naturalness: naturalness has its own threshold, --min-naturalness")
        if name not in asked:
            others = ", ".join(n for n in asked if n != "naturalness") or "none"
            raise ExportError(f"--min-rating {name}: no study of this benchmark asks a question {name!r} "
                              f"(its rating questions: {others})")
        low, high = min(asked[name].values), max(asked[name].values)
        if not low <= least <= high:
            raise ExportError(f"--min-rating {name}: {format_fraction(least)} is off the question's scale ({low} to {high})")
    if rule.min_naturalness == 0:
        return rule
    return rule if "naturalness" in asked else replace(rule, min_naturalness=Fraction(0))


def _correct_keys(engine: Engine, benchmark_id: int) -> dict[int, tuple[str, ...]]:
    """item id -> every designated winner (RewardBench 2's ties have several)."""
    from sqlalchemy import select

    from rmgap_annot.db import session_scope
    from rmgap_annot.models import Item

    with session_scope(engine) as session:
        rows = session.execute(select(Item.id, Item.winner_key, Item.correct_keys_json)
                               .where(Item.benchmark_id == benchmark_id)).all()
    return {iid: tuple(json.loads(ck)) if ck else (winner,) for iid, winner, ck in rows}


@dataclass
class ExportResult:
    out_dir: Path
    level: str
    rule: Rule
    summary: dict
    n_written: int  # records (record level) or items (item level)
    files: list[Path] = field(default_factory=list)
    analytics_note: str | None = None


def _write_manifest(folder: Path, *, created_at: datetime) -> None:
    # Relative POSIX paths: the benchmark's own files sit in a tree under BENCHMARK_DIR.
    files = {child.relative_to(folder).as_posix(): _sha256(child) for child in sorted(folder.rglob("*")) if child.is_file()}
    manifest = {"tool": "rmgap-annot", "version": __version__, "created_at": created_at.isoformat(), "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8", newline="\n")


def foreign_files(path: Path) -> list[str]:
    """What in ``path`` this tool did not write there: every name, when it has no manifest.

    A file the manifest lists but whose content changed since (a hand-edited
    README.md) counts as foreign too: replacing the folder would lose it.
    """
    try:
        listed = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["files"]
        if not isinstance(listed, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return sorted(child.name for child in path.iterdir())
    foreign = []
    for child in sorted(path.rglob("*")):
        name = child.relative_to(path).as_posix()
        if name == MANIFEST:
            continue
        if child.is_dir() and not child.is_symlink():
            # A folder of the export's tree is fine; one holding nothing the manifest lists is not the export's.
            if not any(n == name or n.startswith(name + "/") for n in listed):
                foreign.append(name)
            continue
        if name not in listed or not child.is_file() or child.is_symlink():
            foreign.append(name)
        elif _sha256(child) != listed[name]:
            foreign.append(f"{name} (changed since the export)")
    return foreign


def _check_target(out_dir: Path, *, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise ExportError(f"{out_dir} is not empty; pass --force to replace a previous export")
        foreign = foreign_files(out_dir)
        if foreign:
            shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
            raise ExportError(
                f"{out_dir} holds files that are not an export's ({shown}); refusing to replace it even with --force. "
                f"Only a folder this tool wrote (it has {MANIFEST}) and left unchanged is replaced: move those files or choose another --out."
            )


def _swap_into_place(tmp: Path, out_dir: Path, *, force: bool) -> None:
    """Rename the finished folder into place; the old export goes only after."""
    _check_target(out_dir, force=force)  # again: something may have appeared meanwhile
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    old = temp_path(out_dir, "old")
    os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
