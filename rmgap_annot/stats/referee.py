"""The analyses the RMGAP referee asked for (issue 11, item 7), per domain, record-clustered.

Why these three: RMGAP's claim is that reward models do not follow a
user's stated preference. A reader must be able to see (1) whether a
scorer's errors lean towards a style (verbose, formal...) whatever the
request asks, where people follow the request (``style_profiles``); (2)
whether the two machine-written paraphrases of each tailored prompt are
as clear to people as the base prompt (``base_vs_rewrite``); (3) whether
human accuracy really differs between domains, or the per-domain figures
only look different (``between_domains``).

Every function here is pure: it takes ``human_metrics.item_summary``'s
frame, the report's record draws (``human_metrics.record_draws``: whole
records resampled within each domain; ``All`` sums the domains' draws, a
stratified bootstrap), each record's style profiles (``load_styles``, the
one database read) and each scorer's top pick per labelled item
(``comparison.scorer_top_picks``). Scorers are compared on the labelled items only, so the
human and scorer columns are computed on one set of items.

Tests. Everything that is a mean of per-unit differences with mean zero
under the null (wrong picks against uniform, base minus rewrite per group)
uses Durkalski's clustered score test (``bootstrap.clustered_score_test``,
vectorised here over many columns as ``score_tests``). The pick-alpha
difference is not such a mean, so its p-value is the percentile-bootstrap
one (twice the share of record draws on the far side of zero). Between
domains: a Cochran-type homogeneity chi-square with each domain's
cluster-robust variance around the pooled proportion (domains are disjoint
sets of records, so independent), and a first-order Rao-Scott corrected
Pearson chi-square as a check.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from scipy import stats as sps
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs

ALL = "All"
DIMENSIONS = ("Formality", "Conciseness", "Technicality", "Objectivity", "Structural_Coherence")
# RMGAP's five-level scales, low to high. Levels a file uses beyond these are
# kept (sorted after them) but make that dimension's ordinal lean undefined.
LEVEL_ORDER = {
    "Formality": ("casual", "informal", "neutral", "formal", "highly_formal"),
    "Conciseness": ("terse", "concise", "moderate", "detailed", "verbose"),
    "Technicality": ("layman", "accessible", "moderate", "technical", "highly_specialized"),
    "Objectivity": ("highly_subjective", "subjective", "balanced", "objective", "strictly_objective"),
    "Structural_Coherence": ("fragmented", "loose", "moderate", "structured", "rigorous"),
}
MIN_ITEMS = 10  # fewer items (or wrong picks) in a cell: too few for a proportion and its interval
MIN_RECORDS = 3  # a record bootstrap over one or two records says nothing
HUMAN = "human"
BOOTSTRAP_P = "percentile bootstrap (twice the share of record draws on the far side of zero)"
HOMOGENEITY_TEST = (
    "clustered Wald homogeneity chi-square: sum over domains of (p_d - p_w)^2 / v_d, v_d the cluster-robust "
    "(linearisation) variance of domain d's proportion over its records, p_w the inverse-variance weighted mean; "
    "K - 1 df (domains are disjoint sets of records, so independent)"
)
RAO_SCOTT_TEST = "first-order Rao-Scott: Pearson chi-square of the domain x correct table divided by the mean design effect"


# --- inputs ---------------------------------------------------------------------------------------


def map_styles(style: Mapping[str, Any], responses: Sequence[tuple[str, int]]) -> dict[str, dict[str, str]]:
    """A record's ``style_assignments`` as response key -> {dimension: level}.

    ``rN`` belongs to the record's N-th response: to the response keyed
    ``responseN`` when there is one, else to the response at position N-1
    (so files whose keys are not ``response1..4`` still map). A key that
    names a response directly maps to it. Anything else is ignored.
    """
    keys = {k for k, _ in responses}
    by_position = {p: k for k, p in responses}
    out: dict[str, dict[str, str]] = {}
    for name, profile in (style or {}).items():
        if not isinstance(profile, dict):
            continue
        key = None
        if name in keys:
            key = name
        else:
            m = re.fullmatch(r"r(\d+)", str(name))
            if m:
                n = int(m.group(1))
                key = f"response{n}" if f"response{n}" in keys else by_position.get(n - 1)
        if key is not None:
            out[key] = {str(d): str(v) for d, v in profile.items() if v is not None}
    return out


_STYLE_CACHE: "dict[tuple, dict]" = {}


def load_styles(*, engine: Engine, benchmark_id: int) -> dict[str, dict[str, dict[str, str]]]:
    """record_id -> response key -> {dimension: level} (records without profiles are absent).

    A benchmark's records never change after import, so the parsed profiles
    are kept per (database, benchmark, file hash, record count): a report
    rebuilt after every new label does not re-parse 1,097 JSON documents.
    Callers must not mutate the result.
    """
    from rmgap_annot.models import Benchmark  # noqa: PLC0415

    with session_scope(engine) as session:
        bench = session.get(Benchmark, benchmark_id)
        key = (str(engine.url), benchmark_id, bench.file_hash if bench else None, bench.n_records if bench else None)
    if key in _STYLE_CACHE:
        return _STYLE_CACHE[key]
    out = _read_styles(engine, benchmark_id)
    if len(_STYLE_CACHE) >= 8:
        _STYLE_CACHE.pop(next(iter(_STYLE_CACHE)))
    _STYLE_CACHE[key] = out
    return out


def _read_styles(engine: Engine, benchmark_id: int) -> dict[str, dict[str, dict[str, str]]]:
    with session_scope(engine) as session:
        from rmgap_annot.models import Record, Response  # noqa: PLC0415

        records = session.execute(
            select(Record.id, Record.record_id, Record.style_json).where(Record.benchmark_id == benchmark_id)
        ).all()
        responses = session.execute(
            select(Response.record_pk, Response.key, Response.position)
            .join(Record, Record.id == Response.record_pk)
            .where(Record.benchmark_id == benchmark_id)
        ).all()
    by_record: dict[int, list[tuple[str, int]]] = {}
    for pk, key, pos in responses:
        by_record.setdefault(pk, []).append((key, pos))
    out = {}
    for pk, rid, text in records:
        try:
            style = json.loads(text or "{}")
        except ValueError:
            continue
        mapped = map_styles(style if isinstance(style, dict) else {}, by_record.get(pk, []))
        if mapped:
            out[rid] = mapped
    return out


# --- shared numerics --------------------------------------------------------------------------------


def score_tests(cluster_sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Durkalski's clustered score test for many columns at once: (X^2, p) per column.

    ``cluster_sums``: clusters x columns, each column a per-cluster sum of a
    per-unit difference with mean zero under the null. Exactly
    ``bootstrap.clustered_score_test`` column by column (a test checks it);
    a column with every cluster sum zero gets X^2 = 0, p = 1 there too.
    """
    s = np.asarray(cluster_sums, dtype=float)
    num = s.sum(axis=0) ** 2
    den = (s**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x2 = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return x2, sps.chi2.sf(x2, 1)


def _bootstrap_p(boot: Optional[np.ndarray]) -> Optional[float]:
    if boot is None:
        return None
    b = np.asarray(boot, dtype=float)
    b = b[np.isfinite(b)]
    if b.size == 0:
        return None
    return float(min(1.0, 2 * min((b <= 0).mean(), (b >= 0).mean())))


class _Domain:
    """One domain's (or All's) units with the record draws to resample them."""

    def __init__(self, rows: pd.DataFrame, draws: Optional[Mapping[str, bs.ClusterDraws]], name: str):
        self.name = name
        self.rows = rows
        self.rec = rows["record_id"].to_numpy(dtype=object)
        codes, self.records = pd.factorize(self.rec)
        self.codes = codes
        self.n_domains = int(rows["domain"].nunique())
        n = len(rows)
        self.agg = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(len(self.records), n))
        self._draws = draws
        self._weights: Any = False  # built on first use: All usually sums its domains' draws instead

    @property
    def weights(self) -> Optional[np.ndarray]:
        """(draws, records): how often each record is drawn, from its own domain's draws."""
        if self._weights is False:
            self._weights = None
            draws, n = self._draws, len(self.rows)
            if draws and n:
                first_dom = pd.Series(self.rows["domain"].to_numpy(dtype=object)).groupby(self.codes).first().to_numpy()
                if all(d in draws for d in set(first_dom.tolist())):
                    w = np.zeros((next(iter(draws.values())).draws, len(self.records)), dtype=np.float32)
                    for d in set(first_dom.tolist()):
                        sel = np.flatnonzero(first_dom == d)
                        w[:, sel] = draws[d].expand(np.asarray(self.records)[sel])
                    self._weights = w if w.shape[0] else None
        return self._weights

    @property
    def n_records(self) -> int:
        return len(self.records)

    def per_record(self, matrix: np.ndarray) -> np.ndarray:
        """Units x K -> records x K (or a vector -> records)."""
        out = self.agg @ matrix
        return out.toarray() if hasattr(out, "toarray") else np.asarray(out)

    def boot(self, per_record: np.ndarray) -> Optional[np.ndarray]:
        """Per-draw sums of per-record terms.

        In float32: draw counts and the integer sums (items, labels, correct)
        are exact there, so a degenerate column (every item right) stays
        exactly degenerate, and the matrix product, the section's main cost,
        takes half the time.
        """
        if self.weights is None:
            return None
        return (self.weights @ np.asarray(per_record, dtype=np.float32)).astype(np.float64)


