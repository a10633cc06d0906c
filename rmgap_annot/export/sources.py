"""What the export reads from the database: labels' fingerprint, records, items, scores, analytics."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.export.errors import ExportError
from rmgap_annot.stats.metrics import ScoredItem, item_outcomes
from rmgap_annot.models import Benchmark, Item, Label, Record, Response, Score, Scorer

ANALYTICS_MISSING = "n/a (analytics module not available)"


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


def load_analytics(*, engine: Engine, benchmark_id: int, study_ids: list[int] | None = None) -> tuple[dict | None, str | None]:
    """The analytics report, or (None, why not): an export never fails on analytics."""
    try:
        from rmgap_annot.report import build_report
    except ImportError:
        return None, ANALYTICS_MISSING
    try:
        return build_report(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids), None
    except Exception as exc:  # noqa: BLE001 - reported in the card, never hidden
        return None, f"n/a (analytics failed: {type(exc).__name__}: {exc})"
