"""A benchmark's own metrics from the database: people and each reward model, for any format but RMGAP.

The rules and intervals live in ``formats.benchmark_metrics``; this module
only reads what they need back out of the tables: the items as
``formats.Item`` objects (the same ones the reader built at import), the
people's plurality pick per item from the labels that count (excluded
annotators left out, as everywhere), and each scorer's scores. The report
plugs the result in under the benchmark's own names.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.formats.benchmark_metrics import RULES, benchmark_comparison, benchmark_metrics
from rmgap_annot.formats.common import Candidate, Item, plurality_picks
from rmgap_annot.formats.store import responses_by_record
from rmgap_annot.models import Benchmark, Item as ItemRow, Record, Score, Scorer
from rmgap_annot.stats.bootstrap import DRAWS, SEED
from rmgap_annot.stats.ratings import question_alpha

ALL = "All"


def load_format_items(*, engine: Engine, benchmark_id: int) -> tuple[str, list[Item], dict[int, tuple[str, int]]]:
    """(format, the items as ``formats.Item`` in file order, item id -> ref (entry id, item index))."""
    with session_scope(engine) as session:
        fmt = session.execute(select(Benchmark.format).where(Benchmark.id == benchmark_id)).scalar_one()
        rows = session.execute(
            select(ItemRow, Record.record_id)
            .join(Record, Record.id == ItemRow.record_pk)
            .where(ItemRow.benchmark_id == benchmark_id)
            .order_by(Record.file_path, Record.line_no, ItemRow.prompt_index)
        ).all()
        candidates = {pk: [Candidate(key, text) for key, text in pairs]
                      for pk, pairs in responses_by_record(session, benchmark_id).items()}
        items, refs = [], {}
        for row, rid in rows:
            conversation = json.loads(row.context_json) if row.context_json else None
            items.append(Item(
                format=fmt, entry_id=rid, item_index=row.prompt_index, candidates=candidates.get(row.record_pk, []),
                correct_keys=tuple(json.loads(row.correct_keys_json)) if row.correct_keys_json else (row.winner_key,),
                category_path=tuple(row.category_path.split("/")) if row.category_path else (),
                group_id=row.group_key or f"{rid}", prompt=None if conversation else row.text,
                conversation=conversation, profile=json.loads(row.profile_json) if row.profile_json else None,
                hidden=json.loads(row.hidden_json) if row.hidden_json else {},
            ))
            refs[row.id] = (rid, row.prompt_index)
    return fmt, items, refs


def _scores(*, engine: Engine, refs: dict[int, tuple[str, int]], items: Sequence[Item]) -> tuple[dict, dict]:
    """scorer name -> {ref: {key: score}} over items scored on every candidate; and per scorer the items left out."""
    keys = {item.ref: set(item.keys) for item in items}
    by_scorer: dict[str, dict[tuple[str, int], dict[str, float | None]]] = {}
    with session_scope(engine) as session:
        ids = list(refs)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for item_id, name, key, value in session.execute(
                select(Score.item_id, Scorer.name, Score.response_key, Score.value)
                .join(Scorer, Scorer.id == Score.scorer_id).where(Score.item_id.in_(chunk))
            ).all():
                by_scorer.setdefault(name, {}).setdefault(refs[item_id], {})[key] = value
    complete: dict[str, dict] = {}
    left_out: dict[str, int] = {}
    for name, per_item in sorted(by_scorer.items()):
        ok = {
            ref: {k: float(v) for k, v in s.items()} for ref, s in per_item.items()
            if set(s) == keys.get(ref) and all(v is not None and not math.isnan(float(v)) for v in s.values())
        }
        complete[name] = ok
        left_out[name] = len(per_item) - len(ok)
    return complete, left_out


def format_report(*, engine: Engine, benchmark_id: int, study_ids: list[int] | None = None,
                  seed: int = SEED, n_boot: int = DRAWS, exclude: Sequence[str] = (),
                  labels: pd.DataFrame | None = None) -> dict[str, Any]:
    """The benchmark's own metrics for people (plurality pick), each scorer, and people vs each scorer.

    ``study_ids``: whose labels count (None: every study of the benchmark).
    ``exclude``: one-off what-if exclusions on top of the stored ones (as the report's).
    ``labels``: the labels that count, when the caller has them already
    (``build_report``); else read through ``exclusions.counted_labels``.
    An RMGAP benchmark gets ``{"format": "rmgap", "reason": ...}``: its
    metrics are the main report's.
    """
    fmt, items, refs = load_format_items(engine=engine, benchmark_id=benchmark_id)
    if fmt not in RULES:
        return {"format": fmt, "reason": f"{fmt} has no per-format metrics here (RMGAP's are the main report's)"}
    if labels is None:
        labels = counted_labels(engine=engine, benchmark_id=benchmark_id, what_if=exclude, study_ids=study_ids).labels
    picks = plurality_picks(
        ((rid, int(pi)), None if choice is None or (isinstance(choice, float) and math.isnan(choice)) else choice)
        for rid, pi, choice in zip(labels["record_id"], labels["prompt_index"], labels["choice_key"])
    )
    scores, left_out = _scores(engine=engine, refs=refs, items=items)
    out: dict[str, Any] = {
        "format": fmt,
        "n_items": len(items),
        "n_labels": int(len(labels)),
        "study_ids": study_ids,
        "human": benchmark_metrics(fmt, items, picks=picks, seed=seed, n_boot=n_boot),
        "agreement": pick_agreement(labels, items, seed=seed, n_boot=n_boot),
        "models": {},
        "comparison": {},
    }
    for name, s in scores.items():
        model = benchmark_metrics(fmt, items, scores=s, seed=seed, n_boot=n_boot)
        model["n_incomplete"] = left_out[name]  # items with a missing or NaN score: left out
        out["models"][name] = model
        out["comparison"][name] = benchmark_comparison(fmt, items, scores=s, picks=picks, seed=seed, n_boot=n_boot)
    return out


def pick_agreement(labels, items: list[Item], *, seed: int = SEED, n_boot: int = DRAWS) -> dict[str, Any]:  # noqa: ANN001
    """Krippendorff's alpha on the pick (nominal), per top-level category and overall, with group-clustered intervals.

    Ties ("Both equally good", "Both bad") are answers like a response;
    "Can't decide" is no answer. Each study's people are coders of their
    own (as in the main report), and items are resampled with their group.
    """
    group = {it.ref: it.group_id for it in items}
    if labels.empty:
        return {ALL: {"alpha": None, "ci": None, "reason": "no labels yet", "n_items": 0}}
    frame = labels.assign(
        coder=[f"{s}:{a}" for s, a in zip(labels["study_id"], labels["annotator"])],
        item=labels["item_id"].astype(str),
        group=[group.get((rid, int(pi)), str(rid)) for rid, pi in zip(labels["record_id"], labels["prompt_index"])],
        value=labels["choice_key"].where(labels["choice_key"].notna(), None),
    )[["coder", "item", "group", "value", "domain"]].rename(columns={"coder": "annotator"})
    out: dict[str, Any] = {}
    for category in [*sorted(frame["domain"].dropna().unique()), ALL]:
        rows = frame if category == ALL else frame[frame["domain"] == category]
        entry = question_alpha(rows.assign(question="pick"), seed=seed, n_boot=n_boot, level="nominal",
                               stream=len(out))
        entry.pop("levels", None)
        entry.pop("distribution", None)  # response keys: researcher-only, and meaningless across items
        out[str(category)] = entry
    return out
