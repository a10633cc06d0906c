"""The human-verified subset: the rule, the files, the dataset card, the report.

The export is what researchers take away, so three properties matter more
than anything else here:

- **The rule is exact.** Thresholds are compared in rational arithmetic
  (``fractions.Fraction``), so "2 of 3 annotators agree" passes a 2/3
  threshold whatever float the caller typed for it.
- **Records come out byte for byte.** ``test.jsonl`` is the stored original
  lines (``Record.raw_json``) in file order, so RMGAP's own evaluator reads
  it unchanged.
- **Nothing is half-written.** Every file goes into a temporary folder beside
  the target, which is renamed into place only when all files are complete.

The verification rule (documented in the README and in every dataset card):
an item is *verified* when, in this order of checks (the first failing one is
the reason the item is dropped):

1. ``too few labels``: it has at least ``min_labels`` labels that are not
   "Can't decide";
2. ``disagreement``: its plurality pick is unique (no tie for first) and the
   share of those labels choosing it is at least ``min_agreement``;
3. ``wrong winner``: that pick is the designated winner;
4. ``unnatural``: the mean naturalness of its ratings is at least
   ``min_naturalness`` (an item nobody rated fails, unless the threshold is 0,
   which switches the check off).

Disagreement is checked before the winner because a pick people do not agree
on says nothing about whether the benchmark's winner is right. A record is
verified when all of its items are.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot import __version__
from rmgap_annot.benchmark import write_records
from rmgap_annot.csv_cells import write_csv
from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.stats.truth import AGGREGATES, PLURALITY, aggregated_picks, override_picks
from rmgap_annot.labels_frame import load_items
from rmgap_annot.metrics import ScoredItem, item_outcomes
from rmgap_annot.models import Benchmark, Item, Label, Record, Response, Score, Scorer
from rmgap_annot.settings import DOMAINS
from rmgap_annot.tempfiles import clean_stale, temp_path

REASON_FEW = "too few labels"
REASON_DISAGREE = "disagreement"
REASON_WRONG = "wrong winner"
REASON_UNNATURAL = "unnatural"
# The order in which the checks run; the first failure is the reason.
REASONS: tuple[str, ...] = (REASON_FEW, REASON_DISAGREE, REASON_WRONG, REASON_UNNATURAL)
LEVELS = ("record", "item")
EXPORT_FILES = ("test.jsonl", "items.jsonl", "labels.parquet", "labels.csv", "README.md", "report.html")
# Written last into every export: the files it holds and their sha256. Only a
# folder whose files all match it is one this tool wrote (and may replace).
MANIFEST = ".rmgap-annot-export.json"
ANALYTICS_MISSING = "n/a (analytics module not available)"


class ExportError(Exception):
    """The export cannot be made as asked (bad threshold, target in the way)."""


def as_fraction(value: Fraction | int | float | str) -> Fraction:
    """A threshold as an exact rational.

    Strings are read exactly ("2/3", "0.67"); floats are snapped to the
    nearest fraction with a denominator up to 10^6, so ``2/3`` computed in
    floating point means two thirds, not a hair less.
    """
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise ExportError(f"not a number: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExportError(f"not a finite number: {value!r}")
        return Fraction(value).limit_denominator(10**6)
    try:
        return Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise ExportError(f"not a number or fraction: {value!r} (try 0.75 or 2/3)") from exc


def format_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    if value.denominator <= 12:
        return f"{value.numerator}/{value.denominator} ({float(value):.3f})"
    return f"{float(value):g}"


@dataclass(frozen=True)
class Rule:
    """The verification thresholds (see the module docstring for the rule)."""

    min_labels: int = 3
    min_agreement: Fraction = Fraction(2, 3)
    min_naturalness: Fraction = Fraction(3)

    @classmethod
    def of(cls, *, min_labels: int = 3, min_agreement: Any = Fraction(2, 3), min_naturalness: Any = 3) -> "Rule":
        """Validated thresholds from whatever a CLI flag or a slider gave."""
        if isinstance(min_labels, bool) or int(min_labels) != min_labels or min_labels < 1:
            raise ExportError(f"--min-labels must be a whole number of at least 1, got {min_labels!r}")
        agreement = as_fraction(min_agreement)
        if not 0 <= agreement <= 1:
            raise ExportError(f"--min-agreement must lie between 0 and 1, got {min_agreement!r}")
        naturalness = as_fraction(min_naturalness)
        if not 0 <= naturalness <= 5:
            raise ExportError(f"--min-naturalness must lie between 0 and 5 (0 switches the check off), got {min_naturalness!r}")
        return cls(int(min_labels), agreement, naturalness)

    def describe(self) -> list[str]:
        nat = (
            "no naturalness check (threshold 0)"
            if self.min_naturalness == 0
            else f"mean naturalness >= {format_fraction(self.min_naturalness)} (an unrated item fails)"
        )
        return [
            f"at least {self.min_labels} labels, not counting \"Can't decide\"",
            "a unique plurality pick (no tie for first) chosen by a share of those labels "
            f">= {format_fraction(self.min_agreement)}",
            "that pick is the designated winner",
            nat,
        ]


# --- the rule, as pure functions over frames ---------------------------------

STAT_COLUMNS = [
    "item_id", "record_id", "domain", "group", "prompt_index", "role", "winner_key", "n_labels", "n_decided",
    "n_cant_decide", "votes", "pick", "top_count", "tie", "nat_sum", "nat_count", "mean_naturalness",
]


def item_stats(*, labels: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per item, the tallies the rule needs (independent of any threshold).

    Split from :func:`apply_rule` so a page can recompute verdicts on every
    slider move without re-reading labels. Every item of ``items`` gets a row,
    unlabelled ones included (they fail as "too few labels").
    """
    votes: dict[int, dict[str, int]] = {}
    n_all: dict[int, int] = {}
    nat_sum: dict[int, int] = {}
    nat_count: dict[int, int] = {}
    if len(labels):
        for item_id, choice, nat in zip(labels["item_id"], labels["choice_key"], labels["naturalness"]):
            item_id = int(item_id)
            n_all[item_id] = n_all.get(item_id, 0) + 1
            if not _missing(choice):
                tally = votes.setdefault(item_id, {})
                tally[str(choice)] = tally.get(str(choice), 0) + 1
            if not _missing(nat):
                nat_sum[item_id] = nat_sum.get(item_id, 0) + int(nat)
                nat_count[item_id] = nat_count.get(item_id, 0) + 1
    rows = []
    for it in items.itertuples(index=False):
        item_id = int(it.item_id)
        tally = votes.get(item_id, {})
        n_decided = sum(tally.values())
        top = max(tally.values()) if tally else 0
        leaders = sorted(k for k, v in tally.items() if v == top) if tally else []
        tie = len(leaders) > 1
        nc = nat_count.get(item_id, 0)
        ns = nat_sum.get(item_id, 0)
        rows.append(
            (
                item_id, it.record_id, it.domain, int(it.group), int(it.prompt_index), getattr(it, "role", None),
                it.winner_key, n_all.get(item_id, 0), n_decided, n_all.get(item_id, 0) - n_decided,
                dict(sorted(tally.items())), leaders[0] if len(leaders) == 1 else None, top, tie, ns, nc,
                ns / nc if nc else float("nan"),
            )
        )
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def apply_rule(stats: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """``stats`` plus ``agreement``, ``verified`` and ``reason`` (the first failing check).

    Comparisons are integer cross-multiplications against the thresholds'
    exact fractions, so a boundary case can never flip on rounding.
    """
    out = stats.copy()
    n = out["n_decided"].to_numpy(dtype=np.int64)
    top = out["top_count"].to_numpy(dtype=np.int64)
    ag_num, ag_den = rule.min_agreement.numerator, rule.min_agreement.denominator
    nat_num, nat_den = rule.min_naturalness.numerator, rule.min_naturalness.denominator
    ns = out["nat_sum"].to_numpy(dtype=np.int64)
    nc = out["nat_count"].to_numpy(dtype=np.int64)

    few = n < rule.min_labels
    disagree = out["tie"].to_numpy(dtype=bool) | (top * ag_den < ag_num * n) | (n == 0)
    # A missing pick compares unequal, so "no pick" reads as not the winner.
    wrong = ~(out["pick"].astype(object) == out["winner_key"].astype(object)).to_numpy(dtype=bool)
    if rule.min_naturalness == 0:
        unnatural = np.zeros(len(out), dtype=bool)
    else:
        unnatural = (nc == 0) | (ns * nat_den < nat_num * nc)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["agreement"] = np.where(n > 0, top / np.where(n > 0, n, 1), np.nan)
    reason = np.select([few, disagree, wrong, unnatural], list(REASONS), default="")
    # Object dtype keeps None as None (a str column would turn it into NaN).
    out["reason"] = pd.Series([r or None for r in reason.tolist()], index=out.index, dtype=object)
    out["verified"] = reason == ""
    return out


def verify(*, labels: pd.DataFrame, items: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """One row per item with its verdict: the rule applied to a labels frame."""
    return apply_rule(item_stats(labels=labels, items=items), rule)


def record_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per record: verified when every one of its items is; else the earliest reason."""
    columns = ["record_id", "domain", "n_items", "n_verified", "verified", "reason"]
    if verdicts.empty:
        return pd.DataFrame(columns=columns)
    # Reasons as their rank in the rule's order (len(REASONS) = passed): the min is the earliest.
    code = verdicts["reason"].map({r: i for i, r in enumerate(REASONS)}).fillna(len(REASONS)).astype(int)
    grouped = verdicts.assign(_code=code).groupby("record_id", sort=False).agg(
        domain=("domain", "first"), n_items=("item_id", "size"), n_verified=("verified", "sum"), _code=("_code", "min")
    )
    out = grouped.reset_index()
    out["n_verified"] = out["n_verified"].astype(int)
    out["verified"] = out["_code"].to_numpy() == len(REASONS)
    out["reason"] = pd.Series([REASONS[c] if c < len(REASONS) else None for c in out["_code"]], index=out.index, dtype=object)
    return out[columns]


def summarize(verdicts: pd.DataFrame, records: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """Counts kept and dropped per domain (and ``All``), items by reason, for card and page."""
    records = record_verdicts(verdicts) if records is None else records
    out: dict[str, dict[str, Any]] = {}
    for domain in (*DOMAINS, "All"):
        v = verdicts if domain == "All" else verdicts[verdicts["domain"] == domain]
        r = records if domain == "All" else records[records["domain"] == domain]
        reasons = v["reason"].value_counts() if len(v) else pd.Series(dtype=int)
        out[domain] = {
            "records": int(len(r)),
            "records_kept": int(r["verified"].sum()) if len(r) else 0,
            "items": int(len(v)),
            "items_kept": int(v["verified"].sum()) if len(v) else 0,
            "items_dropped": {reason: int(reasons.get(reason, 0)) for reason in REASONS},
        }
    return out


# --- reading what the files need ---------------------------------------------


def labels_version(*, engine: Engine, benchmark_id: int) -> tuple:
    """A cheap fingerprint of a benchmark's labels: a page caches tallies on it."""
    stmt = (
        select(func.count(Label.id), func.max(Label.id), func.max(Label.submitted_at))
        .join(Item, Item.id == Label.item_id)
        .where(Item.benchmark_id == benchmark_id)
    )
    with session_scope(engine) as session:
        count, last_id, last_at = session.execute(stmt).one()
    return (benchmark_id, count, last_id, str(last_at))


def _benchmark(engine: Engine, benchmark_id: int) -> Benchmark:
    with session_scope(engine) as session:
        bench = session.get(Benchmark, benchmark_id)
    if bench is None:
        raise ExportError(f"no benchmark with id {benchmark_id}")
    return bench


def _record_lines(engine: Engine, benchmark_id: int, record_ids: set[str]) -> list[str]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Record.record_id, Record.raw_json).where(Record.benchmark_id == benchmark_id).order_by(Record.line_no)
        ).all()
    return [raw for rid, raw in rows if rid in record_ids]