def _boot(dom: "_Domain", pr: np.ndarray, name: str, boots: dict) -> Optional[np.ndarray]:
    """Per-draw sums; All (always last) sums its domains' draws of the same columns: the stratified bootstrap, computed once."""
    if name == ALL and boots and all(b is not None for b in boots.values()) and len(boots) == dom.n_domains:
        return sum(boots.values())
    bt = dom.boot(pr)
    if name != ALL:
        boots[name] = bt
    return bt


class _Intervals:
    """Intervals requested one by one, computed in one batch (hundreds of style cells per domain).

    Exactly ``bootstrap.interval``: a column whose draws are all finite and
    not degenerate gets its percentile interval from one vectorised
    ``np.percentile`` (widened to contain the estimate, as there); every
    other column goes through ``bootstrap.interval`` itself (Wilson
    fallback, undefined draws).
    """

    def __init__(self, confidence: float):
        self.confidence = confidence
        self.pending: list[tuple[dict, float, np.ndarray, dict]] = []

    def add(self, target: dict, point: float, boot: Optional[np.ndarray], **extra) -> None:  # noqa: ANN003
        if boot is None:
            self._put(target, bs.interval(point, None, confidence=self.confidence))
        else:
            self.pending.append((target, point, boot, extra))

    @staticmethod
    def _put(target: dict, iv: dict) -> None:
        target.update(ci=iv["ci"], ci_method=iv["ci_method"])
        if iv["ci"] is None:
            target["ci_reason"] = iv.get("ci_reason")

    def flush(self) -> None:
        if not self.pending:
            return
        boots = np.column_stack([b for _, _, b, _ in self.pending])
        finite = np.isfinite(boots).all(axis=0)
        tail = (1 - self.confidence) / 2 * 100
        lohi = np.full((2, boots.shape[1]), np.nan)
        if finite.any():
            lohi[:, finite] = np.percentile(boots[:, finite], [tail, 100 - tail], axis=0)
        for k, (target, point, boot, extra) in enumerate(self.pending):
            lo, hi = lohi[:, k]
            if finite[k] and hi - lo >= 1e-12:
                iv = {"ci": [float(lo), float(hi)], "ci_method": "cluster bootstrap percentile"}
                if not (lo <= point <= hi):
                    iv = {"ci": [float(min(lo, point)), float(max(hi, point))],
                          "ci_method": "cluster bootstrap percentile (widened to contain the estimate)"}
            else:
                iv = bs.interval(point, boot, confidence=self.confidence, **extra)
            self._put(target, iv)
        self.pending = []


def _estimate(num: float, den: float, boot_num, boot_den, *, n_records: int, n_items: int, proportion: bool = True,  # noqa: ANN001
              min_items: int = MIN_ITEMS, what: str = "items", confidence: float = bs.CONFIDENCE,
              intervals: Optional[_Intervals] = None) -> dict:
    """A ratio of sums with its record-clustered interval, or None with a reason when too thin."""
    out: dict[str, Any] = {"value": None, "ci": None, f"n_{what}": int(n_items), "n_records": int(n_records)}
    if n_items == 0 or den <= 0:
        out["reason"] = f"no {what}"
        return out
    if n_items < min_items or n_records < MIN_RECORDS:
        out["reason"] = f"too few {what} ({n_items} {what} from {n_records} records; needs {min_items} from {MIN_RECORDS})"
        return out
    value = float(num / den)
    boot = None
    if boot_num is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = boot_num / boot_den
    extra = {"successes": float(num), "trials": float(den), "n_clusters": int(n_records)} if proportion else {}
    out["value"] = value
    batch = intervals if intervals is not None else _Intervals(confidence)
    batch.add(out, value, boot, **extra)
    if intervals is None:
        batch.flush()
    return out


