"""Cluster-bootstrap intervals and clustered tests, for any benchmark's grouping.

Why clusters: items that share responses (an RMGAP record's twelve prompts
over one set of four responses; an RMB conversation's entries) have
correlated labels, so resampling items makes intervals too narrow by a
factor of 1.4-2.3 and tests reject true nulls a third of the time (issue 11).
The resampling unit is therefore the *cluster* (the record), drawn with
replacement *within each stratum* (the domain or category), and nothing here
knows what a record or a domain is: callers pass a cluster id and a stratum
per unit, and a chance level per unit for tests against chance.

The fast weighted-sum design: one bootstrap draw is a count per cluster
(how often it was drawn); a unit inherits its cluster's count, so a
statistic that is a ratio of sums (accuracy, agreement, alpha's coincidence
sums) is ``weights @ per_unit_terms`` for all draws at once. Strata are
resampled independently (one random stream per stratum name, so adding a
stratum never changes another one's interval); a pooled statistic sums the
strata's weighted terms draw by draw (stratified bootstrap), and a plain
mean of strata (RMGAP's ``Avg``) averages their draws.

Public API (reused by the report and by the referee analyses):

- ``ClusterDraws`` / ``cluster_draws(clusters, draws=, seed=, stream=)``:
  one stratum's draws; ``.expand(cluster_of_unit)`` gives unit weights
  (draws x units), ``.total(cluster_of_unit, values)`` the weighted sum per
  draw (cheapest: summed per cluster first); ``.bind(cluster_of_unit)``
  gives ``UnitDraws``, whose ``sum(per_unit)`` does the same for vectors
  and units x V matrices (alpha's coincidence terms).
  ``stratified_draws(cluster, stratum, ...)`` builds one per stratum;
  ``stream_for(name)`` is the stable stream of a stratum name.
- ``interval(point, boot, ...)``: percentile interval that always contains
  the point; for proportions (``successes=, trials=, design_effect=,
  n_clusters=``) a Wilson interval on the effective sample size when the
  bootstrap is degenerate at 0 or 1 (e.g. all items correct).
- ``mean_of_strata_interval(point, boots, cis)``: interval of a plain mean
  of strata (RMGAP's Avg), draw by draw.
- ``clustering(y, cluster)``: within-cluster correlation (ANOVA ICC) of a
  per-unit outcome and the design effect 1 + (m_w - 1) ICC, m_w the
  size-weighted mean cluster size (Kish).
- ``wilson(successes, n, confidence)``: the Wilson score interval.
- ``clustered_score_test(difference, cluster)``: the Durkalski et al.
  (2003) clustered McNemar statistic generalised to any per-unit difference
  with mean zero under the null: X^2 = (sum_c s_c)^2 / sum_c s_c^2, s_c the
  cluster sums, chi-square with 1 df. Paired human-vs-scorer BoN passes
  h - s per item (exactly Durkalski's test); a one-sample test against
  chance passes successes - chance * trials.
- ``unit_weights(draws_by_stratum, cluster, stratum)``: unit weights for a
  pooled (stratified) statistic over several strata; ``bind_strata`` gives
  ``StrataDraws``, the same without a draws x units matrix (what the report
  uses). Every function taking ``weights`` accepts any of the three.
- ``paired_difference(a, b, cluster, weights)`` and
  ``versus_chance(successes, trials, chance, cluster, weights)``: point,
  interval (same resampled clusters for both sides) and clustered p-value.
- ``adjust(p_values, method)``: Holm (default), Benjamini-Hochberg or none,
  over a family; ``None`` entries stay ``None`` and are not counted.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Hashable, Mapping, Optional, Sequence

import numpy as np
from scipy import sparse
from scipy import stats as sps

DRAWS = 1000
SEED = 0
CONFIDENCE = 0.95
ADJUST_METHODS = ("holm", "bh", "none")
TEST_NAME = "Durkalski clustered score test (cluster sums of the per-item difference, chi-square 1 df)"

DEGENERATE = "every bootstrap draw gives the same value"
TOO_FEW = "too few resamples give a defined value"


# --- draws ---------------------------------------------------------------------


def stream_for(name: Hashable) -> int:
    """A stable random stream per stratum name (crc32), so strata are independent and reproducible."""
    return zlib.crc32(str(name).encode("utf-8"))


def multinomial_counts(n: int, *, draws: int, seed: int, stream: int) -> np.ndarray:
    """How often each of ``n`` units is drawn in each bootstrap draw, shape (draws, n)."""
    if n == 0 or draws == 0:
        return np.zeros((draws, n))
    rng = np.random.default_rng([seed, stream])
    dtype = np.int32 if draws * n < 2**31 else np.int64
    idx = rng.integers(0, n, size=(draws, n), dtype=dtype)
    idx += (np.arange(draws, dtype=dtype) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=draws * n).reshape(draws, n).astype(np.float64)


@dataclass(frozen=True)
class ClusterDraws:
    """One stratum's bootstrap draws over its clusters."""

    clusters: np.ndarray  # sorted distinct cluster ids
    weights: np.ndarray  # (draws, n_clusters): times each cluster is drawn

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)

    @property
    def draws(self) -> int:
        return self.weights.shape[0]

    def index(self, cluster_of_unit: Sequence) -> np.ndarray:
        """Column of each unit's cluster (every cluster must be one of this stratum's)."""
        pos = np.searchsorted(self.clusters, np.asarray(cluster_of_unit))
        if len(pos) and (pos.max(initial=0) >= len(self.clusters) or np.any(self.clusters[pos] != np.asarray(cluster_of_unit))):
            raise ValueError("a unit's cluster is not among this stratum's clusters")
        return pos

    def expand(self, cluster_of_unit: Sequence) -> np.ndarray:
        """Unit weights (draws, n_units): each unit counts as often as its cluster was drawn."""
        return self.weights[:, self.index(cluster_of_unit)]

    def bind(self, cluster_of_unit: Sequence) -> "UnitDraws":
        """These draws attached to a list of units, for weighted sums of per-unit terms (vectors or matrices)."""
        return UnitDraws(self.weights, self.index(cluster_of_unit))

    def total(self, cluster_of_unit: Sequence, values: Sequence[float]) -> np.ndarray:
        """sum over units of weight x value, per draw (draws,): summed per cluster first, so it costs draws x clusters."""
        per_cluster = np.bincount(self.index(cluster_of_unit), weights=np.asarray(values, dtype=float), minlength=self.n_clusters)
        return self.weights @ per_cluster