def _scores(engine: Engine, item_ids: list[int]) -> dict[int, dict[str, dict[str, float | None]]]:
    """item id -> scorer name -> response key -> score."""
    out: dict[int, dict[str, dict[str, float | None]]] = {}
    with session_scope(engine) as session:
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start : start + 500]
            rows = session.execute(
                select(Score.item_id, Scorer.name, Score.response_key, Score.value)
                .join(Scorer, Scorer.id == Score.scorer_id)
                .where(Score.item_id.in_(chunk))
            ).all()
            for item_id, name, key, value in rows:
                out.setdefault(item_id, {}).setdefault(name, {})[key] = value
    return out


def _item_rows(engine: Engine, verdicts: pd.DataFrame) -> list[dict[str, Any]]:
    """items.jsonl: each verified item with its texts and provenance."""
    kept = verdicts[verdicts["verified"]]
    ids = [int(i) for i in kept["item_id"]]
    texts: dict[int, tuple[str, int]] = {}
    responses: dict[int, list[dict[str, str]]] = {}
    with session_scope(engine) as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for item_id, text, record_pk in session.execute(select(Item.id, Item.text, Item.record_pk).where(Item.id.in_(chunk))):
                texts[item_id] = (text, record_pk)
        pks = sorted({pk for _, pk in texts.values()})
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            rows = session.execute(
                select(Response.record_pk, Response.key, Response.text)
                .where(Response.record_pk.in_(chunk))
                .order_by(Response.record_pk, Response.position)
            ).all()
            for pk, key, text in rows:
                responses.setdefault(pk, []).append({"key": key, "text": text})
    scores = _scores(engine, ids)
    out = []
    for row in kept.itertuples(index=False):
        text, pk = texts[int(row.item_id)]
        scorer_out = {}
        for name, by_key in sorted(scores.get(int(row.item_id), {}).items()):
            clean = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in by_key.items()}
            outcome = None
            if set(clean) >= {r["key"] for r in responses[pk]}:
                outcome = item_outcomes(
                    ScoredItem(row.domain, row.record_id, row.group, row.prompt_index, row.winner_key,
                               {k: (float("nan") if v is None else v) for k, v in clean.items()})
                )
            scorer_out[name] = {
                "scores": clean,
                # Right in RMGAP's BoN sense: the winner strictly above all others.
                "correct": None if outcome is None else bool(outcome[2]),
                "pairs_won": None if outcome is None else outcome[0],
            }
        out.append(
            {
                "record_id": row.record_id,
                "domain": row.domain,
                "group": int(row.group),
                "prompt_index": int(row.prompt_index),
                "role": row.role,
                "prompt": text,
                "responses": responses[pk],
                "winner": row.winner_key,
                "provenance": {
                    "votes": {r["key"]: int(row.votes.get(r["key"], 0)) for r in responses[pk]},
                    "n_labels": int(row.n_labels),
                    "n_cant_decide": int(row.n_cant_decide),
                    "agreement": float(row.agreement),
                    "mean_naturalness": None if math.isnan(row.mean_naturalness) else float(row.mean_naturalness),
                    "scorers": scorer_out,
                },
            }
        )
    return out