def _units(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The item rows per domain plus All (only domains with labelled items)."""
    dom = summary["domain"].to_numpy(dtype=object)
    out = {d: summary[dom == d] for d in DOMAINS if (dom == d).any()}
    out[ALL] = summary[np.isin(dom, DOMAINS)]
    return out


def _domains(summary: pd.DataFrame, record_draws: Mapping[str, bs.ClusterDraws]) -> dict[str, "_Domain"]:
    """Each domain's (and All's) units bound to the record draws: built once, shared by the three analyses."""
    return {d: _Domain(part, record_draws, d) for d, part in _units(summary).items()}


# --- style profiles -----------------------------------------------------------------------------------


def _levels(styles: Mapping[str, Mapping[str, Mapping[str, str]]]) -> dict[str, list[str]]:
    seen: dict[str, set] = {d: set() for d in DIMENSIONS}
    for profiles in styles.values():
        for profile in profiles.values():
            for dim, level in profile.items():
                if dim in seen:
                    seen[dim].add(level)
    out = {}
    for dim in DIMENSIONS:
        known = [lv for lv in LEVEL_ORDER[dim] if lv in seen[dim]]
        out[dim] = known + sorted(seen[dim] - set(known))
    return out


def style_profiles(
    summary: pd.DataFrame, record_draws: Mapping[str, bs.ClusterDraws], styles: Mapping[str, Mapping[str, Mapping[str, str]]],
    picks: Mapping[str, Mapping[int, Optional[str]]], *, confidence: float = bs.CONFIDENCE, adjust: str = "holm",
    domains: Optional[Mapping[str, "_Domain"]] = None, votes: Optional[tuple] = None,
) -> dict:
    """``referee.style_profiles``: accuracy by the winner's level, and where wrong picks go.

    Per domain and All, per dimension and level of the *winner*: human BoN
    (plurality pick = winner), human label accuracy and each scorer's BoN
    (unique top pick = winner) on the same labelled items. Per dimension,
    among wrong picks (each decided human label that is not the winner, and
    each scorer's wrong unique top pick): the share at each level against
    the share expected if wrong picks fell uniformly on the non-winners of
    their item, the difference with a record-clustered interval and
    Durkalski p-value (Holm/BH across the dimension x level cells of one
    domain and picker), and ``lean``: mean level (0 = lowest) of wrong picks
    minus that expectation, where every level of the dimension is on
    RMGAP's scale.
    """
    levels = _levels(styles)
    scorer_names = list(picks)
    base: dict[str, Any] = {
        "dimensions": levels, "scorers": scorer_names, "min_items": MIN_ITEMS, "min_records": MIN_RECORDS,
        "unit": "accuracy: labelled item (human BoN, scorer BoN) or label (label accuracy); wrong picks: human label, scorer item",
        "method": "percentile bootstrap over whole records within each domain (All: stratified); wrong-pick shares tested "
                  f"against uniform over the non-winners with the {bs.TEST_NAME}, p-values adjusted ({adjust}) across the "
                  "dimension x level cells of each domain and picker",
        "by_domain": {},
    }
    if summary.empty:
        base["reason"] = "no labels yet"
        return base
    if not styles:
        base["reason"] = "no record has style_assignments"
        return base
    # Per record: each response key's position and level index per dimension (-1: none).
    rows = summary
    n = len(rows)
    rec_list, win_list = rows["record_id"].tolist(), rows["winner_key"].tolist()
    rec_codes, rec_ids = pd.factorize(pd.Series(rec_list, dtype=object))
    rec_pos = {r: i for i, r in enumerate(rec_ids)}
    key_code: dict[str, int] = {}
    lvl_index = {dim: {lv: i for i, lv in enumerate(levels[dim])} for dim in DIMENSIONS}
    width = max([len(styles.get(r, {})) for r in rec_ids] + [1])
    L = np.full((len(rec_ids), width, len(DIMENSIONS)), -1, dtype=np.int64)
    entries = []  # (record, position, key code)
    for r in rec_ids:
        for j, k in enumerate(sorted(styles.get(r, {}))):
            entries.append((rec_pos[r], j, key_code.setdefault(k, len(key_code))))
            profile = styles[r][k]
            for di, dim in enumerate(DIMENSIONS):
                lv = profile.get(dim)
                if lv is not None:
                    L[rec_pos[r], j, di] = lvl_index[dim][lv]
    pos_of = np.full((len(rec_ids), max(len(key_code), 1)), -1, dtype=np.int64)  # record x key code -> position
    if entries:
        e = np.asarray(entries)
        pos_of[e[:, 0], e[:, 2]] = e[:, 1]
    n_lv = max([len(v) for v in levels.values()] + [1])
    rp = rec_codes.astype(np.int64)

    def positions(keys: Sequence) -> np.ndarray:
        """Each item's response key -> its position in the item's record (-1: no style profile)."""
        codes = np.fromiter((key_code.get(k, -1) if isinstance(k, str) else -1 for k in keys), dtype=np.int64, count=n)
        return np.where(codes >= 0, pos_of[rp, np.maximum(codes, 0)], -1)

    win = positions(win_list)
    has_style = win >= 0
    lv_items = L[rp]  # (n, width, D)
    onehot = (lv_items[..., None] == np.arange(n_lv)).astype(float)  # (n, width, D, n_lv)
    win_lv = np.where(has_style[:, None], lv_items[np.arange(n), np.maximum(win, 0)], -1)  # (n, D)
    win_mask = (win_lv[..., None] == np.arange(n_lv)).astype(float)  # (n, D, n_lv)
    not_winner = np.ones((n, width))
    not_winner[np.arange(n)[has_style], win[has_style]] = 0.0
    nw_counts = np.einsum("nr,nrdl->ndl", not_winner, onehot)
    nw_total = nw_counts.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        nw_share = np.where(nw_total > 0, nw_counts / np.where(nw_total > 0, nw_total, 1), 0.0)  # (n, D, n_lv)

    # Pickers: the humans' decided labels (vote counts), each scorer's unique top pick.
    unit, vkeys, vcount = votes if votes is not None else vote_table(rows)
    votes_m = np.zeros((n, width))
    if len(unit):
        code = np.fromiter((key_code.get(k, -1) for k in vkeys), dtype=np.int64, count=len(vkeys))
        pos = np.where(code >= 0, pos_of[rp[unit], np.maximum(code, 0)], -1)
        keep = pos >= 0
        np.add.at(votes_m, (unit[keep], pos[keep]), vcount[keep])
    pickers = {HUMAN: votes_m * not_winner * has_style[:, None]}
    correct_s, defined_s = {}, {}
    item_index = pd.Index(rows["item_id"].to_numpy())
    win_arr = np.asarray(win_list, dtype=object)
    for name in scorer_names:
        p = picks[name]
        at = item_index.get_indexer(list(p)) if p else np.zeros(0, dtype=np.int64)
        pk = np.full(n, None, dtype=object)
        ok = np.zeros(n)
        sel = at >= 0
        pk[at[sel]] = np.asarray(list(p.values()), dtype=object)[sel]
        ok[at[sel]] = 1.0
        hit = ((pk == win_arr) & (ok > 0)).astype(float)
        pos = positions(pk)
        m = np.zeros((n, width))
        wrong = (pos >= 0) & (hit == 0) & (ok > 0) & has_style
        m[np.flatnonzero(wrong), pos[wrong]] = 1.0
        pickers[name] = m
        correct_s[name], defined_s[name] = hit, ok

    # Accuracy columns: per value q, (n, D, n_lv) masked by the winner's level.
    acc_values = {
        ("human", "BoN", "num"): rows["matches_winner"].to_numpy(dtype=float),
        ("human", "BoN", "den"): np.ones(n),
        ("human", "label_accuracy", "num"): rows["n_match"].to_numpy(dtype=float),
        ("human", "label_accuracy", "den"): rows["n_labels"].to_numpy(dtype=float),
    }
    for name in scorer_names:
        acc_values[(name, "BoN", "num")] = correct_s[name] * defined_s[name]
        acc_values[(name, "BoN", "den")] = defined_s[name]
    acc_keys = list(acc_values)
    wrong_keys = list(pickers)
    win_flat = win_mask.reshape(n, -1)  # (n, D * n_lv)
    lv_idx = np.arange(n_lv, dtype=float)
    ordinal_ok = {dim: all(lv in LEVEL_ORDER[dim] for lv in levels[dim]) for dim in DIMENSIONS}

    def record_sums(dom: _Domain, idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Per record: accuracy (Q x D x L), observed minus expected wrong picks (P x D x L), wrong totals and lean
        (P x D); and the observed and expected totals (2, P x D x L), which need no draws.

        Built value by value and picker by picker, so memory stays items x 25
        whatever the number of scorers.
        """
        wf, oh, share = win_flat[idx], onehot[idx], nw_share[idx]
        acc_c = [dom.per_record(wf * v[idx, None]) for v in acc_values.values()]
        diff_c, nw_c, lean_c, totals = [], [], [], []
        for m in pickers.values():
            o = np.einsum("nr,nrdl->ndl", m[idx], oh)
            nw = o.sum(axis=2)
            e = nw[..., None] * share
            diff_c.append(dom.per_record((o - e).reshape(len(idx), -1)))
            totals.append(np.vstack([o.sum(axis=0).ravel(), e.sum(axis=0).ravel()]))
            nw_c.append(dom.per_record(nw))
            lean_c.append(dom.per_record((o * lv_idx).sum(axis=2) - (e * lv_idx).sum(axis=2)))
        return [np.hstack(x) for x in (acc_c, diff_c, nw_c, lean_c)], np.hstack(totals)

    out = dict(base)
    n_dim = len(DIMENSIONS)
    domains = domains if domains is not None else _domains(summary, record_draws)
    boots: dict[str, Optional[np.ndarray]] = {}
    per_domain_pr: dict[str, tuple] = {}
    width_of: list[int] = []
    for d, dom in domains.items():
        part = dom.rows
        idx = np.flatnonzero(rows.index.isin(part.index))
        if d == ALL and len(per_domain_pr) == dom.n_domains:
            # All's records are its domains' records: stack their sums rather than summing items again.
            pr = np.vstack([x[0] for x in per_domain_pr.values()])
            oe = sum(x[1] for x in per_domain_pr.values())
            widths = width_of
        else:
            blocks, oe = record_sums(dom, idx)
            widths = [x.shape[1] for x in blocks]
            pr = np.hstack(blocks)
            if d != ALL:
                per_domain_pr[d], width_of = (pr, oe), widths
        tot = pr.sum(axis=0)
        bt = _boot(dom, pr, d, boots)
        ivs = _Intervals(confidence)
        offs = np.cumsum([0, *widths])
        seg = [slice(offs[i], offs[i + 1]) for i in range(4)]
        x2_level, p_level = score_tests(pr[:, seg[1]])
        x2_lean, p_lean = score_tests(pr[:, seg[3]])
        shape_acc = (len(acc_keys), n_dim, n_lv)
        shape_w = (len(wrong_keys), n_dim, n_lv)

        def col(s: slice, k: int, boot=bt):  # noqa: ANN001, ANN202
            return tot[s][k], (None if boot is None else boot[:, s][:, k])

        dims_out: dict[str, Any] = {}
        for di, dim in enumerate(DIMENSIONS):
            acc_out: dict[str, Any] = {}
            for li, lv in enumerate(levels[dim]):
                mask = win_mask[idx, di, li] > 0
                k_items = np.ravel_multi_index((1, di, li), shape_acc)  # the human BoN denominator: every item counts
                cell: dict[str, Any] = {"n_items": int(mask.sum()), "n_records": int((pr[:, seg[0]][:, k_items] > 0).sum())}
                who: dict[str, dict] = {}
                for q0 in range(0, len(acc_keys), 2):
                    picker, metric, _ = acc_keys[q0]
                    kn = np.ravel_multi_index((q0, di, li), shape_acc)
                    kd = np.ravel_multi_index((q0 + 1, di, li), shape_acc)
                    num, bnum = col(seg[0], kn)
                    den, bden = col(seg[0], kd)
                    n_units = int((acc_values[acc_keys[q0 + 1]][idx] * mask > 0).sum())
                    rec_units = int((pr[:, seg[0]][:, kd] > 0).sum())
                    est = _estimate(num, den, bnum, bden, n_records=rec_units, n_items=n_units, confidence=confidence,
                                    intervals=ivs)
                    if metric == "label_accuracy":
                        est["n_labels"] = int(den)
                    who.setdefault(picker, {})[metric] = est
                cell["human"] = who.pop("human")
                cell["scorers"] = {name: who[name]["BoN"] for name in scorer_names}
                acc_out[lv] = cell
            wrong_out: dict[str, Any] = {}
            for pi, picker in enumerate(wrong_keys):
                knw = np.ravel_multi_index((pi, di), (len(wrong_keys), n_dim))
                n_w = float(tot[seg[2]][knw])
                bden = None if bt is None else bt[:, seg[2]][:, knw]
                rec_w = pr[:, seg[2]][:, knw] > 0
                entry: dict[str, Any] = {"n_wrong": int(round(n_w)), "n_records": int(rec_w.sum()), "levels": {}}
                thin = n_w < MIN_ITEMS or rec_w.sum() < MIN_RECORDS
                reason = (f"too few wrong picks with a {dim} level ({int(round(n_w))} from {int(rec_w.sum())} records; "
                          f"needs {MIN_ITEMS} from {MIN_RECORDS})")
                for li, lv in enumerate(levels[dim]):
                    k = np.ravel_multi_index((pi, di, li), shape_w)
                    o, e = oe[0, k], oe[1, k]
                    _, bdiff = col(seg[1], k)
                    c: dict[str, Any] = {"observed": None, "expected": None, "difference": None, "ci": None, "p_value": None}
                    if thin:
                        c["reason"] = reason
                    elif e <= 0 and o <= 0:
                        c.update(observed=0.0, expected=0.0, p_value=None,
                                 reason=f"no non-winner response at level {lv}: nothing to pick")
                    else:
                        diff = float((o - e) / n_w)
                        boot = None if bdiff is None else bdiff / bden
                        c.update(observed=float(o / n_w), expected=float(e / n_w), difference=diff,
                                 p_value=float(p_level[k]), statistic=float(x2_level[k]))
                        ivs.add(c, diff, boot)
                    entry["levels"][lv] = c
                lean: dict[str, Any] = {"value": None, "ci": None, "p_value": None}
                if thin:
                    lean["reason"] = reason
                elif not ordinal_ok[dim]:
                    lean["reason"] = f"a {dim} level is not on RMGAP's scale: levels have no order"
                else:
                    lv_sum, lv_boot = col(seg[3], knw)
                    val = float(lv_sum / n_w)
                    boot = None if lv_boot is None else lv_boot / bden
                    lean.update(value=val, p_value=float(p_lean[knw]),
                                scale=f"levels of {dim}, 0 = {levels[dim][0]}, {len(levels[dim]) - 1} = {levels[dim][-1]}")
                    ivs.add(lean, val, boot)
                entry["lean"] = lean
                wrong_out[picker] = entry
            dims_out[dim] = {"accuracy_by_winner_level": acc_out, "wrong_picks": wrong_out}
        ivs.flush()
        for picker in wrong_keys:
            family = {(dim, lv): dims_out[dim]["wrong_picks"][picker]["levels"][lv] for dim in DIMENSIONS for lv in levels[dim]}
            bs.adjust_family(family, adjust)
        out["by_domain"][d] = {"n_items": int(len(part)), "n_records": dom.n_records,
                               "n_items_with_styles": int(has_style[idx].sum()), "dimensions": dims_out}
    for d in DOMAINS:
        if d not in out["by_domain"]:
            out["by_domain"][d] = {"n_items": 0, "n_records": 0, "dimensions": None, "reason": f"no labelled {d} items"}
    return out


def style_rows(section: Mapping) -> tuple[list[dict], list[dict]]:
    """Long-form rows of ``style_profiles`` for tables and charts: (accuracy rows, wrong-pick rows)."""
    acc, wrong = [], []
    for d, block in (section.get("by_domain") or {}).items():
        for dim, parts in (block.get("dimensions") or {}).items():
            for lv, cell in parts["accuracy_by_winner_level"].items():
                series = [("human BoN", cell["human"]["BoN"]), ("human label accuracy", cell["human"]["label_accuracy"])]
                series += [(f"{name} BoN", est) for name, est in cell["scorers"].items()]
                for who, est in series:
                    ci = est.get("ci") or [None, None]
                    acc.append({"domain": d, "dimension": dim, "level": lv, "who": who, "value": est.get("value"),
                                "lo": ci[0], "hi": ci[1], "items": est.get("n_items"), "note": est.get("reason", "")})
            for who, entry in parts["wrong_picks"].items():
                for lv, c in entry["levels"].items():
                    ci = c.get("ci") or [None, None]
                    wrong.append({"domain": d, "dimension": dim, "level": lv, "who": who, "observed": c.get("observed"),
                                  "expected": c.get("expected"), "difference": c.get("difference"), "lo": ci[0], "hi": ci[1],
                                  "p_adjusted": c.get("p_adjusted"), "wrong picks": entry["n_wrong"],
                                  "note": c.get("reason", "")})
    return acc, wrong


# --- base vs rewrite ------------------------------------------------------------------------------------


PAIRED = {"BoN": ("_c", "_one"), "label_accuracy": ("_m", "_l"), "naturalness_mean": ("_nv", "_nn")}


def _groups(summary: pd.DataFrame, rec_code: np.ndarray) -> dict[str, np.ndarray]:
    """Per (record, group): the base prompt's and the rewrites' sums of each paired column (arrays over groups).

    ``rec``: each group's record code (``rec_code`` indexes the summary's records).
    """
    g = summary["group"].to_numpy(dtype=np.int64)
    span = int(g.max()) + 1 if len(g) else 1
    keys, gcode = np.unique(rec_code * span + g, return_inverse=True)
    role = summary["role"].to_numpy(dtype=object)
    side = {"base": (role == "base").astype(float), "rewrite": (role == "rewrite").astype(float)}
    n_nat = summary["n_naturalness"].to_numpy(dtype=float)
    values = {
        "_c": summary["matches_winner"].to_numpy(dtype=float), "_one": np.ones(len(summary)),
        "_m": summary["n_match"].to_numpy(dtype=float), "_l": summary["n_labels"].to_numpy(dtype=float),
        "_nv": pd.to_numeric(summary["mean_naturalness"], errors="coerce").fillna(0.0).to_numpy(dtype=float) * n_nat,
        "_nn": n_nat,
    }
    out = {"rec": keys // span}
    for c, v in values.items():
        for r, w in side.items():
            out[f"{c}_{r}"] = np.bincount(gcode, weights=v * w, minlength=len(keys))
    return out


def vote_table(summary: pd.DataFrame) -> tuple[np.ndarray, list, np.ndarray]:
    """The summary's vote counts flattened: (item row, response key, votes), read once for all analyses."""
    unit, keys, count = [], [], []
    for i, v in enumerate(summary["votes"].tolist()):
        if v:
            for k, c in v.items():
                unit.append(i)
                keys.append(k)
                count.append(c)
    return np.asarray(unit, dtype=np.int64), keys, np.asarray(count, dtype=np.int64)


def _alpha_parts(n_items: int, votes: tuple, key_codes: Mapping[str, int], n_keys: int) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Per item: nominal alpha's disagreement term and pairable value counts (from the vote counts)."""
    from rmgap_annot.stats import agreement as agr  # noqa: PLC0415

    unit, keys, count = votes
    value = np.fromiter((key_codes[k] for k in keys), dtype=np.int64, count=len(keys))
    counts = sparse.csr_matrix((count.astype(float), (unit, value)), shape=(n_items, n_keys))
    st = agr.nominal_stats(counts)
    return st.disagreement, st.pairable


def base_vs_rewrite(
    summary: pd.DataFrame, record_draws: Mapping[str, bs.ClusterDraws], *, confidence: float = bs.CONFIDENCE, adjust: str = "holm",
    domains: Optional[Mapping[str, "_Domain"]] = None, votes: Optional[tuple] = None,
) -> dict:
    """``referee.base_vs_rewrite``: the base prompt against its two paraphrases, per domain and All.

    Per role: BoN, label accuracy, pick alpha and mean naturalness with
    record-clustered intervals. ``difference`` (base minus rewrite) is paired
    within a prompt group: per group with a labelled base prompt and a
    labelled rewrite, the base item's value minus its rewrites' pooled
    value, averaged over groups; interval from the record draws (the same
    draws for both sides) and Durkalski's clustered p-value
    (``bootstrap.clustered_score_test``: a group's difference has mean zero
    when the paraphrases are as clear as the base). Pick alpha's difference
    uses the same draws and a percentile-bootstrap p-value. p-values are
    adjusted across the four domains per metric.
    """
    out: dict[str, Any] = {
        "metrics": ["BoN", "label_accuracy", "pick_alpha", "naturalness_mean"],
        "method": "per-role values: ratio of sums, percentile bootstrap over whole records within each domain (All: "
                  "stratified); differences base minus rewrite paired within each prompt group, the group's rewrites pooled; "
                  f"p-values: {bs.TEST_NAME} (pick_alpha: {BOOTSTRAP_P}), adjusted ({adjust}) across the domains per metric",
        "by_domain": {},
    }
    if summary.empty:
        out["reason"] = "no labels yet"
        for d in (*DOMAINS, ALL):
            out["by_domain"][d] = {"reason": "no labels yet"}
        return out
    domains = domains if domains is not None else _domains(summary, record_draws)
    votes = votes if votes is not None else vote_table(summary)
    keys = sorted(set(votes[1]))
    key_codes = {k: i for i, k in enumerate(keys)}
    n_keys = len(keys)
    if n_keys:
        dis_all, pairable_all = _alpha_parts(len(summary), votes, key_codes, n_keys)
        pair_all = pairable_all.toarray()
    rec_code, rec_ids = pd.factorize(summary["record_id"].to_numpy(dtype=object))
    rec_domain = np.empty(len(rec_ids), dtype=object)
    rec_domain[rec_code] = summary["domain"].to_numpy(dtype=object)
    groups_all = _groups(summary, rec_code)
    group_domain = rec_domain[groups_all["rec"]]
    boots: dict[str, Optional[np.ndarray]] = {}
    pair_boots: dict[str, dict] = {}
    for d, dom in domains.items():
        part = dom.rows
        at = np.flatnonzero(summary.index.isin(part.index))
        role = part["role"].to_numpy(dtype=object)
        nat_n = part["n_naturalness"].to_numpy(float)
        values = {
            "BoN": (part["matches_winner"].to_numpy(float), np.ones(len(part)), True),
            "label_accuracy": (part["n_match"].to_numpy(float), part["n_labels"].to_numpy(float), True),
            "naturalness_mean": (pd.to_numeric(part["mean_naturalness"], errors="coerce").fillna(0.0).to_numpy(float) * nat_n,
                                 nat_n, False),
        }
        sel = {r: (role == r).astype(float) for r in ("base", "rewrite")}
        cols = [v[j] * sel[r] for v in values.values() for r in ("base", "rewrite") for j in (0, 1)]
        if n_keys:
            dis, pair_dense = dis_all[at], pair_all[at]
            alpha_cols = [dis * sel["base"], dis * sel["rewrite"]]
            alpha_mats = [pair_dense * sel["base"][:, None], pair_dense * sel["rewrite"][:, None]]
            big = np.column_stack([*cols, *alpha_cols, *alpha_mats])
        else:
            big = np.column_stack(cols)
        pr = dom.per_record(big)
        bt = _boot(dom, pr, d, boots)
        block: dict[str, Any] = {}
        c = 0
        for metric, (num, den, is_prop) in values.items():
            entry: dict[str, Any] = {}
            for r in ("base", "rewrite"):
                items_used = int(((den * sel[r]) > 0).sum())
                recs = int((pr[:, c + 1] > 0).sum())
                entry[r] = _estimate(pr[:, c].sum(), pr[:, c + 1].sum(), None if bt is None else bt[:, c],
                                     None if bt is None else bt[:, c + 1], n_records=recs, n_items=items_used,
                                     proportion=is_prop, confidence=confidence)
                if metric == "naturalness_mean":
                    entry[r]["n_ratings"] = int(pr[:, c + 1].sum())
                c += 2
            block[metric] = entry
        g = groups_all if d == ALL else {k: v[group_domain == d] for k, v in groups_all.items()}
        col_of = np.full(len(rec_ids), -1, dtype=np.int64)
        col_of[rec_code[at]] = dom.codes
        _paired_differences(block, g, col_of, dom, d, pair_boots, confidence)
        if n_keys:
            k0 = len(cols)
            alpha_pr = {"base": (pr[:, k0], pr[:, k0 + 2:k0 + 2 + n_keys]), "rewrite": (pr[:, k0 + 1], pr[:, k0 + 2 + n_keys:])}
            alpha_bt = None if bt is None else {"base": (bt[:, k0], bt[:, k0 + 2:k0 + 2 + n_keys]),
                                                "rewrite": (bt[:, k0 + 1], bt[:, k0 + 2 + n_keys:])}
            n_items = {r: int(((pair_dense.sum(axis=1) > 0) & (sel[r] > 0)).sum()) for r in sel}
            n_recs = {r: int(len(set(dom.rec[sel[r] > 0].tolist()))) for r in sel}
            block["pick_alpha"] = _alpha_by_role(alpha_pr, alpha_bt, n_items, n_recs, confidence)
        else:
            reason = "no decided label: alpha is undefined"
            block["pick_alpha"] = {r: {"value": None, "ci": None, "reason": reason} for r in ("base", "rewrite")}
            block["pick_alpha"]["difference"] = {"difference": None, "ci": None, "p_value": None, "reason": reason}
        out["by_domain"][d] = block
    for d in (*DOMAINS, ALL):
        if d not in out["by_domain"]:
            out["by_domain"][d] = {"reason": f"no labelled {d} items"}
    for metric in out["metrics"]:
        fam = {d: out["by_domain"][d][metric]["difference"] for d in DOMAINS if metric in out["by_domain"][d]}
        if fam:
            bs.adjust_family(fam, adjust)
    return out


def _paired_differences(block: dict, g: Mapping[str, np.ndarray], col_of: np.ndarray, dom: "_Domain", name: str, boots: dict,
                        confidence: float) -> None:
    """Base minus rewrite per prompt group (``g``: ``_groups``), resampled by record with the domain's draws, Durkalski's p.

    ``col_of``: a record code's column in ``dom``'s draws.
    """
    for metric, (nc, dc) in PAIRED.items():
        ok = (g[f"{dc}_base"] > 0) & (g[f"{dc}_rewrite"] > 0)
        rec = g["rec"][ok]
        n_rec = int(np.unique(rec).size)
        if not ok.any():
            block[metric]["difference"] = {"difference": None, "ci": None, "p_value": None, "n_units": 0,
                                           "reason": "no prompt group has both its base prompt and a rewrite labelled"}
            continue
        if ok.sum() < MIN_ITEMS or n_rec < MIN_RECORDS:
            block[metric]["difference"] = {
                "difference": None, "ci": None, "p_value": None, "n_units": int(ok.sum()),
                "reason": f"too few paired prompt groups ({int(ok.sum())} from {n_rec} records; needs {MIN_ITEMS} from {MIN_RECORDS})"}
            continue
        a = g[f"{nc}_base"][ok] / g[f"{dc}_base"][ok]
        b = g[f"{nc}_rewrite"][ok] / g[f"{dc}_rewrite"][ok]
        col = col_of[rec]
        per_rec = np.vstack([np.bincount(col, weights=a - b, minlength=dom.n_records),
                             np.bincount(col, minlength=dom.n_records).astype(float)]).T
        bt = _boot(dom, per_rec, name, boots.setdefault(metric, {}))
        point = float((a - b).mean())
        boot = None
        if bt is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = bt[:, 0] / bt[:, 1]
        entry: dict[str, Any] = {"difference": point, "base": float(a.mean()), "rewrite": float(b.mean()), "n_units": int(ok.sum()),
                                 "n_clusters": n_rec, "unit": "prompt group (base item vs its rewrites pooled)"}
        entry.update(bs.interval(point, boot, confidence=confidence))
        test = bs.clustered_score_test(a - b, rec)
        entry.update(p_value=test["p_value"], statistic=test["statistic"], test=test["test"])
        if "note" in test:
            entry["note"] = test["note"]
        block[metric]["difference"] = entry


def _alpha_by_role(pr: Mapping, bt: Optional[Mapping], n_items: Mapping, n_recs: Mapping, confidence: float) -> dict:
    """Pick alpha per role from per-record sums of its disagreement and pairable-value terms, and their difference."""
    from rmgap_annot.stats import agreement as agr  # noqa: PLC0415

    out: dict[str, Any] = {}
    boots = {}
    for r in ("base", "rewrite"):
        dis, pair = pr[r]
        value = agr.nominal_alpha_from_sums(dis.sum(), pair.sum(axis=0))
        value = float(value) if np.isfinite(value) else None
        boot = None
        if bt is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = agr.nominal_alpha_from_sums(bt[r][0], bt[r][1])
        entry: dict[str, Any] = {"value": value, "ci": None, "n_items": n_items[r], "n_records": n_recs[r]}
        if value is None:
            entry["reason"] = f"pick alpha is undefined for {r} prompts (no item with two decided labels, or one value only)"
        elif n_items[r] < MIN_ITEMS or n_recs[r] < MIN_RECORDS:
            entry.update(value=None, reason=f"too few {r} items with two or more decided labels ({n_items[r]} from {n_recs[r]} "
                                            f"records; needs {MIN_ITEMS} from {MIN_RECORDS})")
        else:
            iv = bs.interval(value, boot, confidence=confidence)
            entry.update(ci=iv["ci"], ci_method=iv["ci_method"])
            if iv["ci"] is None:
                entry["ci_reason"] = iv.get("ci_reason")
            boots[r] = boot
        out[r] = entry
    if out["base"]["value"] is None or out["rewrite"]["value"] is None:
        out["difference"] = {"difference": None, "ci": None, "p_value": None,
                             "reason": "pick alpha is undefined on one side: " + (out["base"].get("reason") or out["rewrite"].get("reason"))}
        return out
    diff = out["base"]["value"] - out["rewrite"]["value"]
    boot = None if boots.get("base") is None or boots.get("rewrite") is None else boots["base"] - boots["rewrite"]
    iv = bs.interval(diff, boot, confidence=confidence)
    entry = {"difference": diff, "ci": iv["ci"], "ci_method": iv["ci_method"], "p_value": _bootstrap_p(boot), "test": BOOTSTRAP_P,
             "unit": "items of each role, the same record draws for both"}
    if boot is None:
        entry["ci_reason"] = entry["p_value_reason"] = "no bootstrap (draws=0): the alpha difference has no analytic test here"
        entry["reason"] = entry["ci_reason"]
    out["difference"] = entry
    return out


# --- between domains -------------------------------------------------------------------------------------


def between_domains(
    summary: pd.DataFrame, record_draws: Mapping[str, bs.ClusterDraws], *, confidence: float = bs.CONFIDENCE, adjust: str = "holm",
    domains: Optional[Mapping[str, "_Domain"]] = None,
) -> dict:
    """``referee.between_domains``: does human accuracy differ between domains?

    Per metric (BoN, label accuracy): an omnibus test over the domains with
    data and the pairwise differences (record-bootstrap interval, z-test on
    the same cluster-robust variances, adjusted across pairs). Why this
    test: the domains are disjoint sets of records, so their estimates are
    independent and a Wald homogeneity chi-square (Cochran's Q) on
    independent estimates only needs each one's variance; the cluster-robust
    (linearisation) variance accounts for a record's correlated items
    without a model (the bootstrap variance would do as well, but is zero
    for an all-correct domain). Where a domain has no spread between its
    records, its variance is taken around the pooled proportion (what the
    null implies) and the entry says so. Rao-Scott's first-order correction
    of the plain Pearson chi-square (no statsmodels needed) is given as a
    check.
    """
    out: dict[str, Any] = {
        "test": HOMOGENEITY_TEST, "check": RAO_SCOTT_TEST,
        "pairwise": f"difference of two domains, percentile interval of their independent record draws; z-test with the "
                    f"same variances, adjusted ({adjust}) across pairs",
    }
    domains = domains if domains is not None else (_domains(summary, record_draws) if not summary.empty else {})
    for metric in ("BoN", "label_accuracy"):
        out[metric] = _homogeneity(domains, metric, confidence, adjust)
    return out


def _homogeneity(units: Mapping[str, "_Domain"], metric: str, confidence: float, adjust: str) -> dict:
    domains: dict[str, dict] = {}
    usable = []
    for d in DOMAINS:
        dom = units.get(d)
        if dom is None or dom.rows.empty:
            domains[d] = {"value": None, "n_records": 0, "reason": f"no labelled {d} items"}
            continue
        part = dom.rows
        if metric == "BoN":
            y, m = part["matches_winner"].to_numpy(float), np.ones(len(part))
        else:
            y, m = part["n_match"].to_numpy(float), part["n_labels"].to_numpy(float)
        yc = np.bincount(dom.codes, weights=y, minlength=dom.n_records)
        mc = np.bincount(dom.codes, weights=m, minlength=dom.n_records)
        bt = dom.boot(np.column_stack([yc, mc]))
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = None if bt is None else bt[:, 0] / bt[:, 1]
        value = float(yc.sum() / mc.sum()) if mc.sum() else None
        entry = {"value": value, "n_units": int(round(mc.sum())), "n_records": int(len(yc))}
        # Design effect: cluster-robust variance over the binomial one (defined for labels as for items).
        k = len(yc)
        if value is not None and k >= 2 and 0 < value < 1:
            robust = k / (k - 1) * ((yc - value * mc) ** 2).sum() / mc.sum() ** 2
            entry["design_effect"] = float(robust / (value * (1 - value) / mc.sum()))
        else:
            entry["design_effect"] = None
            entry["design_effect_reason"] = "needs two or more records and an accuracy strictly between 0 and 1"
        domains[d] = entry
        if len(yc) < MIN_RECORDS or mc.sum() < MIN_ITEMS:
            entry["reason"] = f"too few records ({len(yc)}; needs {MIN_RECORDS}) or units ({int(mc.sum())}; needs {MIN_ITEMS}): left out"
            continue
        usable.append((d, yc, mc, boot))
    result: dict[str, Any] = {"domains": domains, "statistic": None, "df": None, "p_value": None}
    if len(usable) < 2:
        result["reason"] = "needs two or more domains with enough labelled records"
        result["rao_scott"] = {"statistic": None, "p_value": None, "reason": result["reason"]}
        result["pairwise"] = {}
        return result
    pooled = sum(u[1].sum() for u in usable) / sum(u[2].sum() for u in usable)
    var = {}
    for d, yc, mc, _ in usable:
        k = len(yc)
        var[d] = float(k / (k - 1) * ((yc - domains[d]["value"] * mc) ** 2).sum() / mc.sum() ** 2)
        if var[d] <= 0:
            # Every record has the domain's proportion (e.g. all correct): no spread to estimate from, so the
            # spread around the pooled proportion (what the null implies) stands in, and the entry says so.
            var[d] = float(k / (k - 1) * ((yc - pooled * mc) ** 2).sum() / mc.sum() ** 2)
            domains[d]["variance_note"] = "no spread between this domain's records: variance taken around the pooled proportion"
        domains[d]["variance"] = var[d]
    if any(v <= 0 for v in var.values()):
        result["reason"] = "every record has the same accuracy: no variation to test against"
        result["rao_scott"] = {"statistic": None, "p_value": None, "reason": result["reason"]}
        result["pairwise"] = {}
        return result
    p = np.array([domains[d]["value"] for d, *_ in usable])
    w = np.array([1 / var[d] for d, *_ in usable])
    p_w = float((w * p).sum() / w.sum())
    x2 = float((w * (p - p_w) ** 2).sum())
    df = len(usable) - 1
    result.update(statistic=x2, df=df, p_value=float(sps.chi2.sf(x2, df)), domains_tested=[d for d, *_ in usable],
                  pooled=float(pooled))
    # Rao-Scott first order: Pearson chi-square of the K x 2 table over the mean design effect.
    succ = np.array([u[1].sum() for u in usable])
    tri = np.array([u[2].sum() for u in usable])
    table = np.column_stack([succ, tri - succ])
    deffs = [domains[d]["design_effect"] for d, *_ in usable]
    if table.min(axis=0).max() <= 0 or (table.sum(axis=0) == 0).any():
        result["rao_scott"] = {"statistic": None, "p_value": None, "reason": "every unit is correct (or every one wrong): no table to test"}
    elif any(x is None for x in deffs):
        result["rao_scott"] = {"statistic": None, "p_value": None, "reason": "a domain's design effect is undefined"}
    else:
        chi = sps.chi2_contingency(table, correction=False)[0]
        mean_deff = float(np.average(deffs, weights=tri))
        mean_deff = max(mean_deff, 1e-9)
        result["rao_scott"] = {"statistic": float(chi / mean_deff), "pearson": float(chi), "mean_design_effect": mean_deff,
                               "df": df, "p_value": float(sps.chi2.sf(chi / mean_deff, df))}
    pairs: dict[str, dict] = {}
    for (d1, *_r1, b1), (d2, *_r2, b2) in itertools.combinations(usable, 2):
        diff = domains[d1]["value"] - domains[d2]["value"]
        z = diff / np.sqrt(var[d1] + var[d2])
        boot = None if b1 is None or b2 is None else b1 - b2
        iv = bs.interval(diff, boot, confidence=confidence)
        entry = {"difference": float(diff), "ci": iv["ci"], "ci_method": iv["ci_method"], "z": float(z),
                 "p_value": float(2 * sps.norm.sf(abs(z)))}
        if iv["ci"] is None:
            entry["ci_reason"] = iv.get("ci_reason")
        pairs[f"{d1} - {d2}"] = entry
    bs.adjust_family(pairs, adjust)
    result["pairwise"] = pairs
    return result


# --- the report section -------------------------------------------------------------------------------------


def referee_section(
    summary: pd.DataFrame, record_draws: Mapping[str, bs.ClusterDraws], styles: Mapping, picks: Mapping[str, Mapping[int, Optional[str]]],
    *, confidence: float = bs.CONFIDENCE, adjust: str = "holm",
) -> dict:
    """``report --json``'s ``referee``: ``style_profiles``, ``base_vs_rewrite``, ``between_domains``.

    The products of draws x records by records x columns are small (1,000 x
    ~400 x ~150): one BLAS thread does them in milliseconds, and more
    threads only spin against the app's other work on a busy server
    (measured: the section took twice the CPU with the default threads).
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - scikit-learn's dependency

    domains = _domains(summary, record_draws) if not summary.empty else {}
    votes = vote_table(summary)
    with threadpool_limits(limits=1, user_api="blas"):
        return {
            "style_profiles": style_profiles(summary, record_draws, styles, picks, confidence=confidence, adjust=adjust,
                                             domains=domains, votes=votes),
            "base_vs_rewrite": base_vs_rewrite(summary, record_draws, confidence=confidence, adjust=adjust, domains=domains,
                                               votes=votes),
            "between_domains": between_domains(summary, record_draws, confidence=confidence, adjust=adjust, domains=domains),
        }


def base_vs_rewrite_rows(section: Mapping) -> list[dict]:
    """Long-form rows of ``base_vs_rewrite`` for a table: one per domain and metric."""
    rows = []
    for d, block in (section.get("by_domain") or {}).items():
        if "reason" in block:
            rows.append({"domain": d, "metric": "", "base": None, "rewrite": None, "base - rewrite": None, "lo": None, "hi": None,
                         "p": None, "p adjusted": None, "note": block["reason"]})
            continue
        for metric in section["metrics"]:
            e = block[metric]
            diff = e["difference"]
            ci = diff.get("ci") or [None, None]
            note = "; ".join(x for x in (e["base"].get("reason"), e["rewrite"].get("reason"), diff.get("reason")) if x)
            rows.append({"domain": d, "metric": metric, "base": e["base"].get("value"), "rewrite": e["rewrite"].get("value"),
                         "base - rewrite": diff.get("difference"), "lo": ci[0], "hi": ci[1], "p": diff.get("p_value"),
                         "p adjusted": diff.get("p_adjusted"), "note": note})
    return rows


def between_domain_rows(section: Mapping) -> tuple[list[dict], list[dict]]:
    """(omnibus rows per metric, pairwise rows) of ``between_domains`` for tables."""
    omnibus, pairs = [], []
    for metric in ("BoN", "label_accuracy"):
        e = section.get(metric) or {}
        rs = e.get("rao_scott") or {}
        omnibus.append({"metric": metric, **{d: (e.get("domains") or {}).get(d, {}).get("value") for d in DOMAINS},
                        "chi-square": e.get("statistic"), "df": e.get("df"), "p": e.get("p_value"),
                        "Rao-Scott p": rs.get("p_value"), "note": e.get("reason") or rs.get("reason", "")})
        for name, p in (e.get("pairwise") or {}).items():
            ci = p.get("ci") or [None, None]
            pairs.append({"metric": metric, "pair": name, "difference": p["difference"], "lo": ci[0], "hi": ci[1],
                          "p": p["p_value"], "p adjusted": p.get("p_adjusted")})
    return omnibus, pairs
