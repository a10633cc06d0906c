"""Each benchmark's own metrics, for people and for reward models, with group-resampled intervals.

One entry point for the report: ``benchmark_metrics(format, items,
scores=...)`` for a scorer, ``benchmark_metrics(format, items, picks=...)``
for people, ``benchmark_comparison`` for the two side by side on the same
items. The rules themselves live in each format's module (``estimates``);
this module only turns a person's pick into scores and fixes the resampling.

Why picks go through scores: each benchmark's evaluator defines its tie rule
on scores (RMB, RewardBench and pairs: strict ``>``, a tie is wrong;
RewardBench 2: 1/k credit; Personalized RewardBench: ties counted apart), so
a human tie ("Both equally good", "Both bad", a split plurality, or no pick
at all) is scored by the very rule a model's tie is (``common.pick_scores``).

Intervals: 95% percentile bootstrap over ``Item.group_id`` (items sharing a
conversation or a candidate set are drawn together), stratified by the
top-level category (``stats.grouped``). Undefined numbers are None with a
reason.
"""

from __future__ import annotations

from collections import Counter
from types import ModuleType
from typing import Any, Mapping, Optional, Sequence

from rmgap_annot.formats import pairs, prb, rewardbench, rewardbench2, rmb
from rmgap_annot.formats.common import Item, Pick, Scores, pick_kind, pick_scores, scored
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED
from rmgap_annot.stats.grouped import GroupedRates, paired, to_json

RULES: dict[str, ModuleType] = {
    "rmb": rmb, "prb": prb, "rewardbench": rewardbench, "rewardbench2": rewardbench2, "pairs": pairs,
}
NO_CATEGORY = "(none)"


def stratum_of(item: Item) -> str:
    """The top-level category: RMB's Helpfulness/Harmlessness, RewardBench's section, the subset, PRB's category."""
    return item.category_path[0] if item.category_path else NO_CATEGORY


def _rule(format_name: str) -> ModuleType:
    if format_name not in RULES:
        raise ValueError(f"no metric rules for format {format_name!r}; known: {', '.join(RULES)}")
    return RULES[format_name]


def _picked(items: Sequence[Item], picks: Mapping[tuple[str, int], Pick]) -> list[tuple[Item, dict[str, float]]]:
    return [(item, pick_scores(item, picks[item.ref])) for item in items if item.ref in picks]


def _rates(units: Sequence[tuple[Item, dict[str, float]]], *, n_boot: int, seed: int, confidence: float) -> GroupedRates:
    return GroupedRates([i.group_id for i, _ in units], [stratum_of(i) for i, _ in units],
                        n_boot=n_boot, seed=seed, confidence=confidence)


def _bootstrap_info(rates: GroupedRates, n_boot: int, seed: int, confidence: float) -> dict[str, Any]:
    return {
        "method": "percentile bootstrap over item groups (items sharing a conversation or candidate set drawn together), "
                  "resampled within each top-level category; means of categories recomputed draw by draw",
        "draws": n_boot, "seed": seed, "confidence": confidence,
        "strata": sorted(set(rates.stratum.tolist())),
    }


def pick_counts(items: Sequence[Item], picks: Mapping[tuple[str, int], Pick]) -> dict[str, int]:
    """How the people's aggregated picks split: decided, tie_good, tie_bad, split (plurality tie), no_pick."""
    counts = Counter(pick_kind(picks[item.ref]) for item in items if item.ref in picks)
    return {k: counts.get(k, 0) for k in ("decided", "tie_good", "tie_bad", "split", "no_pick")}


def benchmark_metrics(
    format: str,  # noqa: A002 - the CLI's word
    items: Sequence[Item],
    *,
    scores: Optional[Scores] = None,
    picks: Optional[Mapping[tuple[str, int], Pick]] = None,
    seed: int = SEED,
    n_boot: int = DRAWS,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The benchmark's own metrics for one reward model (``scores``) or for people (``picks``), as plain data.

    ``scores``: item ref -> {candidate key: score}; ``picks``: item ref ->
    a candidate key, ``tie_good``, ``tie_bad``, None (no pick) or a tuple
    of tied values (``common.plurality_picks`` builds it from labels).
    Items missing from either are left out (``n_left_out``).
    """
    rule = _rule(format)
    if (scores is None) == (picks is None):
        raise ValueError("pass exactly one of scores= (a reward model) or picks= (people)")
    items = list(items)
    units = list(scored(items, scores)) if scores is not None else _picked(items, picks)
    rates = _rates(units, n_boot=n_boot, seed=seed, confidence=confidence)
    out: dict[str, Any] = {
        "format": format,
        "source": "scores" if scores is not None else "picks",
        "n_items": len(units),
        "n_groups": int(len(set(rates.cluster.tolist()))),
        "n_left_out": len(items) - len(units),
        "metrics": to_json(rule.estimates(units, rates)),
        "bootstrap": _bootstrap_info(rates, n_boot, seed, confidence),
    }
    if picks is not None:
        out["picks"] = pick_counts(items, picks)
    if not units:
        out["reason"] = "no item has " + ("scores" if scores is not None else "a human pick")
    return out


def benchmark_comparison(
    format: str,  # noqa: A002
    items: Sequence[Item],
    *,
    scores: Scores,
    picks: Mapping[tuple[str, int], Pick],
    seed: int = SEED,
    n_boot: int = DRAWS,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """People vs one reward model on the items both have: each metric, and human minus model, paired.

    Both sides are computed over one ``GroupedRates`` (the same groups in
    every draw), so the difference's interval is paired; a proportion also
    gets the Durkalski clustered score test's p-value.
    """
    rule = _rule(format)
    items = list(items)
    both = [item for item in items if item.ref in picks and item.ref in scores]
    model_units = list(scored(both, scores))
    human_units = _picked(both, picks)
    rates = _rates(human_units, n_boot=n_boot, seed=seed, confidence=confidence)
    human, model = rule.estimates(human_units, rates), rule.estimates(model_units, rates)
    out: dict[str, Any] = {
        "format": format,
        "n_items": len(both),
        "n_groups": int(len(set(rates.cluster.tolist()))),
        "n_left_out": len(items) - len(both),
        "human": to_json(human),
        "model": to_json(model),
        "difference": paired(rates, human, model),
        "bootstrap": _bootstrap_info(rates, n_boot, seed, confidence),
    }
    if not both:
        out["reason"] = "no item has both a human pick and scores"
    return out
