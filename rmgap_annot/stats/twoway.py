"""Intervals that also resample annotators: a two-way record x annotator bootstrap.

With a handful of annotators the pool itself is a source of uncertainty: a
study repeated with other people would get other numbers. Each draw
resamples records within each domain (the clustering unit) and, crossed
with it, the annotator pool (one draw for all domains, because the same
people label every domain). An annotator drawn k times gets weight k on
every label they gave; drawn 0 times, their labels vanish from that draw.

Weights, never copies: a label of an annotator drawn twice is *not* paired
with its own copy. Plurality votes count an annotator's vote k times; label
accuracy weights each label by k; Krippendorff's alpha pairs only distinct
labels (i != j), with pair weight w_i * w_j, and each unit's coincidences are
scaled to its total weight m_u (scale m_u / (m_u^2 - sum w_i^2), which is
1/(m_u - 1) when every weight is 1, i.e. the ordinary alpha). An item whose
labels all vanish is absent from that draw, as an unlabelled item is absent
from the report.

Covered: human BoN (plurality), label accuracy (per domain and Avg) and
nominal pick alpha (per domain and All). Not covered: Pair, Consistency,
naturalness alpha, scorer comparisons and the Dawid-Skene / MACE rows (a fit
per draw would take minutes).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from scipy import sparse

from rmgap_annot.stats.agreement import nominal_alpha_from_sums, percentile_ci
from rmgap_annot.settings import DOMAINS

CHUNK = 100  # draws per block: keeps (draws x labels) blocks small on 40k labels
METHOD = ("two-way percentile bootstrap: records resampled within each domain, crossed with the annotator pool "
          "resampled with replacement (one draw for all domains); an annotator drawn k times weighs k, and a label is "
          "never paired with its own copy")


def _multinomial_counts(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """How often each of n units is drawn in each of ``draws`` resamples of size n."""
    if n == 0:
        return np.zeros((draws, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=draws).astype(np.float64)


def _indicator(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> sparse.csr_matrix:
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(rows), max(n_cols, 1)))


class _Domain:
    """One domain's labels as index arrays: labels -> item, record, annotator, key."""

    def __init__(self, lab: pd.DataFrame, ann_codes: np.ndarray, keys: pd.Index):
        self.n_labels = len(lab)
        item_codes, items = pd.factorize(lab["item_id"], sort=True)
        rec_codes, records = pd.factorize(lab["record_id"], sort=True)
        self.n_items, self.n_records, self.k = len(items), len(records), len(keys)
        self.ann = ann_codes
        self.item = item_codes
        item_record = np.zeros(self.n_items, dtype=np.int64)
        item_record[item_codes] = rec_codes
        self.item_record = item_record
        choice = keys.get_indexer(lab["choice_key"].where(lab["choice_key"].notna(), None))
        decided = choice >= 0
        self.decided = decided
        winner_of_item = np.full(self.n_items, -1, dtype=np.int64)
        winner_of_item[item_codes] = keys.get_indexer(lab["winner_key"])
        self.winner = winner_of_item
        self.match = (decided & (choice == winner_of_item[item_codes])).astype(np.float64)
        # labels -> items (any label: presence) and decided labels -> (item, key) cells.
        self.to_item = _indicator(np.arange(self.n_labels), item_codes, self.n_items)
        d_rows = np.flatnonzero(decided)
        cells = item_codes[d_rows] * self.k + choice[d_rows]
        self.to_cell = sparse.csr_matrix(
            (np.ones(len(d_rows)), (d_rows, cells)), shape=(self.n_labels, max(self.n_items * self.k, 1))
        )
        self.to_unit = sparse.csr_matrix(
            (np.ones(len(d_rows)), (d_rows, item_codes[d_rows])), shape=(self.n_labels, max(self.n_items, 1))
        )

    def draws(self, w_label: np.ndarray, w_item: np.ndarray) -> dict[str, np.ndarray]:
        """BoN, label accuracy and alpha's sums for a block of draws.

        ``w_label`` (b, L): annotator weight of each label; ``w_item`` (b, I):
        record weight of each item.
        """
        b = w_label.shape[0]
        # Label accuracy: both weights on each label.
        w_full = w_label * w_item[:, self.item]
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = (w_full @ self.match) / w_full.sum(axis=1)
        # Plurality with weighted votes.
        votes = np.asarray((self.to_cell.T @ w_label.T).T).reshape(b, self.n_items, self.k)
        present = np.asarray((self.to_item.T @ w_label.T).T) > 0
        top = votes.max(axis=2)
        unique_top = (votes == top[:, :, None]).sum(axis=2) == 1
        has_winner = self.winner >= 0
        win_votes = np.where(has_winner, votes[:, np.arange(self.n_items), np.maximum(self.winner, 0)], -1.0)
        correct = present & (top > 0) & unique_top & (win_votes == top)
        with np.errstate(invalid="ignore", divide="ignore"):
            bon = (w_item * correct).sum(axis=1) / (w_item * present).sum(axis=1)
        # Nominal alpha with weights; pairs of distinct labels only.
        w2 = w_label**2
        m = np.asarray((self.to_unit.T @ w_label.T).T)
        s2 = np.asarray((self.to_unit.T @ w2.T).T)
        n_uv = np.asarray((self.to_cell.T @ w_label.T).T).reshape(b, self.n_items, self.k)
        q_uv = np.asarray((self.to_cell.T @ w2.T).T).reshape(b, self.n_items, self.k)
        pairs = m**2 - s2
        ok = pairs > 1e-12
        scale = np.where(ok, m / np.where(ok, pairs, 1.0), 0.0) * w_item
        disagreement = (scale * (m**2 - (n_uv**2).sum(axis=2))).sum(axis=1)
        marginals = (scale[:, :, None] * (m[:, :, None] * n_uv - q_uv)).sum(axis=1)
        return {"BoN": bon, "label_accuracy": acc, "alpha_d": disagreement, "alpha_n": marginals}