def load_analytics(*, engine: Engine, benchmark_id: int) -> tuple[dict | None, str | None]:
    """The analytics report, or (None, why not): an export never fails on analytics."""
    try:
        from rmgap_annot.report import build_report
    except ImportError:
        return None, ANALYTICS_MISSING
    try:
        return build_report(engine=engine, benchmark_id=benchmark_id), None
    except Exception as exc:  # noqa: BLE001 - reported in the card, never hidden
        return None, f"n/a (analytics failed: {type(exc).__name__}: {exc})"


# --- writers -----------------------------------------------------------------


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


def write_labels(folder: Path, labels: pd.DataFrame) -> None:
    """Every raw label, Parquet (typed, raw text) and CSV (lists as JSON text, formula-safe cells)."""
    frame = labels.copy()
    for col in ("ranking", "displayed_order"):
        if col in frame:
            frame[col] = frame[col].map(lambda v: None if v is None or (not isinstance(v, list) and pd.isna(v)) else list(v))
    frame.to_parquet(folder / "labels.parquet", index=False)
    csv = frame.copy()
    for col in ("ranking", "displayed_order"):
        if col in csv:
            csv[col] = csv[col].map(lambda v: None if v is None else json.dumps(v, ensure_ascii=False))
    write_csv(csv, folder / "labels.csv")


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}f}"
    return str(x)


