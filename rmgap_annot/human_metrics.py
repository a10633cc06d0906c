"""Human accuracy against the designated winners, in RMGAP's own metrics.

The human column must sit beside the reward models' columns, so it is
reported as Pair / BoN / Consistency per domain with RMGAP's plain-mean
``Avg`` (``metrics.with_avg``). How a crowd of labels becomes one answer:

- **BoN**: an item's plurality pick (most votes among response keys; "Can't
  decide" is not a vote) must be the winner. A tie for first place is wrong,
  as RMGAP counts a tied score as a loss; an item whose every label is
  "Can't decide" has no pick and is wrong too (it is evidence against the
  item, not missing data). Both counts are reported.
- **label accuracy**: the share of single labels that pick the winner.
- **Pair** (ranking mode only): over every ranking label, the share of
  (winner, other) pairs the annotator ordered winner first.
- **Consistency**: among groups whose three prompts all have labels, the
  share whose three plurality picks are the same response (no pick or a tie
  on any prompt makes the group inconsistent, like RMGAP's NaN items).
- ``ranking``: in ranking mode the labels' Borda counts are scored exactly as
  a reward model's scores are (``metrics.rmgap_metrics``), which gives the
  full-ranking Consistency too.

Intervals are percentile bootstrap intervals: items resampled within each
domain for Pair, BoN and label accuracy, groups for Consistency; the Avg
interval averages the domains draw by draw.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pandas as pd

from rmgap_annot.agreement import CONFIDENCE, DRAWS, SEED, percentile_ci, resample_weights
from rmgap_annot.metrics import ScoredItem, rmgap_metrics, with_avg
from rmgap_annot.settings import DOMAINS

GROUP_STREAM_OFFSET = 100  # group resamplings use streams 100+, items use 0+


def item_summary(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled item: votes, plurality pick, agreement, accuracy counts.

    ``labels`` is ``labels_frame.load_labels``'s frame (columns item_id,
    record_id, domain, group, prompt_index, role, winner_key, choice_key,
    ranking, naturalness).
    """
    cols = [
        "item_id", "record_id", "domain", "group", "prompt_index", "role", "winner_key", "n_labels",
        "n_cant_decide", "n_decided", "votes", "plurality_pick", "tie", "agreement_share", "matches_winner",
        "n_match", "pair_won", "pair_total", "n_rankings", "mean_naturalness", "n_naturalness",
    ]
    if labels.empty:
        return pd.DataFrame(columns=cols).set_index("item_id", drop=False)
    lab = labels.copy()
    decided = lab["choice_key"].notna()
    lab["is_match"] = (lab["choice_key"] == lab["winner_key"]) & decided
    won, total = _pair_outcomes(lab["ranking"].tolist(), lab["winner_key"].tolist())
    lab["pair_won"] = won
    lab["pair_total"] = total
    lab["has_ranking"] = lab["pair_total"] > 0
    lab["naturalness"] = pd.to_numeric(lab["naturalness"], errors="coerce")

    g = lab.groupby("item_id", sort=True)
    out = g[["record_id", "domain", "group", "prompt_index", "role", "winner_key"]].first()
    out["n_labels"] = g.size()
    out["n_decided"] = g["choice_key"].count()
    out["n_cant_decide"] = out["n_labels"] - out["n_decided"]
    out["n_match"] = g["is_match"].sum().astype(int)
    out["pair_won"] = g["pair_won"].sum().astype(int)
    out["pair_total"] = g["pair_total"].sum().astype(int)
    out["n_rankings"] = g["has_ranking"].sum().astype(int)
    out["mean_naturalness"] = g["naturalness"].mean()
    out["n_naturalness"] = g["naturalness"].count()

    vc = lab[decided].groupby(["item_id", "choice_key"]).size().rename("n").reset_index()
    top = vc.groupby("item_id")["n"].transform("max")
    leaders = vc[vc["n"] == top]
    n_leaders = leaders.groupby("item_id").size()
    first = leaders.groupby("item_id")["choice_key"].first()
    top_votes = leaders.groupby("item_id")["n"].first()
    out["tie"] = (n_leaders.reindex(out.index) > 1).fillna(False).astype(bool)
    pick = first.where(n_leaders == 1).reindex(out.index)
    out["plurality_pick"] = pick.astype(object).where(pick.notna(), None)
    share = top_votes.reindex(out.index) / out["n_decided"].where(out["n_decided"] > 0)
    out["agreement_share"] = share
    out["matches_winner"] = (out["plurality_pick"] == out["winner_key"]).astype(bool)
    votes: dict[int, dict[str, int]] = {}
    for item_id, key, n in zip(vc["item_id"].tolist(), vc["choice_key"].tolist(), vc["n"].tolist()):
        votes.setdefault(item_id, {})[key] = int(n)
    out["votes"] = [votes.get(i, {}) for i in out.index]
    out["item_id"] = out.index
    return out[cols]