def two_way_section(labels: pd.DataFrame, *, draws: int, seed: int, confidence: float) -> dict:
    """``report --json``'s ``annotator_resampling`` (only with ``report --resample annotators``)."""
    out: dict = {"method": METHOD, "draws": draws, "seed": seed, "confidence": confidence,
                 "covers": ["BoN (plurality)", "label_accuracy", "choice_alpha (nominal)"]}
    if labels.empty or not draws:
        out["reason"] = "no labels yet" if labels.empty else "--draws 0: no intervals"
        return out
    ann_codes, annotators = pd.factorize(labels["annotator"], sort=True)
    keys = pd.Index(sorted(set(labels["choice_key"].dropna()) | set(labels["winner_key"])))
    n_ann = len(annotators)
    out["n_annotators"] = n_ann
    rng_ann = np.random.default_rng([seed, 8])
    v_all = _multinomial_counts(rng_ann, n_ann, draws)
    doms: dict[str, _Domain] = {}
    rec_w: dict[str, np.ndarray] = {}
    for di, d in enumerate(DOMAINS):
        sel = (labels["domain"] == d).to_numpy()
        if not sel.any():
            continue
        doms[d] = _Domain(labels[sel].reset_index(drop=True), ann_codes[sel], keys)
        rec_w[d] = _multinomial_counts(np.random.default_rng([seed, 7, di]), doms[d].n_records, draws)
    boots: dict[str, dict[str, list]] = {m: {d: [] for d in doms} for m in ("BoN", "label_accuracy", "alpha_d", "alpha_n")}
    for start in range(0, draws, CHUNK):
        stop = min(draws, start + CHUNK)
        v = v_all[start:stop]
        for d, dom in doms.items():
            w_item = rec_w[d][start:stop][:, dom.item_record]
            res = dom.draws(v[:, dom.ann], w_item)
            for m, arr in res.items():
                boots[m][d].append(arr)
    joined = {m: {d: np.concatenate(parts, axis=0) for d, parts in by.items()} for m, by in boots.items()}
    for metric in ("BoN", "label_accuracy"):
        entry = {d: percentile_ci(joined[metric][d], confidence) if d in doms else None for d in DOMAINS}
        present = [joined[metric][d] for d in doms]
        entry["Avg"] = percentile_ci(np.nanmean(np.vstack(present), axis=0), confidence) if present else None
        out[metric] = {"ci": entry}
    alpha_ci: dict[str, Optional[list]] = {}
    for d in DOMAINS:
        alpha_ci[d] = (percentile_ci(nominal_alpha_from_sums(joined["alpha_d"][d], joined["alpha_n"][d]), confidence)
                       if d in doms else None)
    if doms:
        total_d = sum(joined["alpha_d"][d] for d in doms)
        total_n = sum(joined["alpha_n"][d] for d in doms)
        alpha_ci["All"] = percentile_ci(nominal_alpha_from_sums(total_d, total_n), confidence)
    else:
        alpha_ci["All"] = None
    out["choice_alpha"] = {"ci": alpha_ci}
    return out


def weighted_alpha(labels: pd.DataFrame, annotator_weights: dict[str, float]) -> float:
    """Nominal pick alpha with per-annotator weights (the tests' check of the no-self-pairing rule)."""
    ann_codes, annotators = pd.factorize(labels["annotator"], sort=True)
    keys = pd.Index(sorted(set(labels["choice_key"].dropna()) | set(labels["winner_key"])))
    dom = _Domain(labels.reset_index(drop=True), ann_codes, keys)
    w = np.array([[annotator_weights.get(a, 1.0) for a in annotators]])[:, ann_codes]
    res = dom.draws(w, np.ones((1, dom.n_items)))
    return float(nominal_alpha_from_sums(res["alpha_d"], res["alpha_n"])[0])