@dataclass(frozen=True)
class UnitDraws:
    """Cluster draws bound to units: ``sum(per_unit)`` = (draws x units weights) @ per_unit, never built.

    Per-unit terms are summed per cluster first (draws x clusters is twelve
    times smaller than draws x items for RMGAP), which is what keeps every
    interval of a 40k-label report inside its time budget.
    """

    weights: np.ndarray  # (draws, n_clusters)
    column: np.ndarray  # (n_units,): each unit's cluster column

    @property
    def draws(self) -> int:
        return self.weights.shape[0]

    def per_cluster(self, per_unit):  # noqa: ANN001, ANN201 - (U,) or (U, V), dense or scipy.sparse
        n_clusters = self.weights.shape[1]
        if np.ndim(per_unit) == 1 and not hasattr(per_unit, "tocsr"):
            return np.bincount(self.column, weights=np.asarray(per_unit, dtype=float), minlength=n_clusters)
        n_units = per_unit.shape[0]
        agg = sparse.csr_matrix((np.ones(n_units), (self.column, np.arange(n_units))), shape=(n_clusters, n_units))
        out = agg @ per_unit
        return out.toarray() if hasattr(out, "toarray") else np.asarray(out)

    def sum(self, per_unit) -> np.ndarray:  # noqa: ANN001
        """Per-draw weighted sum: (draws,) for a vector, (draws, V) for a units x V matrix."""
        return self.weights @ self.per_cluster(per_unit)


def cluster_draws(clusters: Sequence, *, draws: int = DRAWS, seed: int = SEED, stream: int = 0) -> ClusterDraws:
    """Draws over the distinct values of ``clusters`` (duplicates collapse)."""
    ids = np.unique(np.asarray(clusters))
    return ClusterDraws(ids, multinomial_counts(len(ids), draws=draws, seed=seed, stream=stream))


def stratified_draws(
    cluster: Sequence, stratum: Sequence, *, draws: int = DRAWS, seed: int = SEED, offset: int = 0
) -> dict[Hashable, ClusterDraws]:
    """One ``ClusterDraws`` per stratum, clusters resampled within it; ``offset`` separates resamplings."""
    cluster = np.asarray(cluster)
    stratum = np.asarray(stratum, dtype=object)
    return {
        s: cluster_draws(cluster[stratum == s], draws=draws, seed=seed, stream=(stream_for(s) + offset) % 2**32)
        for s in dict.fromkeys(stratum.tolist())
    }


# --- intervals -------------------------------------------------------------------