def _pair_outcomes(rankings: list, winners: list) -> tuple[list[int], list[int]]:
    """(pairs won, pairs total) per label; (0, 0) for labels without a ranking."""
    won, total = [], []
    for r, w in zip(rankings, winners):
        if isinstance(r, (list, tuple)) and w in r:
            won.append(len(r) - 1 - r.index(w))
            total.append(len(r) - 1)
        else:
            won.append(0)
            total.append(0)
    return won, total


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def human_accuracy(
    *,
    summary: pd.DataFrame,
    labels: pd.DataFrame,
    item_weights: Mapping[str, np.ndarray] | None = None,
    draws: int = DRAWS,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict:
    """The report's ``human`` section.

    ``summary`` is ``item_summary``'s frame; ``item_weights[d]`` are bootstrap
    weights whose columns follow ``summary``'s rows of domain ``d`` in order
    (None: computed here with the same seed). ``draws=0`` skips intervals.
    """
    point: dict[str, dict[str, Optional[float]]] = {m: {} for m in ("Pair", "BoN", "Consistency", "label_accuracy")}
    boots: dict[str, dict[str, np.ndarray]] = {m: {} for m in point}
    reasons: dict[str, dict[str, str]] = {m: {} for m in point}
    counts: dict[str, dict[str, int]] = {
        k: {} for k in ("items", "labels", "ranking_labels", "groups", "incomplete_groups", "ties", "no_pick")
    }
    for di, d in enumerate(DOMAINS):
        rows = summary[summary["domain"] == d]
        n = len(rows)
        counts["items"][d] = n
        counts["labels"][d] = int(rows["n_labels"].sum())
        counts["ranking_labels"][d] = int(rows["n_rankings"].sum())
        counts["ties"][d] = int(rows["tie"].sum())
        counts["no_pick"][d] = int(((rows["n_decided"] == 0)).sum())
        if n == 0:
            for m in point:
                point[m][d] = None
                reasons[m][d] = f"no labelled {d} items"
            counts["groups"][d] = counts["incomplete_groups"][d] = 0
            continue
        w = item_weights.get(d) if item_weights is not None else None
        if w is None and draws:
            w = resample_weights(n, draws=draws, seed=seed, stream=di)
        correct = rows["matches_winner"].to_numpy(dtype=float)
        point["BoN"][d] = float(correct.mean())
        n_match = rows["n_match"].to_numpy(dtype=float)
        n_lab = rows["n_labels"].to_numpy(dtype=float)
        point["label_accuracy"][d] = float(n_match.sum() / n_lab.sum())
        won = rows["pair_won"].to_numpy(dtype=float)
        tot = rows["pair_total"].to_numpy(dtype=float)
        if tot.sum() > 0:
            point["Pair"][d] = float(won.sum() / tot.sum())
        else:
            point["Pair"][d] = None
            reasons["Pair"][d] = "no ranking-mode labels"
        if w is not None and draws:
            boots["BoN"][d] = (w @ correct) / n
            boots["label_accuracy"][d] = _ratio(w @ n_match, w @ n_lab)
            if point["Pair"][d] is not None:
                boots["Pair"][d] = _ratio(w @ won, w @ tot)

        consistent, n_incomplete = _group_consistency(rows)
        counts["groups"][d] = len(consistent)
        counts["incomplete_groups"][d] = n_incomplete
        if len(consistent):
            point["Consistency"][d] = float(consistent.mean())
            if draws:
                wg = resample_weights(len(consistent), draws=draws, seed=seed, stream=GROUP_STREAM_OFFSET + di)
                boots["Consistency"][d] = (wg @ consistent) / len(consistent)
        else:
            point["Consistency"][d] = None
            reasons["Consistency"][d] = "no group has labels on all three of its prompts"

    out: dict = {m: with_avg(point[m]) for m in ("Pair", "BoN", "Consistency")}
    out["label_accuracy"] = with_avg(point["label_accuracy"])
    ci: dict[str, dict[str, Optional[list[float]]]] = {}
    for m in point:
        ci[m] = {d: (percentile_ci(boots[m][d], confidence) if d in boots[m] else None) for d in DOMAINS}
        present = [boots[m][d] for d in DOMAINS if d in boots[m]]
        ci[m]["Avg"] = percentile_ci(np.nanmean(np.vstack(present), axis=0), confidence) if present else None
        if out[m if m != "label_accuracy" else "label_accuracy"]["Avg"] is None:
            reasons[m]["Avg"] = "no domain has a value"
    out["ci"] = ci
    out["n"] = counts
    out["reasons"] = reasons
    out["ranking"] = ranking_mode_metrics(labels)
    out["bootstrap"] = {"draws": draws, "seed": seed, "confidence": confidence, "method": "percentile; items (groups for Consistency) resampled within each domain"}
    return out


def _group_consistency(rows: pd.DataFrame) -> tuple[np.ndarray, int]:
    """1/0 per complete group (all three prompts labelled), and the count of incomplete groups."""
    if rows.empty:
        return np.zeros(0), 0
    g = rows.groupby(["record_id", "group"], sort=True)
    n_prompts = g["prompt_index"].nunique()
    n_picks = g["plurality_pick"].nunique(dropna=True)
    has_none = g["plurality_pick"].count() < g.size()
    complete = n_prompts == 3
    consistent = (n_picks == 1) & ~has_none
    return consistent[complete].to_numpy(dtype=float), int((~complete).sum())


def ranking_mode_metrics(labels: pd.DataFrame) -> dict:
    """RMGAP's metrics with each item's Borda counts as the "scores".

    Each ranking gives the response in place p (0-based) of n a count of
    n - p; ties in the summed counts lose (Pair, BoN) and are broken by key
    (Consistency), exactly as for a reward model.
    """
    if labels.empty or not labels["ranking"].map(lambda r: isinstance(r, (list, tuple))).any():
        return {"Pair": with_avg({}), "BoN": with_avg({}), "Consistency": with_avg({}), "reason": "no ranking-mode labels"}
    scores: dict[int, dict[str, float]] = {}
    meta: dict[int, tuple] = {}
    for item_id, r, dom, rec, grp, pi, win in zip(
        labels["item_id"], labels["ranking"], labels["domain"], labels["record_id"], labels["group"],
        labels["prompt_index"], labels["winner_key"],
    ):
        if not isinstance(r, (list, tuple)):
            continue
        s = scores.setdefault(item_id, {})
        for pos, key in enumerate(r):
            s[key] = s.get(key, 0.0) + (len(r) - pos)
        meta[item_id] = (dom, rec, grp, pi, win)
    items = [
        ScoredItem(domain=m[0], record_id=m[1], group=m[2], prompt_index=m[3], winner_key=m[4], scores=scores[i])
        for i, m in meta.items()
    ]
    res = rmgap_metrics(items, complete_groups_only=True)
    return {k: res[k] for k in ("Pair", "BoN", "Consistency", "n_items", "n_groups")}
