"""Rates over benchmark items with intervals that resample item groups, for any benchmark's rule.

Why groups: items sharing a conversation or a candidate set (``Item.group_id``)
have correlated outcomes, so every interval here draws a group's items
together (``stats.bootstrap``'s cluster draws), within strata (the top-level
category), so a category mix stays that of the benchmark. A group lying in
two top-level categories (RewardBench reuses MT-Bench prompts across Chat
and Chat Hard) is put in the stratum of its first item: splitting it would
draw its halves independently, which is the error the groups are there to
prevent.

A benchmark's headline numbers are either proportions over items (an
accuracy, a win rate, RewardBench 2's mean credit) or means of such
proportions (RMB's tree, RewardBench's weighted sections). Both are computed
here draw by draw from the same draws, so a human and a reward model
evaluated over the same ``GroupedRates`` can be differenced draw by draw:
that is the paired comparison (the same groups resampled for both sides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED


@dataclass
class Estimate:
    """One headline number, its interval, or None with the reason it is undefined.

    ``boot`` (the draws), ``values`` and ``mask`` (a proportion's per-item
    terms) stay out of the JSON: they are what a paired comparison needs.
    """

    value: Optional[float]
    n: int
    n_groups: int = 0
    reason: Optional[str] = None
    ci: Optional[list[float]] = None
    ci_method: Optional[str] = None
    ci_reason: Optional[str] = None
    boot: Optional[np.ndarray] = field(default=None, repr=False)
    values: Optional[np.ndarray] = field(default=None, repr=False)
    mask: Optional[np.ndarray] = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n": self.n, "n_groups": self.n_groups, "reason": self.reason,
                "ci": self.ci, "ci_method": self.ci_method, "ci_reason": self.ci_reason}


class GroupedRates:
    """Bootstrap draws over a fixed list of units (scored items), one group id and stratum each."""

    def __init__(self, groups: Sequence[str], strata: Sequence[str], *, n_boot: int = DRAWS, seed: int = SEED,
                 confidence: float = CONFIDENCE):
        groups = [str(g) for g in groups]
        first: dict[str, str] = {}
        for g, s in zip(groups, strata):
            first.setdefault(g, str(s))
        self.cluster = np.asarray(groups, dtype=str) if groups else np.asarray([], dtype=str)
        self.stratum = np.asarray([first[g] for g in groups], dtype=object)
        self.n_boot, self.seed, self.confidence = n_boot, seed, confidence
        self.weights = None
        if n_boot and groups:
            draws = bs.stratified_draws(self.cluster, self.stratum, draws=n_boot, seed=seed)
            self.weights = bs.bind_strata(draws, self.cluster, self.stratum)

    def __len__(self) -> int:
        return len(self.cluster)

    def n_groups(self, mask: np.ndarray) -> int:
        return int(len(np.unique(self.cluster[mask])))

    def proportion(self, values: Sequence[float], mask: Sequence[bool], what: str = "scored items") -> Estimate:
        """Mean of ``values`` (each in [0, 1]) over the units in ``mask``; the interval resamples groups."""
        v = np.asarray(values, dtype=float)
        m = np.asarray(mask, dtype=bool)
        n = int(m.sum())
        if n == 0:
            return Estimate(None, 0, 0, reason=f"no {what}", ci_reason="no estimate")
        point = float(v[m].mean())
        boot = None
        if self.weights is not None:
            num = self.weights.sum(np.where(m, v, 0.0))
            den = self.weights.sum(m.astype(float))
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        k = self.n_groups(m)
        info = bs.clustering(v[m], self.cluster[m])
        iv = bs.interval(point, boot, confidence=self.confidence, successes=float(v[m].sum()), trials=float(n),
                         design_effect=info["design_effect"], n_clusters=k)
        return Estimate(point, n, k, ci=iv["ci"], ci_method=iv["ci_method"], ci_reason=iv.get("ci_reason"),
                        boot=boot, values=v, mask=m)

    def mean(self, parts: Sequence[Estimate], weights: Optional[Sequence[float]] = None, what: str = "parts") -> Estimate:
        """Weighted mean of the defined parts (a benchmark's "averaged up the tree" or weighted section).

        In each draw a part with no unit drawn is left out and the weights of
        the others renormalised, as the point estimate leaves out a part with
        no scored item. Where every draw gives the same value (all parts
        all-correct), the weighted mean of the parts' own intervals (their
        Wilson fallbacks), so a mean is never [1, 1] on a handful of groups.
        """
        weights = [1.0] * len(parts) if weights is None else [float(w) for w in weights]
        defined = [(p, w) for p, w in zip(parts, weights) if p.value is not None]
        if not defined:
            return Estimate(None, 0, 0, reason=f"no {what} with a value", ci_reason="no estimate")
        total = sum(w for _, w in defined)
        point = float(sum(p.value * w for p, w in defined) / total)
        masks = [p.mask for p, _ in defined if p.mask is not None]
        union = np.logical_or.reduce(masks) if masks else np.zeros(len(self), dtype=bool)
        n = sum(p.n for p, _ in defined)
        boot = None
        if self.weights is not None and all(p.boot is not None for p, _ in defined):
            b = np.vstack([p.boot for p, _ in defined])
            w = np.asarray([w for _, w in defined])[:, None] * np.isfinite(b)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = np.where(w.sum(axis=0) > 0, (np.nan_to_num(b) * w).sum(axis=0) / w.sum(axis=0), np.nan)
        iv = bs.interval(point, boot, confidence=self.confidence)
        ci, method = iv["ci"], iv["ci_method"]
        if ci is not None and ci[1] - ci[0] < 1e-12 and all(p.ci is not None for p, _ in defined):
            lo = sum(p.ci[0] * w for p, w in defined) / total
            hi = sum(p.ci[1] * w for p, w in defined) / total
            ci, method = [min(lo, point), max(hi, point)], "weighted mean of the parts' intervals (the bootstrap was degenerate)"
        return Estimate(point, n, self.n_groups(union), ci=ci, ci_method=method, ci_reason=iv.get("ci_reason"),
                        boot=boot, mask=union)

    def difference(self, a: Estimate, b: Estimate) -> dict[str, Any]:
        """a - b on the same units, the same draws for both sides (paired), with a clustered p-value for proportions.

        The p-value is the Durkalski clustered score test of the per-item
        difference (``bootstrap.clustered_score_test``); a mean of parts has
        no single per-item difference, so it gets the interval only.
        """
        out: dict[str, Any] = {"difference": None, "a": a.value, "b": b.value, "ci": None, "ci_method": None,
                               "p_value": None, "reason": None}
        if a.value is None or b.value is None:
            out["reason"] = "undefined on one side: " + (a.reason if a.value is None else b.reason or "")
            return out
        point = a.value - b.value
        boot = a.boot - b.boot if a.boot is not None and b.boot is not None else None
        iv = bs.interval(point, boot, confidence=self.confidence)
        ci, method = iv["ci"], iv["ci_method"]
        if ci is not None and ci[1] - ci[0] < 1e-12 and a.ci is not None and b.ci is not None:
            # Every draw gave the same difference (a few groups, each side all right or all wrong):
            # no spread seen is no evidence of none, so the widest difference the two sides' own
            # intervals allow (conservative).
            ci = [min(a.ci[0] - b.ci[1], point), max(a.ci[1] - b.ci[0], point)]
            method = "difference of the two sides' intervals (conservative: the paired bootstrap was degenerate)"
        out.update(difference=float(point), ci=ci, ci_method=method)
        if iv["ci"] is None:
            out["ci_reason"] = iv.get("ci_reason")
        if a.values is not None and b.values is not None and a.mask is not None and np.array_equal(a.mask, b.mask):
            m = a.mask
            test = bs.clustered_score_test(a.values[m] - b.values[m], self.cluster[m])
            out.update(p_value=test["p_value"], statistic=test["statistic"], test=test["test"])
        else:
            out["p_reason"] = "a mean of categories: the clustered test covers per-item proportions only"
        return out


def is_estimate(value: Any) -> bool:
    return isinstance(value, Estimate)


def to_json(tree: Any) -> Any:
    """Nested dicts of Estimates (and plain values) as plain JSON-able data."""
    if isinstance(tree, Estimate):
        return tree.as_dict()
    if isinstance(tree, dict):
        return {k: to_json(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [to_json(v) for v in tree]
    return tree


def paired(rates: GroupedRates, a: Any, b: Any) -> Any:
    """Walk two trees of the same shape; each pair of Estimates becomes ``rates.difference``."""
    if isinstance(a, Estimate) and isinstance(b, Estimate):
        return rates.difference(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        out = {}
        for k in a:
            if k in b:
                sub = paired(rates, a[k], b[k])
                if sub is not None:
                    out[k] = sub
        return out
    return None