def alpha_lines(analytics: dict | None, why_not: str | None) -> dict[str, str]:
    """'alpha [lo, hi] (n items)' per domain, or the reason there is none."""
    out: dict[str, str] = {}
    table = ((analytics or {}).get("agreement") or {}).get("choice_alpha") or {}
    for domain in (*DOMAINS, "All"):
        if analytics is None:
            out[domain] = why_not or ANALYTICS_MISSING
            continue
        entry = table.get(domain)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("alpha"), (int, float)):
            reason = entry.get("reason") if isinstance(entry, Mapping) else None
            out[domain] = "n/a" + (f" ({reason})" if reason else "")
            continue
        ci = entry.get("ci") or [None, None]
        out[domain] = f"{_fmt(entry['alpha'])} [95% CI {_fmt(ci[0])}, {_fmt(ci[1])}], {entry.get('n_items', 'n/a')} items"
    return out


def verdict_block(analytics: Mapping | None, why_not: str | None, *, html_out: bool = False) -> str:
    """The verdict at a glance (rmgap_annot.verdict) for the top of the card / report.html, or why it is missing."""
    from rmgap_annot.stats.verified import verified_html, verified_markdown  # noqa: PLC0415
    from rmgap_annot.verdict import verdict_html, verdict_markdown  # noqa: PLC0415

    verdict = (analytics or {}).get("verdict") if isinstance(analytics, Mapping) else None
    if not isinstance(verdict, Mapping):
        why = why_not or "n/a (the analytics report has no verdict)"
        return f"<h2>Verdict at a glance</h2><p>{_e(why)}</p>" if html_out else f"## Verdict at a glance\n\n{why}\n"
    subset = analytics.get("verified_subset")
    if html_out:
        return verdict_html(verdict) + verified_html(subset)
    return verdict_markdown(verdict) + "\n" + verified_markdown(subset)


