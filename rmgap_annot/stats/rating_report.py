"""The report's ``ratings`` section: every rating question a study asks, its ordinal alpha and its answers.

The questions are the studies' own (``rmgap_annot.questions``); RMGAP's
naturalness is one of them and is read from ``Label.naturalness``, the others
from ``Label.ratings_json``. A question about each response makes each
(item, response) its own rated unit; units are resampled with their item's
group (the RMGAP record, the RMB conversation).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import Benchmark, Item, Study
from rmgap_annot.questions import Question, questions_for
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED
from rmgap_annot.stats.ratings import rating_agreement


def study_questions(*, engine: Engine, benchmark_id: int, study_ids: Sequence[int] | None = None) -> list[Question]:
    """The questions asked in the studies (all of the benchmark's when None), each name once, first study first."""
    with session_scope(engine) as session:
        fmt = session.execute(select(Benchmark.format).where(Benchmark.id == benchmark_id)).scalar_one()
        stmt = select(Study.questions_json).where(Study.benchmark_id == benchmark_id).order_by(Study.id)
        if study_ids is not None:
            stmt = stmt.where(Study.id.in_(list(study_ids)))
        specs = session.execute(stmt).scalars().all() or [None]
    seen: dict[str, Question] = {}
    for spec in specs:
        for q in questions_for(spec, fmt):
            seen.setdefault(q.name, q)
    return list(seen.values())


def ratings_table(labels: pd.DataFrame, questions: Sequence[Question], group_of_item: dict[int, str]) -> pd.DataFrame:
    """One row per answer (annotator, item, group, question, value), for ``rating_agreement``."""
    rows: list[dict[str, Any]] = []
    if labels.empty:
        return pd.DataFrame(rows, columns=["annotator", "item", "group", "question", "value"])
    ratings = labels["ratings_json"] if "ratings_json" in labels.columns else pd.Series([None] * len(labels))
    for (annotator, item_id, naturalness), text in zip(
        labels[["annotator", "item_id", "naturalness"]].itertuples(index=False, name=None), ratings
    ):
        answers = json.loads(text) if isinstance(text, str) and text else {}
        group = group_of_item.get(int(item_id), str(item_id))
        for q in questions:
            if q.name == "naturalness":
                value = None if pd.isna(naturalness) else int(naturalness)
                rows.append({"annotator": annotator, "item": str(item_id), "group": group, "question": q.name, "value": value})
            elif q.about == "prompt":
                rows.append({"annotator": annotator, "item": str(item_id), "group": group, "question": q.name,
                             "value": answers.get(q.name)})
            else:
                for key, value in (answers.get(q.name) or {}).items():
                    rows.append({"annotator": annotator, "item": f"{item_id}:{key}", "group": group,
                                 "question": q.name, "value": value})
    return pd.DataFrame(rows, columns=["annotator", "item", "group", "question", "value"])


def ratings_section(
    *, engine: Engine, benchmark_id: int, labels: pd.DataFrame, study_ids: Sequence[int] | None = None,
    draws: int = DRAWS, seed: int = SEED, confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """``{"questions": [{name, text, about, levels, alpha, ci, distribution, ...}], "reason"}``."""
    questions = study_questions(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids)
    if not questions:
        return {"questions": [], "reason": "the study asks no rating question besides the pick"}
    with session_scope(engine) as session:
        # The resampling unit: the item's group (an RMGAP record, a conversation); a row written
        # without one (a script, an import before 0006 set it) falls back to its record.
        group_of_item = {item_id: key or f"record:{record_pk}" for item_id, key, record_pk in session.execute(
            select(Item.id, Item.group_key, Item.record_pk).where(Item.benchmark_id == benchmark_id)).all()}
    table = ratings_table(labels, questions, group_of_item)
    scales = {q.name: list(q.values) for q in questions}
    # Ordinal levels in scale order: a yes/no question is stored 1/0, sorted for the distance.
    scales = {name: sorted(values) for name, values in scales.items()}
    stats = rating_agreement(table, scales=scales, seed=seed, n_boot=draws, confidence=confidence) if len(table) else {}
    out = []
    for q in questions:
        entry = {"name": q.name, "text": q.text, "about": q.about, "required": q.required,
                 "levels": [{"value": v, "label": lab} for v, lab in q.levels]}
        found = stats.get(q.name) or {"alpha": None, "ci": None, "reason": "no answers yet", "distribution": {}}
        # The question's own labelled levels stay; the statistic's bare level list would hide the labels.
        entry.update({k: v for k, v in found.items() if k != "levels"})
        out.append(entry)
    return {"questions": out, "reason": None}
