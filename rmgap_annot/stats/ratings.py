"""Agreement on a study's rating questions: per question, ordinal Krippendorff alpha, its interval, the answers.

A rating question (RMGAP's naturalness, Personalized RewardBench's
factuality / relevance / usefulness / personalised alignment, a yes/no)
is an ordered scale, so its alpha is ordinal, computed by
``agreement.alpha_by_domain`` (the fast coincidence-sum path the report
already uses for naturalness, checked there against ``krippendorff.alpha``).
The interval resamples *groups* of rated units (an RMGAP record, an RMB
conversation): ratings of items sharing responses are correlated, so units
are drawn with their group (``bootstrap.cluster_draws`` bound to units).

Input is a long table, one row per answer: ``annotator, item, group,
question, value``. ``item`` is the rated unit: for a question about each
response pass the item and response key together (e.g. ``"e1/0:chosen"``),
so two responses are two units. A missing value (None/NaN: skipped) is
counted, never a value.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from rmgap_annot.stats import agreement as agr
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED

COLUMNS = ("annotator", "item", "group", "question", "value")


def _levels(values: pd.Series, scale: Optional[Sequence]) -> list:
    present = [v for v in values.dropna().unique().tolist()]
    if scale is None:
        return sorted(present)
    scale = list(scale)
    unknown = [v for v in present if v not in scale]
    if unknown:
        raise ValueError(f"answers {sorted(map(str, unknown))} are not on the question's scale {scale}")
    return scale


def question_alpha(
    rows: pd.DataFrame, *, scale: Optional[Sequence] = None, seed: int = SEED, n_boot: int = DRAWS,
    confidence: float = CONFIDENCE, stream: int = 0, level: str = "ordinal",
) -> dict[str, Any]:
    """One question's ordinal alpha with a group-clustered interval and the distribution of answers.

    ``scale``: the ordered levels (e.g. 1..5, or ["no", "yes"]); without
    it the sorted answers seen. Returns ``{"alpha", "ci", "ci_method",
    "ci_reason", "reason", "n_items", "n_values", "n_missing", "n_groups",
    "levels", "distribution"}``; alpha None with the reason when undefined
    (no unit rated twice, every paired answer the same).
    """
    rows = rows.reset_index(drop=True)
    missing = rows["value"].isna()
    levels = _levels(rows["value"], scale)
    units = pd.Index(pd.unique(rows["item"].astype(str)))
    group_of_unit = rows.assign(item=rows["item"].astype(str)).groupby("item", sort=False)["group"].first().reindex(units)
    group_of_unit = group_of_unit.astype(str).to_numpy()
    usable = rows[~missing]
    code = {v: i for i, v in enumerate(levels)}
    du = agr.DomainUnits(
        n_units=len(units),
        unit_idx=units.get_indexer(usable["item"].astype(str)).astype(np.int64),
        value_code=np.array([code[v] for v in usable["value"].tolist()], dtype=np.int64),
        n_missing=int(missing.sum()),
    )
    weights = None
    if n_boot and len(units):
        weights = {"q": bs.cluster_draws(group_of_unit, draws=n_boot, seed=seed, stream=stream).bind(group_of_unit)}
    n_values = max(len(levels), 1)
    res = agr.alpha_by_domain({"q": du}, level=level, n_values=n_values, weights=weights, confidence=confidence)["q"]
    counts = np.bincount(du.value_code, minlength=len(levels)) if len(levels) else np.zeros(0, dtype=int)
    return {
        "alpha": res["alpha"], "ci": res.get("ci"), "ci_method": res.get("ci_method"), "ci_reason": res.get("ci_reason"),
        "reason": res.get("reason"),
        "n_items": res["n_items"], "n_values": res["n_values"], "n_missing": res["n_missing"],
        "n_groups": int(len(np.unique(group_of_unit))) if len(units) else 0,
        "levels": [str(v) for v in levels],
        "distribution": {str(v): int(c) for v, c in zip(levels, counts)},
    }


def rating_agreement(
    table: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    scales: Optional[Mapping[str, Sequence]] = None,
    seed: int = SEED,
    n_boot: int = DRAWS,
    confidence: float = CONFIDENCE,
) -> dict[str, dict[str, Any]]:
    """Per question (in first-seen order), ``question_alpha`` over its rows of the long table.

    ``scales[question]`` gives a question's ordered levels. Each question
    draws from its own random stream, so adding a question never changes
    another one's interval.
    """
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table), columns=list(COLUMNS))
    absent = [c for c in COLUMNS if c not in frame.columns]
    if absent:
        raise ValueError(f"the ratings table lacks column(s) {', '.join(absent)}")
    frame = frame.astype({"value": object}).where(frame.notna(), None)
    out: dict[str, dict[str, Any]] = {}
    for question in pd.unique(frame["question"]):
        rows = frame[frame["question"] == question]
        out[str(question)] = question_alpha(
            rows, scale=(scales or {}).get(question), seed=seed, n_boot=n_boot, confidence=confidence,
            stream=bs.stream_for(question),
        )
    return out