def dataset_card(
    *, bench: Benchmark, rule: Rule, level: str, summary: dict, alphas: dict[str, str], files: Mapping[str, str],
    n_labels: int, created_at: datetime, verdict: str = "",
) -> str:
    """README.md of the export: exactly how the subset was chosen, and from what (the verdict first, when given)."""
    lines = [
        f"# Human-verified subset of {bench.name}",
        "",
        f"Made with rmgap-annot {__version__} on {created_at:%Y-%m-%d %H:%M} UTC, level `{level}`.",
        "",
        *([verdict] if verdict else []),
        "## Source",
        "",
        f"- benchmark: `{bench.name}` (imported from `{bench.source_path}`)",
        f"- sha256 of the source file: `{bench.file_hash}`",
        f"- labels used: {n_labels} (all of them are in `labels.parquet` / `labels.csv`)",
        "",
        "## The rule",
        "",
        "An item is verified when it passes all four checks below; the first check it fails is",
        "the reason it was dropped. A record is kept (in `test.jsonl`) when all 12 of its items are verified.",
        "",
    ]
    for reason, text in zip(REASONS, rule.describe()):
        lines.append(f"1. {text} (else: *{reason}*)")
    lines += [
        "",
        f"Thresholds: `--min-labels {rule.min_labels} --min-agreement {rule.min_agreement} "
        f"--min-naturalness {rule.min_naturalness}`.",
        "",
        "## Kept and dropped",
        "",
        "| domain | records kept | records | items kept | items | " + " | ".join(f"dropped: {r}" for r in REASONS) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(REASONS),
    ]
    for domain in (*DOMAINS, "All"):
        s = summary[domain]
        lines.append(
            f"| {domain} | {s['records_kept']} | {s['records']} | {s['items_kept']} | {s['items']} | "
            + " | ".join(str(s["items_dropped"][r]) for r in REASONS) + " |"
        )
    lines += [
        "",
        "## Agreement on the pick (Krippendorff's alpha, nominal, over all labels of the source benchmark)",
        "",
        "| domain | alpha |",
        "|---|---|",
    ]
    lines += [f"| {d} | {alphas[d]} |" for d in (*DOMAINS, "All")]
    lines += ["", "## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in files.items()]
    lines += [
        "",
        "`test.jsonl` (record level) holds each kept record's original line, byte for byte and in the",
        "original order, so RMGAP's evaluator reads it unchanged. `items.jsonl` (item level) holds one",
        "verified item per line with its votes, agreement share, mean naturalness and every scorer's scores.",
        "",
    ]
    return "\n".join(lines)


def write_export(
    *, engine: Engine, benchmark_id: int, out_dir: str | Path, rule: Rule = Rule(), level: str = "record",
    force: bool = False, analytics: tuple[dict | None, str | None] | None = None, aggregate: str = "plurality",
) -> "ExportResult":
    """Write the verified subset into ``out_dir`` atomically.

    Everything is written into a temporary folder beside ``out_dir`` first and
    renamed into place at the end. An ``out_dir`` that exists and is not
    empty is refused unless ``force``; even then only a folder this tool wrote
    is replaced: it must hold the manifest (``MANIFEST``) and nothing the
    manifest does not list with the same sha256, so a typo cannot wipe a
    project folder or a hand-edited file. The previous export stays intact
    until the new one is complete.
    """
    if level not in LEVELS:
        raise ExportError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    if aggregate not in AGGREGATES:
        raise ExportError(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    out_dir = Path(out_dir)
    _check_target(out_dir, force=force)
    bench = _benchmark(engine, benchmark_id)
    # Excluded annotators' labels count nowhere, the export included (see rmgap_annot.exclusions).
    counted = counted_labels(engine=engine, benchmark_id=benchmark_id)
    labels = counted.labels
    items = load_items(engine=engine, benchmark_id=benchmark_id)
    stats = item_stats(labels=labels, items=items)
    if aggregate != PLURALITY:
        fitted = aggregated_picks(engine=engine, benchmark_id=benchmark_id, labels=labels, method=aggregate, fit_if_missing=True)
        stats = override_picks(stats, fitted["picks"])
    verdicts = apply_rule(stats, rule)
    records = record_verdicts(verdicts)
    summary = summarize(verdicts, records)
    report, why_not = analytics if analytics is not None else load_analytics(engine=engine, benchmark_id=benchmark_id)
    created_at = datetime.now(timezone.utc)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)  # folders of an export killed before it could clean up
    tmp = temp_path(out_dir, "tmp")
    tmp.mkdir()
    try:
        files: dict[str, str] = {}
        if level == "record":
            kept = set(records.loc[records["verified"], "record_id"])
            n_out = write_records(tmp / "test.jsonl", _record_lines(engine, benchmark_id, kept))
        else:
            n_out = write_items(tmp / "items.jsonl", _item_rows(engine, verdicts))
        write_labels(tmp, labels)
        for name in ("test.jsonl", "items.jsonl", "labels.parquet", "labels.csv"):
            if (tmp / name).exists():
                files[name] = _sha256(tmp / name)
        card = dataset_card(
            bench=bench, rule=rule, level=level, summary=summary, alphas=alpha_lines(report, why_not), files=files,
            n_labels=len(labels), created_at=created_at, verdict=verdict_block(report, why_not),
        )
        card += card_extras(aggregate=aggregate, exclusions=counted.section())
        card += card_referee(report, why_not)
        card += card_planning(report, why_not)
        (tmp / "README.md").write_text(card, encoding="utf-8", newline="\n")
        write_report_html(
            tmp / "report.html", bench=bench, rule=rule, summary=summary, verdicts=verdicts, analytics=report,
            why_not=why_not, created_at=created_at,
        )
        _write_manifest(tmp, created_at=created_at)
        _swap_into_place(tmp, out_dir, force=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(
        out_dir=out_dir, level=level, rule=rule, summary=summary, n_written=n_out,
        files=[out_dir / name for name in EXPORT_FILES if (out_dir / name).exists()], analytics_note=why_not,
    )


def card_extras(*, aggregate: str, exclusions: Mapping[str, Any]) -> str:
    """The card's aggregation and exclusion sections (appended after the main card)."""
    names = {PLURALITY: "plurality vote", "dawid-skene": "one-coin Dawid-Skene (crowd-kit)", "mace": "MACE (crowd-kit)"}
    lines = [
        "",
        "## Aggregation",
        "",
        f"`--aggregate {aggregate}`: each item's answer is the {names[aggregate]} estimate"
        + ("." if aggregate == PLURALITY else "; the agreement share in the rule is the share of labels choosing that answer."),
        "",
        "## Excluded annotators",
        "",
    ]
    stored = exclusions.get("stored") or []
    if not stored:
        lines.append("None: every annotator's labels were used.")
    else:
        lines += [f"{exclusions.get('n_labels_excluded', 0)} labels by these annotators are stored but were not used "
                  "(not in the rule, the label files or the agreement figures):", "", "| annotator | reason | excluded at |",
                  "|---|---|---|"]
        lines += [f"| {e['annotator']} | {str(e['reason']).replace('|', '/')} | {e['excluded_at']} |" for e in stored]
    return "\n".join(lines) + "\n"


def _ci_text(value: Any, ci: Any, pct: bool = True) -> str:
    """A signed difference with its interval: percentage points for proportions, plain otherwise."""
    if value is None:
        return "n/a"

    def f(v: float) -> str:
        return f"{v * 100:+.1f} pp" if pct else f"{v:+.2f}"

    return f(value) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci else "")


def card_planning(report: Mapping[str, Any] | None, why_not: str | None) -> str:
    """The card's "Sample-size plan": records per domain for a 95% interval of +/- 5 points (the report's ``planning``)."""
    lines = ["", "## Sample-size plan (95% interval of half-width 0.05; design effect from the within-record ICC)", ""]
    plan = (report or {}).get("planning")
    if not plan:
        return "\n".join(lines + [f"n/a: {why_not or 'the report has no planning section'}"]) + "\n"
    if plan.get("reason"):
        return "\n".join(lines + [f"n/a: {plan['reason']}"]) + "\n"
    lines += ["| metric | domain | records now | half-width now | records needed | note |", "|---|---|---|---|---|---|"]
    for metric in ("BoN", "label_accuracy"):
        res = plan.get(metric) or {}
        if res.get("reason"):
            lines.append(f"| {metric} | all | | | n/a | {res['reason']} |")
            continue
        for d, e in (res.get("domains") or {}).items():
            now = e.get("half_width_now")
            lines.append(f"| {metric} | {d} | {e.get('records_now', '')} | {'' if now is None else f'{now:.3f}'} | "
                         f"{'n/a' if e.get('records_needed') is None else e['records_needed']} | {e.get('reason') or e.get('note') or ''} |")
    lines += ["", f"Labels per item planned: {plan['labels_per_item']}. Pick alpha: `rmgap-annot plan --metric choice_alpha`."]
    return "\n".join(lines) + "\n"


def card_referee(report: Mapping[str, Any] | None, why_not: str | None) -> str:
    """The card's "Referee analyses" section: the report's ``referee`` key in three short tables.

    Over all counted labels of the source benchmark (not only the kept
    records), like the agreement figures above; the full numbers are in
    ``report --json``.
    """
    lines = ["", "## Referee analyses (all counted labels; 95% intervals resample whole records)", ""]
    ref = (report or {}).get("referee")
    if not ref:
        return "\n".join(lines + [f"n/a: {why_not or 'the report has no referee section'}"]) + "\n"
    sp = ref["style_profiles"]
    lines += ["**Style lean of wrong picks** (mean level of the wrong picks minus its expectation if they fell uniformly on the",
              "non-winners; positive = towards highly formal / verbose / highly specialized / strictly objective / rigorous), All domains:", ""]
    if sp.get("reason"):
        lines.append(f"n/a: {sp['reason']}")
    else:
        pickers = ["human", *sp["scorers"]]
        lines += ["| dimension | " + " | ".join(pickers) + " |", "|---|" + "---|" * len(pickers)]
        dims = (sp["by_domain"].get("All") or {}).get("dimensions") or {}
        for dim, parts in dims.items():
            cells = []
            for who in pickers:
                lean = parts["wrong_picks"][who]["lean"]
                cells.append(_ci_text(lean.get("value"), lean.get("ci"), pct=False)
                             + (f", p {lean['p_value']:.3g}" if lean.get("p_value") is not None else f" ({lean.get('reason')})"))
            lines.append(f"| {dim} | " + " | ".join(cells) + " |")
    bvr = ref["base_vs_rewrite"]
    lines += ["", "**Base prompt minus its paraphrases** (paired within prompt groups; p adjusted across domains):", "",
              "| domain | BoN | label accuracy | pick alpha | naturalness (mean) |", "|---|---|---|---|---|"]
    for d in (*DOMAINS, "All"):
        block = bvr["by_domain"].get(d) or {}
        if "reason" in block:
            lines.append(f"| {d} | n/a ({block['reason']}) | | | |")
            continue
        cells = []
        for metric in ("BoN", "label_accuracy", "pick_alpha", "naturalness_mean"):
            diff = block[metric]["difference"]
            text = _ci_text(diff.get("difference"), diff.get("ci"), pct=metric in ("BoN", "label_accuracy"))
            p = diff.get("p_adjusted", diff.get("p_value"))
            cells.append(text + (f", p {p:.3g}" if p is not None else f" ({diff.get('reason', '')})" if diff.get("difference") is None else ""))
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    bd = ref["between_domains"]
    lines += ["", f"**Between domains** ({bd['test']}):", ""]
    for metric in ("BoN", "label_accuracy"):
        e = bd[metric]
        if e.get("p_value") is None:
            lines.append(f"- {metric}: n/a ({e.get('reason')})")
        else:
            rs = e.get("rao_scott") or {}
            lines.append(f"- {metric}: chi-square {e['statistic']:.2f} on {e['df']} df, p {e['p_value']:.3g}"
                         + (f" (Rao-Scott check: p {rs['p_value']:.3g})" if rs.get("p_value") is not None else ""))
    return "\n".join(lines) + "\n"


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
    files = {child.name: _sha256(child) for child in sorted(folder.iterdir()) if child.is_file()}
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
    for child in sorted(path.iterdir()):
        if child.name == MANIFEST:
            continue
        if child.name not in listed or not child.is_file() or child.is_symlink():
            foreign.append(child.name)
        elif _sha256(child) != listed[child.name]:
            foreign.append(f"{child.name} (changed since the export)")
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


# --- report.html ---------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}h2{margin-top:2em;border-bottom:1px solid #ddd}
.note{color:#666;font-size:.9em}svg{display:block;margin:1em 0}pre{white-space:pre-wrap;font-size:.8em}
"""
_COLORS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6"]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def svg_stacked_bars(rows: list[tuple[str, list[float]]], series: list[str], *, title: str) -> str:
    """Horizontal stacked bars: one row per category, one colour per series."""
    width, left, bar_h, gap = 760, 130, 22, 10
    total_max = max([sum(v) for _, v in rows] + [1])
    height = 40 + len(rows) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="16" font-size="14" font-weight="bold">{_e(title)}</text>']
    scale = (width - left - 20) / total_max
    for i, (label, values) in enumerate(rows):
        y = 30 + i * (bar_h + gap)
        parts.append(f'<text x="{left - 6}" y="{y + bar_h * 0.7:.1f}" font-size="12" text-anchor="end">{_e(label)}</text>')
        x = float(left)
        for j, v in enumerate(values):
            w = v * scale
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{_COLORS[j % len(_COLORS)]}">'
                             f"<title>{_e(series[j])}: {v:g}</title></rect>")
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="11">{sum(values):g}</text>')
    ly = 30 + len(rows) * (bar_h + gap) + 8
    lx = left
    for j, name in enumerate(series):
        parts.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{_COLORS[j % len(_COLORS)]}"/>'
                     f'<text x="{lx + 14}" y="{ly + 9}" font-size="11">{_e(name)}</text>')
        lx += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def svg_intervals(rows: list[tuple[str, float | None, float | None, float | None]], *, title: str,
                  lo: float = -1.0, hi: float = 1.0) -> str:
    """Point estimates with interval bars on a fixed axis (alpha, accuracies)."""
    width, left, row_h = 760, 130, 26
    height = 40 + len(rows) * row_h + 24
    span = width - left - 30

    def x(v: float) -> float:
        return left + (min(max(v, lo), hi) - lo) / (hi - lo) * span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="16" font-size="14" font-weight="bold">{_e(title)}</text>']
    axis_y = 30 + len(rows) * row_h
    for tick in np.linspace(lo, hi, 5):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="28" y2="{axis_y}" stroke="#eee"/>'
                     f'<text x="{x(tick):.1f}" y="{axis_y + 14}" font-size="10" text-anchor="middle">{tick:g}</text>')
    for i, (label, est, a, b) in enumerate(rows):
        y = 30 + i * row_h + row_h / 2
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{_e(label)}</text>')
        if est is None:
            parts.append(f'<text x="{left + 4}" y="{y + 4:.1f}" font-size="11" fill="#999">n/a</text>')
            continue
        if a is not None and b is not None:
            parts.append(f'<line x1="{x(a):.1f}" x2="{x(b):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#4c78a8" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(est):.1f}" cy="{y:.1f}" r="4" fill="#4c78a8"><title>{est:.3f}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _metric_table(title: str, columns: dict[str, Mapping], *, keys=(*DOMAINS, "Avg")) -> str:
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = []
    for name, values in columns.items():
        cells = "".join(f"<td>{_e(_fmt(_num(values.get(k)) if isinstance(values, Mapping) else None))}</td>" for k in keys)
        body.append(f"<tr><td>{_e(name)}</td>{cells}</tr>")
    return f"<h3>{_e(title)}</h3><table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _json_for_script(data: Any) -> str:
    """JSON that cannot close its <script> element early."""
    text = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False) if data is not None else "null"
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) or math.isinf(float(value)) else float(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _naturalness_and_position(analytics: Mapping) -> list[str]:
    """Charts for naturalness ratings and display-slot picks, drawn only from what is there."""
    parts: list[str] = []
    nat = (analytics.get("naturalness") or {}).get("by_domain")
    if isinstance(nat, Mapping):
        scale = ["1", "2", "3", "4", "5"]
        rows = []
        for d in (*DOMAINS, "All"):
            counts = (nat.get(d) or {}).get("counts") if isinstance(nat.get(d), Mapping) else None
            if isinstance(counts, Mapping):
                rows.append((d, [float(_num(counts.get(k)) or 0) for k in scale]))
        if rows:
            parts.append("<h2>Naturalness</h2>")
            parts.append(svg_stacked_bars(rows, [f"rated {k}" for k in scale], title="Naturalness ratings per domain (1 = unnatural, 5 = natural)"))
    pos = analytics.get("position_bias")
    if isinstance(pos, Mapping) and isinstance(pos.get("counts"), Mapping):
        parts.append("<h2>Position bias</h2>")
        counts = pos["counts"]
        if sum(float(_num(v) or 0) for v in counts.values()) > 0:
            parts.append(svg_stacked_bars([(f"slot {k}", [float(_num(v) or 0)]) for k, v in counts.items()], ["picks"],
                                          title="Picks by displayed slot"))
            parts.append(f"<p>chi-square against uniform: {_e(_fmt(_num(pos.get('chi2'))))}, "
                         f"p = {_e(_fmt(_num(pos.get('p_value'))))}</p>")
        else:
            parts.append(f"<p>n/a ({_e(pos.get('reason') or 'no picks with a recorded display order')})</p>")
    return parts


def write_report_html(
    path: Path, *, bench: Benchmark, rule: Rule, summary: dict, verdicts: pd.DataFrame, analytics: dict | None,
    why_not: str | None, created_at: datetime,
) -> None:
    """One self-contained page: inline SVG charts, inline data, no script, no network."""
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(bench.name)}: human verification report</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(bench.name)}: human verification report</h1>",
        f"<p class=\"note\">rmgap-annot {_e(__version__)}, {created_at:%Y-%m-%d %H:%M} UTC. Source sha256 "
        f"<code>{_e(bench.file_hash)}</code>.</p>",
        verdict_block(analytics, why_not, html_out=True),
        "<h2>The verified subset</h2><ol>",
        *(f"<li>{_e(t)} (else: <em>{_e(r)}</em>)</li>" for r, t in zip(REASONS, rule.describe())),
        "</ol>",
    ]
    rows = [(d, [summary[d]["items_kept"], *(summary[d]["items_dropped"][r] for r in REASONS)]) for d in DOMAINS]
    parts.append(svg_stacked_bars(rows, ["verified", *REASONS], title="Items per domain: verified, and why the rest were dropped"))
    table = ["<table><tr><th>domain</th><th>records kept</th><th>records</th><th>items kept</th><th>items</th>",
             *(f"<th>{_e(r)}</th>" for r in REASONS), "</tr>"]
    for d in (*DOMAINS, "All"):
        s = summary[d]
        table.append(f"<tr><td>{_e(d)}</td><td>{s['records_kept']}</td><td>{s['records']}</td><td>{s['items_kept']}</td>"
                     f"<td>{s['items']}</td>" + "".join(f"<td>{s['items_dropped'][r]}</td>" for r in REASONS) + "</tr>")
    table.append("</table>")
    parts += table
    nat = verdicts["mean_naturalness"].dropna()
    if len(nat):
        bins = [(f"{a:g}-{a + 1:g}" if a < 4 else "4-5", int(((nat >= a) & ((nat < a + 1) if a < 4 else (nat <= 5))).sum()))
                for a in (1, 2, 3, 4)]
        parts.append(svg_stacked_bars([(b, [n]) for b, n in bins], ["items"], title="Mean naturalness per item"))

    parts.append("<h2>Agreement and human accuracy</h2>")
    if analytics is None:
        parts.append(f"<p>{_e(why_not or ANALYTICS_MISSING)}</p>")
    else:
        agreement = analytics.get("agreement") or {}
        for key, title, lo in (("choice_alpha", "Krippendorff's alpha on the pick (95% CI)", -1.0),
                               ("naturalness_alpha", "Krippendorff's alpha on naturalness (95% CI)", -1.0)):
            table_a = agreement.get(key) or {}
            if not isinstance(table_a, Mapping):
                continue
            rows_a = []
            for d in (*DOMAINS, "All"):
                entry = table_a.get(d) if isinstance(table_a.get(d), Mapping) else {}
                ci = entry.get("ci") or [None, None]
                ci = list(ci) + [None, None]
                rows_a.append((d, _num(entry.get("alpha")), _num(ci[0]), _num(ci[1])))
            parts.append(svg_intervals(rows_a, title=title, lo=lo, hi=1.0))
        human = analytics.get("human") or {}
        scorers = analytics.get("scorers") or {}
        titles = {
            "Pair": "Pair accuracy against the designated winners",
            "BoN": "BoN accuracy against the designated winners",
            "Consistency": "Consistency (RMGAP's rule: identical full rankings on a group's three prompts; "
                           "people: Borda order of ranking-mode labels, n/a without them)",
            "TopConsistency": "TopConsistency (the same top pick on a group's three prompts; people: plurality pick)",
        }
        for metric in ("Pair", "BoN", "Consistency", "TopConsistency"):
            columns: dict[str, Mapping] = {}
            # Each column says its item set: people are scored on the items they labelled, a
            # reward model on every item it scored (the Reward models page compares both on
            # the labelled items only, hence different numbers).
            if isinstance(human.get(metric), Mapping):
                columns["humans (labelled items)"] = human[metric]
            if isinstance(scorers, Mapping):
                for name, s in scorers.items():
                    if isinstance(s, Mapping) and isinstance(s.get(metric), Mapping):
                        columns[f"{name} (all {s.get('n_items', '?')} scored items)"] = s[metric]
            if columns:
                parts.append(_metric_table(titles[metric], columns))
                avg_rows = [(n, _num(v.get("Avg")), None, None) for n, v in columns.items()]
                parts.append(svg_intervals(avg_rows, title=f"{metric}, average over domains", lo=0.0, hi=1.0))
        parts += _naturalness_and_position(analytics)
        # The per-item list is long (and in labels.*); the inline JSON below keeps it for tools.
        readable = {k: v for k, v in analytics.items() if k != "items"}
        parts.append("<details><summary>All analytics numbers (JSON, per-item list omitted)</summary><pre>"
                     f"{_e(json.dumps(_jsonable(readable), indent=1, ensure_ascii=False))}</pre></details>")
        parts.append(f'<script type="application/json" id="analytics">{_json_for_script(_jsonable(analytics))}</script>')
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8", newline="\n")
