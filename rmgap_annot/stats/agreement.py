"""Inter-annotator agreement: Krippendorff's alpha with bootstrap intervals, kappas.

Why not call ``krippendorff.alpha`` 1,000 times per interval: on the full
benchmark (13,164 units) that takes minutes. Alpha depends on the data only
through sums of per-unit coincidence matrices, so resampling units is the
same as re-weighting those per-unit terms: one matrix product per domain
gives all 1,000 bootstrap alphas. ``alpha_from_reliability_data`` runs the
same fast path on a raters x units matrix; the tests check it equals
``krippendorff.alpha`` on random data, and the report uses nothing else.

Conventions (the README's analytics section repeats them):
- units are items; values are response keys coded as ints (the code is global
  per key string, which is harmless: nominal values are compared only within
  a unit, and the marginals are per key string as ``krippendorff`` counts them);
- "Can't decide" is a missing value (counted and reported, never a value);
- a unit with fewer than two values contributes nothing, exactly as in
  ``krippendorff.alpha``;
- degenerate data (no unit with two values, every paired value the same)
  gives ``None`` with a reason, never a crash or a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
from scipy import sparse

from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED  # noqa: F401 (re-exported: callers read them here)

NO_PAIRS = "no item has two or more usable labels"
ONE_VALUE = "every paired label has the same value, so alpha is undefined"
DEGENERATE_CI = "every resample gives the same alpha (one resampling group, or no item with a disagreement to draw)"


# --- resampling -------------------------------------------------------------


def resample_weights(n_units: int, *, draws: int = DRAWS, seed: int = SEED, stream: int = 0) -> np.ndarray:
    """How often each unit appears in each bootstrap draw, shape (draws, n_units).

    ``stream`` separates independent resamplings (one per domain, items vs
    groups) so adding a domain never changes another domain's interval.
    """
    return bs.multinomial_counts(n_units, draws=draws, seed=seed, stream=stream)


def percentile_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> Optional[list[float]]:
    """Percentile interval over the finite draws; None when too few are finite.

    Draws where the statistic is undefined (e.g. a resample with one value
    only) are dropped; more than half undefined means no honest interval.
    """
    return bs.percentile(values, confidence)


# --- value counts -------------------------------------------------------------


def value_counts_matrix(unit_idx: np.ndarray, value_code: np.ndarray, *, n_units: int, n_values: int) -> sparse.csr_matrix:
    """Units x values counts (how many labels gave value v to unit u)."""
    unit_idx = np.asarray(unit_idx, dtype=np.int64)
    value_code = np.asarray(value_code, dtype=np.int64)
    data = np.ones(unit_idx.size, dtype=np.float64)
    return sparse.coo_matrix((data, (unit_idx, value_code)), shape=(n_units, max(n_values, 1))).tocsr()


@dataclass
class NominalStats:
    """Per-unit sufficient statistics of nominal alpha.

    ``disagreement``: each unit's off-diagonal coincidence mass,
    (m^2 - sum n_v^2) / (m - 1); ``pairable``: the value counts of units with
    at least two values (what the marginals n_v are built from).
    """

    disagreement: np.ndarray  # (U,)
    pairable: sparse.csr_matrix  # (U, V)
    n_pairable_units: int


def nominal_stats(counts: sparse.csr_matrix) -> NominalStats:
    m = np.asarray(counts.sum(axis=1)).ravel()
    sq = np.asarray(counts.multiply(counts).sum(axis=1)).ravel()
    ok = m >= 2
    disagreement = np.zeros_like(m)
    disagreement[ok] = (m[ok] ** 2 - sq[ok]) / (m[ok] - 1)
    pairable = sparse.diags(ok.astype(np.float64)) @ counts
    return NominalStats(disagreement, sparse.csr_matrix(pairable), int(ok.sum()))


def _weighted_rows(weights: np.ndarray, matrix: sparse.csr_matrix) -> np.ndarray:
    """weights (B, U) @ matrix (U, V): dense BLAS for the usual four keys, sparse for many."""
    if matrix.shape[1] <= 256:
        return weights @ matrix.toarray()
    return np.asarray(matrix.T @ np.ascontiguousarray(weights.T)).T


def _wsum(weights, per_unit):  # noqa: ANN001, ANN202
    """Per-draw weighted sums of per-unit terms: ``UnitDraws`` (record clusters) or a plain draws x units matrix."""
    if isinstance(weights, bs.UnitDraws):
        return weights.sum(per_unit)
    if sparse.issparse(per_unit):
        return _weighted_rows(weights, per_unit)
    return weights @ per_unit


def nominal_alpha_from_sums(disagreement: np.ndarray, n_v: np.ndarray) -> np.ndarray:
    """Alpha from total observed disagreement and marginals; vectorised over draws.

    ``disagreement`` shape (...,), ``n_v`` shape (..., V). NaN where undefined.
    """
    n_v = np.asarray(n_v, dtype=np.float64)
    n = n_v.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (n**2 - (n_v**2).sum(axis=-1)) / (n - 1)
        out = 1 - np.asarray(disagreement, dtype=np.float64) / expected
    return np.where((n > 1) & (expected > 0), out, np.nan)


def ordinal_coincidences(counts: np.ndarray) -> np.ndarray:
    """Per-unit coincidence matrices, flattened: shape (U, V*V)."""
    counts = np.asarray(counts, dtype=np.float64)
    u, v = counts.shape
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    outer[:, np.arange(v), np.arange(v)] -= counts
    scale = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    return (outer * scale[:, None, None]).reshape(u, v * v)


def ordinal_alpha_from_coincidences(o: np.ndarray) -> np.ndarray:
    """Ordinal alpha from summed coincidence matrices (..., V, V), as krippendorff defines it.

    The ordinal distance depends on the marginals, so it is rebuilt for every
    draw (cheap: V is the 5-point scale).
    """
    o = np.asarray(o, dtype=np.float64)
    v = o.shape[-1]
    n_v = o.sum(axis=-2)
    n = n_v.sum(axis=-1)
    idx = np.arange(v)
    lo = np.minimum(idx[:, None], idx[None, :])
    hi = np.maximum(idx[:, None], idx[None, :])
    cum = np.concatenate([np.zeros(n_v.shape[:-1] + (1,)), np.cumsum(n_v, axis=-1)], axis=-1)
    between = cum[..., hi + 1] - cum[..., lo]
    d = (between - (n_v[..., :, None] + n_v[..., None, :]) / 2) ** 2
    eye = np.eye(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (n_v[..., :, None] * n_v[..., None, :] - n_v[..., None, :] * eye) / (n - 1)[..., None, None]
        observed = (o * d).sum(axis=(-2, -1))
        expected = (e * d).sum(axis=(-2, -1))
        out = 1 - observed / expected
    return np.where((n > 1) & (expected > 0), out, np.nan)


def alpha_from_reliability_data(reliability_data, *, level_of_measurement: str, value_domain: Sequence | None = None) -> float:
    """Alpha of a raters x units matrix (np.nan missing) through this module's fast path.

    Same inputs and result as ``krippendorff.alpha`` (numeric values), but
    NaN instead of an exception when alpha is undefined.
    """
    data = np.asarray(reliability_data, dtype=np.float64)
    present = ~np.isnan(data)
    domain = np.unique(data[present]) if value_domain is None else np.asarray(value_domain, dtype=np.float64)
    raters, units = np.nonzero(present)
    codes = np.searchsorted(domain, data[present])
    counts = value_counts_matrix(units, codes, n_units=data.shape[1], n_values=len(domain))
    if level_of_measurement == "nominal":
        st = nominal_stats(counts)
        return float(nominal_alpha_from_sums(st.disagreement.sum(), np.asarray(st.pairable.sum(axis=0)).ravel()))
    if level_of_measurement == "ordinal":
        o = ordinal_coincidences(counts.toarray()).sum(axis=0).reshape(len(domain), len(domain))
        return float(ordinal_alpha_from_coincidences(o))
    raise ValueError(f"level_of_measurement must be 'nominal' or 'ordinal', not {level_of_measurement!r}")


# --- alpha per domain with intervals -------------------------------------------


@dataclass
class DomainUnits:
    """One domain's labelled units and their labels' values.

    ``unit_idx`` indexes the domain's unit list (the columns of its bootstrap
    weights); ``value_code`` is the global int code of each usable label.
    """

    n_units: int
    unit_idx: np.ndarray
    value_code: np.ndarray
    n_missing: int = 0  # labels without a value ("Can't decide", no rating)


def _result(alpha: float, boot: Optional[np.ndarray], n_items: int, n_values: int, n_missing: int, confidence: float) -> dict:
    out: dict = {"alpha": None, "ci": None, "n_items": int(n_items), "n_values": int(n_values), "n_missing": int(n_missing)}
    if n_items == 0:
        out["reason"] = NO_PAIRS
        return out
    if not np.isfinite(alpha):
        out["reason"] = ONE_VALUE
        return out
    out["alpha"] = float(alpha)
    if boot is not None:
        iv = bs.interval(float(alpha), boot, confidence=confidence)
        out["ci"], out["ci_method"] = iv["ci"], iv["ci_method"]
        if out["ci"] is None:
            out["ci_reason"] = "too few resamples give a defined alpha"
        elif out["ci"][1] - out["ci"][0] < 1e-12:  # noqa: PLR2004
            # Every resample gave the same alpha: one resampling group, or every item unanimous (alpha 1,
            # and no draw can hold a disagreement). A zero-width interval would claim a certainty that
            # such data do not give.
            out["ci"], out["ci_method"] = None, None
            out["ci_reason"] = DEGENERATE_CI
    else:
        out["ci_reason"] = "no bootstrap (draws=0)"
    return out


def alpha_by_domain(
    units: Mapping[str, DomainUnits],
    *,
    level: str,
    n_values: int,
    weights: Mapping[str, "np.ndarray | bs.UnitDraws"] | None = None,
    confidence: float = CONFIDENCE,
) -> dict[str, dict]:
    """Alpha, its interval and counts per domain plus ``All`` (pooled units).

    ``weights[d]``: domain ``d``'s draws, either unit weights (draws x units)
    or ``stats.bootstrap.UnitDraws`` (the report: record-cluster draws bound
    to items, so whole records are resampled and per-item terms are summed
    per record before weighting). ``All``'s interval sums the domains'
    draws (stratified): the domain mix stays that of the benchmark.
    """
    out: dict[str, dict] = {}
    total_obs = 0.0
    total_boot_obs = None
    total_stat = None
    total_boot_stat = None
    n_items_all = n_values_all = n_missing_all = 0
    for domain, du in units.items():
        counts = value_counts_matrix(du.unit_idx, du.value_code, n_units=du.n_units, n_values=n_values)
        w = weights.get(domain) if weights is not None else None
        if level == "nominal":
            st = nominal_stats(counts)
            obs = st.disagreement.sum()
            stat = np.asarray(st.pairable.sum(axis=0)).ravel()
            alpha = nominal_alpha_from_sums(obs, stat)
            boot_obs = boot_stat = boot = None
            if w is not None:
                boot_obs = _wsum(w, st.disagreement)
                boot_stat = _wsum(w, st.pairable)
                boot = nominal_alpha_from_sums(boot_obs, boot_stat)
            n_items = st.n_pairable_units
            n_vals = int(stat.sum())
        elif level == "ordinal":
            per_unit = ordinal_coincidences(counts.toarray())
            obs = 0.0
            stat = per_unit.sum(axis=0)
            alpha = ordinal_alpha_from_coincidences(stat.reshape(n_values, n_values))
            boot_obs = boot_stat = boot = None
            if w is not None:
                boot_stat = _wsum(w, per_unit)
                boot = ordinal_alpha_from_coincidences(boot_stat.reshape(-1, n_values, n_values))
            m = np.asarray(counts.sum(axis=1)).ravel()
            n_items = int((m >= 2).sum())
            n_vals = int(m[m >= 2].sum())
        else:
            raise ValueError(f"level must be 'nominal' or 'ordinal', not {level!r}")
        out[domain] = _result(float(alpha), boot, n_items, n_vals, du.n_missing, confidence)
        n_items_all += n_items
        n_values_all += n_vals
        n_missing_all += du.n_missing
        total_obs += obs
        total_stat = stat if total_stat is None else total_stat + stat
        if w is not None:
            if boot_obs is not None:
                total_boot_obs = boot_obs if total_boot_obs is None else total_boot_obs + boot_obs
            total_boot_stat = boot_stat if total_boot_stat is None else total_boot_stat + boot_stat
    if total_stat is None:
        out["All"] = _result(float("nan"), None, 0, 0, 0, confidence)
        return out
    if level == "nominal":
        alpha = nominal_alpha_from_sums(total_obs, total_stat)
        boot = nominal_alpha_from_sums(total_boot_obs, total_boot_stat) if total_boot_stat is not None else None
    else:
        alpha = ordinal_alpha_from_coincidences(total_stat.reshape(n_values, n_values))
        boot = (
            ordinal_alpha_from_coincidences(total_boot_stat.reshape(-1, n_values, n_values))
            if total_boot_stat is not None
            else None
        )
    out["All"] = _result(float(alpha), boot, n_items_all, n_values_all, n_missing_all, confidence)
    return out


# --- simpler agreement figures ---------------------------------------------------


def percent_agreement(counts: sparse.csr_matrix) -> dict:
    """Mean over units (with two or more values) of the share of agreeing label pairs."""
    m = np.asarray(counts.sum(axis=1)).ravel()
    sq = np.asarray(counts.multiply(counts).sum(axis=1)).ravel()
    ok = m >= 2
    if not ok.any():
        return {"value": None, "n_items": 0, "reason": NO_PAIRS}
    share = (sq[ok] - m[ok]) / (m[ok] * (m[ok] - 1))
    return {"value": float(share.mean()), "n_items": int(ok.sum())}


def fleiss_kappa(counts: sparse.csr_matrix) -> dict:
    """Fleiss' kappa, defined only when every labelled unit has the same number of values."""
    m = np.asarray(counts.sum(axis=1)).ravel()
    labelled = m > 0
    if not labelled.any():
        return {"kappa": None, "n_items": 0, "reason": "no item has a usable label"}
    sizes = np.unique(m[labelled])
    if sizes.size > 1:
        return {
            "kappa": None,
            "n_items": int(labelled.sum()),
            "reason": f"items have between {int(sizes.min())} and {int(sizes.max())} usable labels; Fleiss' kappa needs the same number on every item",
        }
    k = float(sizes[0])
    if k < 2:
        return {"kappa": None, "n_items": int(labelled.sum()), "reason": "every item has one usable label"}
    c = counts[np.flatnonzero(labelled)]
    n_items = c.shape[0]
    p_i = (np.asarray(c.multiply(c).sum(axis=1)).ravel() - k) / (k * (k - 1))
    p_j = np.asarray(c.sum(axis=0)).ravel() / (n_items * k)
    p_e = float((p_j**2).sum())
    if p_e >= 1:
        return {"kappa": None, "n_items": n_items, "n_raters": int(k), "reason": ONE_VALUE}
    return {"kappa": float((p_i.mean() - p_e) / (1 - p_e)), "n_items": n_items, "n_raters": int(k)}