def percentile(boot: np.ndarray, confidence: float = CONFIDENCE) -> Optional[list[float]]:
    """Percentile interval over the finite draws; None when more than half are undefined."""
    values = np.asarray(boot, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < values.size / 2:
        return None
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return [float(lo), float(hi)]


def wilson(successes: float, n: float, confidence: float = CONFIDENCE) -> Optional[list[float]]:
    """Wilson score interval for a proportion on ``n`` (possibly fractional, effective) trials."""
    if n <= 0:
        return None
    z = sps.norm.ppf(1 - (1 - confidence) / 2)
    p = min(max(successes / n, 0.0), 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def effective_n(trials: float, design_effect: Optional[float], n_clusters: int) -> tuple[float, str]:
    """n / design effect, or the number of clusters where the design effect is undefined.

    Never more than ``trials`` (a negative correlation does not buy information
    the fallback could not check).
    """
    if design_effect is None or not np.isfinite(design_effect) or design_effect <= 0:
        return float(n_clusters), "number of clusters (design effect undefined)"
    return float(min(trials, trials / design_effect)), "n / design effect"


def interval(
    point: Optional[float],
    boot: Optional[np.ndarray],
    *,
    confidence: float = CONFIDENCE,
    successes: Optional[float] = None,
    trials: Optional[float] = None,
    design_effect: Optional[float] = None,
    n_clusters: Optional[int] = None,
) -> dict:
    """``{"ci": [lo, hi] | None, "ci_method": ..., "ci_reason"?: ...}`` for one estimate.

    Percentile interval of the cluster bootstrap, widened to contain the point
    (a percentile interval of a skewed ratio can miss it). A proportion of 0
    or 1 whose draws are all equal (all correct, all wrong) gets a Wilson
    interval on the effective sample size instead of [1, 1]; so does one whose
    draws are all equal strictly inside (0, 1) (every cluster at the same
    proportion: a prompt-blind scorer's 3 of 12 per record, or two records
    that happen to agree), since no spread in a resample is no evidence of
    none. A non-proportion with equal draws keeps them, and says so.
    """
    if point is None or boot is None:
        return {"ci": None, "ci_method": None, "ci_reason": "no estimate" if point is None else "no bootstrap (draws=0)"}
    ci = percentile(boot, confidence)
    if ci is None:
        return {"ci": None, "ci_method": None, "ci_reason": TOO_FEW}
    method = "cluster bootstrap percentile"
    is_proportion = successes is not None and bool(trials)
    if ci[1] - ci[0] < 1e-12 and is_proportion:
        # All correct, all wrong, or every cluster at the same proportion (a
        # prompt-blind scorer's 3 of 12; two records that happen to agree): the
        # resampling saw no spread, which is no evidence of none. Wilson on the
        # effective sample size, which is narrow only when n is large.
        n_eff, how = effective_n(trials, design_effect, n_clusters or 0)
        fallback = wilson(successes / trials * n_eff, n_eff, confidence)
        if fallback is not None:
            ci, method = fallback, f"Wilson on the effective sample size ({how}: {n_eff:.1f}); the bootstrap was degenerate"
    elif ci[1] - ci[0] < 1e-12:
        method += f" ({DEGENERATE}: every cluster has the same value)"
    if not (ci[0] <= point <= ci[1]):
        ci = [min(ci[0], point), max(ci[1], point)]
        method += " (widened to contain the estimate)"
    return {"ci": ci, "ci_method": method}


def mean_of_strata_interval(point: Optional[float], boots: list[np.ndarray], cis: list[Optional[list[float]]], confidence: float) -> dict:
    """A plain mean of strata (RMGAP's Avg over domains): the strata's draws averaged draw by draw.

    Degenerate (every stratum's draws constant, e.g. all correct): the mean
    of the strata's own (fallback) interval bounds, so it is never [1, 1].
    """
    if point is None or not boots:
        return interval(point, None)
    out = interval(point, np.mean(np.vstack(boots), axis=0), confidence=confidence)
    ci = out["ci"]
    if ci is not None and ci[1] - ci[0] < 1e-12 and cis and all(c is not None for c in cis):
        lo, hi = float(np.mean([c[0] for c in cis])), float(np.mean([c[1] for c in cis]))
        out = {"ci": [min(lo, point), max(hi, point)], "ci_method": "mean of the domains' intervals (the bootstrap was degenerate)"}
    return out


# --- clustering ---------------------------------------------------------------------


def clustering(y: Sequence[float], cluster: Sequence) -> dict:
    """Within-cluster correlation (one-way ANOVA ICC) of ``y`` and the design effect.

    The design effect is how many times larger the variance of a mean is than
    with independent units: 1 + (m_w - 1) * ICC, m_w = sum m_c^2 / N (Kish's
    size-weighted cluster size). ``None`` with a reason where undefined (one
    cluster, no within-cluster replication, or no variation at all).
    """
    y = np.asarray(y, dtype=float)
    cluster = np.asarray(cluster)
    n = len(y)
    out: dict = {"icc": None, "design_effect": None, "n_units": int(n)}
    if n == 0:
        out.update(n_clusters=0, mean_cluster_size=None, reason="no units")
        return out
    _, codes, sizes = np.unique(cluster, return_inverse=True, return_counts=True)
    k = len(sizes)
    out.update(n_clusters=int(k), mean_cluster_size=float(n / k))
    if k < 2 or n - k < 1:
        out["reason"] = "needs two or more clusters and a cluster with two or more units"
        return out
    sums = np.bincount(codes, weights=y)
    means = sums / sizes
    grand = y.mean()
    msb = float((sizes * (means - grand) ** 2).sum() / (k - 1))
    msw = float(((y - means[codes]) ** 2).sum() / (n - k))
    m0 = (n - (sizes**2).sum() / n) / (k - 1)
    denom = msb + (m0 - 1) * msw
    if denom <= 0:
        out["reason"] = "every unit has the same value: the correlation is undefined"
        return out
    icc = (msb - msw) / denom
    m_w = float((sizes**2).sum() / n)
    out.update(icc=float(icc), design_effect=float(1 + (m_w - 1) * icc))
    return out


# --- tests ------------------------------------------------------------------------------


def clustered_score_test(difference: Sequence[float], cluster: Sequence) -> dict:
    """Two-sided p-value of H0: E[difference] = 0, with cluster sums as the independent units.

    Durkalski et al. (2003), "Analysis of clustered matched-pair data", Stat.
    Med. 22: X^2 = (sum s_c)^2 / sum s_c^2 ~ chi2(1). With a 0/1 pair per unit
    (h - s) this is their clustered McNemar test; the variance is the
    uncentred one, valid under the null.
    """
    d = np.asarray(difference, dtype=float)
    if d.size == 0:
        return {"statistic": None, "p_value": None, "reason": "no units to test", "test": TEST_NAME}
    _, codes = np.unique(np.asarray(cluster), return_inverse=True)
    s = np.bincount(codes, weights=d)
    num, den = float(s.sum()) ** 2, float((s**2).sum())
    if den == 0:
        return {"statistic": 0.0, "p_value": 1.0, "test": TEST_NAME, "note": "no cluster differs from the null: nothing against it"}
    x2 = num / den
    return {"statistic": x2, "p_value": float(sps.chi2.sf(x2, 1)), "test": TEST_NAME}


def unit_weights(
    draws: Mapping[Hashable, ClusterDraws], cluster: Sequence, stratum: Sequence
) -> Optional[np.ndarray]:
    """Weights (draws, n_units) for units from several strata: each column from its stratum's draws.

    A pooled statistic computed with these is the stratified bootstrap.
    None when there are no draws (``draws=0``).
    """
    cluster = np.asarray(cluster)
    stratum = np.asarray(stratum, dtype=object)
    if not draws:
        return None
    n_draws = next(iter(draws.values())).draws
    if n_draws == 0:
        return None
    out = np.zeros((n_draws, len(cluster)))
    for s in dict.fromkeys(stratum.tolist()):
        sel = stratum == s
        out[:, sel] = draws[s].expand(cluster[sel])
    return out


@dataclass(frozen=True)
class StrataDraws:
    """Several strata's ``UnitDraws`` over one list of units: a pooled (stratified) weighted sum."""

    parts: tuple  # ((unit positions, UnitDraws), ...)
    n_draws: int

    @property
    def draws(self) -> int:
        return self.n_draws

    def sum(self, per_unit) -> np.ndarray:  # noqa: ANN001
        per_unit = np.asarray(per_unit, dtype=float)
        return sum(u.sum(per_unit[pos]) for pos, u in self.parts)


def bind_strata(draws: Mapping[Hashable, ClusterDraws], cluster: Sequence, stratum: Sequence) -> Optional[StrataDraws]:
    """Like ``unit_weights`` without building draws x units: sums go through each stratum's clusters."""
    if not draws:
        return None
    n_draws = next(iter(draws.values())).draws
    if n_draws == 0:
        return None
    cluster = np.asarray(cluster)
    stratum = np.asarray(stratum, dtype=object)
    parts = []
    for s in dict.fromkeys(stratum.tolist()):
        pos = np.flatnonzero(stratum == s)
        parts.append((pos, draws[s].bind(cluster[pos])))
    return StrataDraws(tuple(parts), n_draws)


def _wsum(weights, values: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Per-draw weighted sum for a draws x units matrix, ``UnitDraws`` or ``StrataDraws``."""
    if isinstance(weights, np.ndarray):
        return weights @ values
    return weights.sum(values)


def paired_difference(
    a: Sequence[float], b: Sequence[float], cluster: Sequence, weights: Optional[np.ndarray], *, confidence: float = CONFIDENCE
) -> dict:
    """mean(a) - mean(b) on the same units: cluster-bootstrap interval (same draws for both) and clustered p.

    ``weights``: (draws, n_units) from ``ClusterDraws.expand`` / ``unit_weights``, or the
    cheaper ``ClusterDraws.bind`` / ``bind_strata``; None: no interval.
    """
    a, b, cluster = np.asarray(a, float), np.asarray(b, float), np.asarray(cluster)
    n = len(a)
    if n == 0:
        return {"difference": None, "ci": None, "p_value": None, "n_units": 0, "reason": "no units on both sides"}
    point = float(a.mean() - b.mean())
    w = weights
    boot = None
    if w is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = _wsum(w, a - b) / _wsum(w, np.ones(n))
    out = {"difference": point, "a": float(a.mean()), "b": float(b.mean()), "n_units": int(n),
           "n_clusters": int(len(np.unique(cluster)))}
    out.update(interval(point, boot, confidence=confidence))
    test = clustered_score_test(a - b, cluster)
    out.update(p_value=test["p_value"], statistic=test["statistic"], test=test["test"])
    if "note" in test:
        out["note"] = test["note"]
    return out


def versus_chance(
    successes: Sequence[float], trials: Sequence[float], chance: Sequence[float], cluster: Sequence,
    weights: Optional[np.ndarray], *, confidence: float = CONFIDENCE,
) -> dict:
    """sum(successes) / sum(trials) against the trial-weighted chance level, clustered.

    ``chance`` is per unit (a best-of-4 item 0.25, a pair 0.5, best-of-N 1/N):
    the same call serves every benchmark format.
    """
    s, t, c = (np.asarray(x, dtype=float) for x in (successes, trials, chance))
    cluster = np.asarray(cluster)
    if t.sum() <= 0:
        return {"value": None, "chance": None, "ci": None, "p_value": None, "n_units": int(len(t)), "reason": "no trials"}
    point = float(s.sum() / t.sum())
    level = float((c * t).sum() / t.sum())
    w = weights
    boot = None
    if w is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = _wsum(w, s) / _wsum(w, t)
    info = clustering(s / np.where(t > 0, t, 1), cluster)
    out = {"value": point, "chance": level, "difference": point - level, "n_units": int(len(t)),
           "n_clusters": int(len(np.unique(cluster)))}
    out.update(interval(point, boot, confidence=confidence, successes=float(s.sum()), trials=float(t.sum()),
                        design_effect=info["design_effect"], n_clusters=out["n_clusters"]))
    test = clustered_score_test(s - c * t, cluster)
    out.update(p_value=test["p_value"], statistic=test["statistic"], test=test["test"])
    return out


# --- multiplicity -----------------------------------------------------------------------


def adjust(p_values: Sequence[Optional[float]], method: str = "holm") -> list[Optional[float]]:
    """Family-wise (Holm) or false-discovery (Benjamini-Hochberg) adjusted p-values.

    ``None`` (an untestable member) is skipped: it is not a hypothesis tested.
    """
    if method not in ADJUST_METHODS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUST_METHODS)}, not {method!r}")
    idx = [i for i, p in enumerate(p_values) if p is not None]
    out: list[Optional[float]] = [None] * len(p_values)
    if not idx:
        return out
    p = np.array([p_values[i] for i in idx], dtype=float)
    m = len(p)
    if method == "none":
        adj = p
    elif method == "holm":
        order = np.argsort(p, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    else:
        adj = sps.false_discovery_control(p, method="bh")
    for i, v in zip(idx, adj):
        out[i] = float(v)
    return out


def adjust_family(entries: Mapping[Hashable, dict], method: str = "holm") -> None:
    """Write ``p_adjusted`` (and ``adjust``) into each entry of a family, in place."""
    keys = list(entries)
    adjusted = adjust([entries[k].get("p_value") for k in keys], method)
    for k, v in zip(keys, adjusted):
        entries[k]["p_adjusted"] = v
        entries[k]["adjust"] = method
        if v is None and entries[k].get("p_value") is None:
            entries[k].setdefault("p_adjusted_reason", entries[k].get("reason") or "no p-value to adjust")