def cohen_kappa(x: np.ndarray, y: np.ndarray, n_values: int) -> float:
    """Cohen's kappa of two coders' int codes on the same units (NaN when undefined).

    The same number as ``sklearn.metrics.cohen_kappa_score`` (the tests check
    it), without its per-call validation: the matrix has one entry per pair
    of annotators, and the report must stay fast with dozens of them.
    """
    confusion = np.bincount(x * n_values + y, minlength=n_values * n_values).reshape(n_values, n_values).astype(np.float64)
    n = confusion.sum()
    if n == 0:
        return float("nan")
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n
    w = 1 - np.eye(n_values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(1 - (w * confusion).sum() / (w * expected).sum())


def cohen_kappa_matrix(annotator: Sequence, unit: Sequence, value: Sequence, *, min_shared: int = 2) -> dict:
    """Pairwise Cohen's kappa between annotators on the units both labelled.

    ``None`` (with the shared count) where they share fewer than
    ``min_shared`` units or kappa is undefined (one value only).
    """
    names_arr, a_codes = np.unique(np.asarray(annotator, dtype=object).astype(str), return_inverse=True)
    _, u_codes = np.unique(np.asarray(unit), return_inverse=True)
    v_names, v_codes = np.unique(np.asarray(value, dtype=object).astype(str), return_inverse=True)
    names = names_arr.tolist()
    n, n_units, n_values = len(names), (u_codes.max() + 1 if len(u_codes) else 0), max(len(v_names), 1)
    table = np.full((n, n_units), -1, dtype=np.int64)
    table[a_codes, u_codes] = v_codes
    kappa: list[list[Optional[float]]] = [[None] * n for _ in range(n)]
    reasons: list[list[Optional[str]]] = [[None] * n for _ in range(n)]
    shared: list[list[int]] = [[0] * n for _ in range(n)]
    has = table >= 0
    for i in range(n):
        shared[i][i] = int(has[i].sum())
        kappa[i][i] = 1.0 if shared[i][i] else None
        if not shared[i][i]:
            reasons[i][i] = "no decided label"
        for j in range(i + 1, n):
            both = has[i] & has[j]
            k_shared = int(both.sum())
            shared[i][j] = shared[j][i] = k_shared
            if k_shared < min_shared:
                reasons[i][j] = reasons[j][i] = f"{k_shared} shared items (kappa needs {min_shared})"
                continue
            k = cohen_kappa(table[i, both], table[j, both], n_values)
            if np.isfinite(k):
                kappa[i][j] = kappa[j][i] = k
            else:
                reasons[i][j] = reasons[j][i] = "both gave one and the same value on every shared item: chance agreement is 1, kappa undefined"
    return {"annotators": names, "kappa": kappa, "reasons": reasons, "n_shared": shared, "min_shared": min_shared}


def leave_one_out_alpha(unit_idx: np.ndarray, value_code: np.ndarray, rater: np.ndarray, *, n_units: int, n_values: int) -> dict:
    """Nominal alpha without each rater in turn: rater code -> alpha (NaN if undefined)."""
    out = {}
    for r in np.unique(rater):
        keep = rater != r
        counts = value_counts_matrix(unit_idx[keep], value_code[keep], n_units=n_units, n_values=n_values)
        st = nominal_stats(counts)
        out[int(r)] = float(nominal_alpha_from_sums(st.disagreement.sum(), np.asarray(st.pairable.sum(axis=0)).ravel()))
    return out
