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
- **Consistency** (RMGAP's rule, like for like with the scorers): the share
  of groups whose three prompts get the identical full ranking, the ranking
  being the ranking-mode labels' Borda order (``ranking_mode_metrics``);
  null with a reason without ranking-mode labels on all three prompts.
- **TopConsistency**: among groups whose three prompts all have labels, the
  share whose three plurality picks are the same response (no pick or a tie
  on any prompt makes the group inconsistent, like RMGAP's NaN items). Until
  issue 11 this was called ``Consistency``.
- ``ranking``: in ranking mode the labels' Borda counts are scored exactly as
  a reward model's scores are (``metrics.rmgap_metrics``).

Intervals resample whole records within each domain (``stats.bootstrap``):
an item, a group and a label all follow their record. The Avg interval
averages the domains draw by draw. ``clustering`` gives per domain the
within-record correlation of item correctness and the design effect.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pandas as pd

from rmgap_annot.stats.metrics import ScoredItem, group_outcomes, rmgap_metrics, with_avg
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED


def item_summary(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled item: votes, plurality pick, agreement, accuracy counts.

    ``labels`` is ``labels_frame.load_labels``'s frame (columns item_id,
    record_id, domain, group, prompt_index, role, winner_key, choice_key,
    ranking, naturalness).
    """
    cols = [
        "item_id", "record_id", "domain", "group", "prompt_index", "role", "winner_key", "n_labels",
        "n_cant_decide", "n_decided", "votes", "plurality_pick", "tie", "agreement_share", "matches_winner",
        "n_match", "pair_won", "pair_total", "n_rankings", "mean_naturalness", "n_naturalness", "votes_sq",
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
    # sum over keys of votes squared: the agreeing label pairs of an item are (votes_sq - n_decided) / 2
    out["votes_sq"] = (vc["n"] ** 2).groupby(vc["item_id"]).sum().reindex(out.index).fillna(0).astype(int)
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


def record_draws(summary: pd.DataFrame, *, draws: int = DRAWS, seed: int = SEED) -> dict[str, bs.ClusterDraws]:
    """Per domain, bootstrap draws over the records with a labelled item (the resampling unit)."""
    if not draws or summary.empty:
        return {}
    return {
        d: bs.cluster_draws(summary.loc[summary["domain"] == d, "record_id"].to_numpy(), draws=draws, seed=seed,
                            stream=bs.stream_for(d))
        for d in DOMAINS
        if (summary["domain"] == d).any()
    }


HUMAN_METRICS = ("Pair", "BoN", "Consistency", "TopConsistency", "label_accuracy")


def human_accuracy(
    *,
    summary: pd.DataFrame,
    labels: pd.DataFrame,
    draws_by_domain: Mapping[str, bs.ClusterDraws] | None = None,
    draws: int = DRAWS,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict:
    """The report's ``human`` section.

    ``summary`` is ``item_summary``'s frame; ``draws_by_domain[d]`` are the
    record-cluster draws of domain ``d`` (``record_draws``; None: computed
    here with the same seed). ``draws=0`` skips intervals.
    """
    if draws_by_domain is None:
        draws_by_domain = record_draws(summary, draws=draws, seed=seed)
    point: dict[str, dict[str, Optional[float]]] = {m: {} for m in HUMAN_METRICS}
    boots: dict[str, dict[str, np.ndarray]] = {m: {} for m in point}
    cis: dict[str, dict[str, Optional[list[float]]]] = {m: {} for m in point}
    methods: dict[str, dict[str, Optional[str]]] = {m: {} for m in point}
    reasons: dict[str, dict[str, str]] = {m: {} for m in point}
    counts: dict[str, dict[str, int]] = {
        k: {} for k in ("items", "records", "labels", "ranking_labels", "groups", "incomplete_groups", "ranking_groups",
                        "ties", "no_pick")
    }
    clusters: dict[str, dict] = {}
    borda = borda_items(labels)
    borda_groups = group_outcomes(borda)

    def put(m: str, d: str, value: Optional[float], boot: Optional[np.ndarray], **proportion) -> None:  # noqa: ANN003
        point[m][d] = value
        if boot is not None:
            boots[m][d] = boot
        iv = bs.interval(value, boot, confidence=confidence, **proportion)
        cis[m][d], methods[m][d] = iv["ci"], iv["ci_method"]
        if iv["ci"] is None and value is not None and draws:
            reasons[m].setdefault(d, f"no interval: {iv['ci_reason']}")

    for d in DOMAINS:
        rows = summary[summary["domain"] == d]
        n = len(rows)
        counts["items"][d] = n
        counts["records"][d] = int(rows["record_id"].nunique())
        counts["labels"][d] = int(rows["n_labels"].sum())
        counts["ranking_labels"][d] = int(rows["n_rankings"].sum())
        counts["ties"][d] = int(rows["tie"].sum())
        counts["no_pick"][d] = int(((rows["n_decided"] == 0)).sum())
        counts["groups"][d] = counts["incomplete_groups"][d] = counts["ranking_groups"][d] = 0
        if n == 0:
            for m in point:
                put(m, d, None, None)
                reasons[m][d] = f"no labelled {d} items"
            clusters[d] = {**bs.clustering([], []), "reason": f"no labelled {d} items"}
            continue
        cd = draws_by_domain.get(d) if draws else None
        rec = rows["record_id"].to_numpy()
        has_draws = cd is not None

        def tot(values, cluster=rec):  # noqa: ANN001, ANN202 - per-draw weighted sum over this domain's records
            return cd.total(cluster, values)

        correct = rows["matches_winner"].to_numpy(dtype=float)
        clusters[d] = bs.clustering(correct, rec)
        prop = {"design_effect": clusters[d]["design_effect"], "n_clusters": counts["records"][d]}
        if rows["n_decided"].sum() == 0:
            for m in ("BoN", "label_accuracy", "TopConsistency"):
                put(m, d, None, None)
                reasons[m][d] = "every label is Can't decide: no pick to score"
        else:
            put("BoN", d, float(correct.mean()), tot(correct) / n if has_draws else None,
                successes=float(correct.sum()), trials=float(n), **prop)
            n_match = rows["n_match"].to_numpy(dtype=float)
            n_lab = rows["n_labels"].to_numpy(dtype=float)
            put("label_accuracy", d, float(n_match.sum() / n_lab.sum()), _ratio(tot(n_match), tot(n_lab)) if has_draws else None,
                successes=float(n_match.sum()), trials=float(n_lab.sum()), **prop)
            consistent, group_rec, n_incomplete = _group_consistency(rows)
            counts["groups"][d] = len(consistent)
            counts["incomplete_groups"][d] = n_incomplete
            if len(consistent):
                put("TopConsistency", d, float(consistent.mean()), tot(consistent, group_rec) / len(consistent) if has_draws else None,
                    successes=float(consistent.sum()), trials=float(len(consistent)), n_clusters=len(np.unique(group_rec)))
            else:
                put("TopConsistency", d, None, None)
                reasons["TopConsistency"][d] = "no group has labels on all three of its prompts"
        won = rows["pair_won"].to_numpy(dtype=float)
        total = rows["pair_total"].to_numpy(dtype=float)
        if total.sum() > 0:
            put("Pair", d, float(won.sum() / total.sum()), _ratio(tot(won), tot(total)) if has_draws else None,
                successes=float(won.sum()), trials=float(total.sum()), **prop)
        else:
            put("Pair", d, None, None)
            reasons["Pair"][d] = "no ranking-mode labels"
        full = [g for g in borda_groups if g.domain == d]
        counts["ranking_groups"][d] = len(full)
        if full:
            flags = np.array([g.consistent for g in full], dtype=float)
            grec = np.array([g.record_id for g in full])
            put("Consistency", d, float(flags.mean()), tot(flags, grec) / len(flags) if has_draws else None,
                successes=float(flags.sum()), trials=float(len(flags)), n_clusters=len(np.unique(grec)))
        else:
            put("Consistency", d, None, None)
            reasons["Consistency"][d] = (
                "RMGAP's Consistency needs full rankings: no group has ranking-mode labels on all three prompts"
                if counts["ranking_labels"][d] else "RMGAP's Consistency needs full rankings: no ranking-mode labels (see TopConsistency)"
            )

    out: dict = {m: with_avg(point[m]) for m in point}
    for m in point:
        present = [d for d in DOMAINS if point[m][d] is not None]
        if draws:
            iv = bs.mean_of_strata_interval(
                out[m]["Avg"], [boots[m][d] for d in present if d in boots[m]], [cis[m][d] for d in present], confidence
            )
        else:
            iv = bs.interval(out[m]["Avg"], None)
        cis[m]["Avg"], methods[m]["Avg"] = iv["ci"], iv["ci_method"]
        if out[m]["Avg"] is None:
            reasons[m]["Avg"] = "no domain has a value"
        elif iv["ci"] is None and draws:
            reasons[m]["Avg"] = f"no interval: {iv['ci_reason']}"
    out["ci"] = cis
    out["ci_method"] = methods
    if not draws:
        out["ci_reason"] = "no intervals: the report was built with draws=0"
    out["n"] = counts
    out["reasons"] = reasons
    out["clustering"] = clusters
    out["ranking"] = ranking_mode_metrics(labels, items=borda)
    out["bootstrap"] = bootstrap_info(draws=draws, seed=seed, confidence=confidence)
    return out


def bootstrap_info(*, draws: int, seed: int, confidence: float) -> dict:
    """What was resampled (``bootstrap.method`` in the JSON)."""
    return {
        "draws": draws, "seed": seed, "confidence": confidence, "unit": "record",
        "method": "percentile bootstrap over whole records, resampled within each domain (All and Avg: stratified by "
                  "domain); a record's items, groups and labels enter every draw together. Proportions whose draws are all "
                  "equal get a Wilson interval on the effective sample size (n / design effect; records where that is "
                  "undefined); every interval contains its estimate.",
    }


def _group_consistency(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """TopConsistency: 1/0 per complete group (all three prompts labelled), its record, and the incomplete count."""
    if rows.empty:
        return np.zeros(0), np.zeros(0, dtype=object), 0
    g = rows.groupby(["record_id", "group"], sort=True)
    n_prompts = g["prompt_index"].nunique()
    n_picks = g["plurality_pick"].nunique(dropna=True)
    has_none = g["plurality_pick"].count() < g.size()
    complete = n_prompts == 3
    consistent = (n_picks == 1) & ~has_none
    records = consistent.index.get_level_values("record_id").to_numpy()
    return consistent[complete].to_numpy(dtype=float), records[complete.to_numpy()], int((~complete).sum())


def borda_items(labels: pd.DataFrame) -> list[ScoredItem]:
    """Each ranking-labelled item with its labels' summed Borda counts as scores.

    A ranking gives the response in place p (0-based) of n a count of n - p.
    """
    if labels.empty:
        return []
    ranked = labels["ranking"].map(lambda r: isinstance(r, (list, tuple))).to_numpy(dtype=bool)
    if not ranked.any():
        return []
    labels = labels[ranked]
    scores: dict[int, dict[str, float]] = {}
    meta: dict[int, tuple] = {}
    for item_id, r, dom, rec, grp, pi, win in zip(
        labels["item_id"].tolist(), labels["ranking"].tolist(), labels["domain"].tolist(), labels["record_id"].tolist(),
        labels["group"].tolist(), labels["prompt_index"].tolist(), labels["winner_key"].tolist(),
    ):
        s = scores.setdefault(item_id, {})
        for pos, key in enumerate(r):
            s[key] = s.get(key, 0.0) + (len(r) - pos)
        meta[item_id] = (dom, rec, grp, pi, win)
    return [
        ScoredItem(domain=m[0], record_id=m[1], group=m[2], prompt_index=m[3], winner_key=m[4], scores=scores[i])
        for i, m in meta.items()
    ]


def ranking_mode_metrics(labels: pd.DataFrame, *, items: Optional[list[ScoredItem]] = None) -> dict:
    """RMGAP's metrics with each item's Borda counts as the "scores".

    Ties in the summed counts lose (Pair, BoN) and are broken by key
    (Consistency), exactly as for a reward model.
    """
    items = borda_items(labels) if items is None else items
    if not items:
        return {"Pair": with_avg({}), "BoN": with_avg({}), "Consistency": with_avg({}), "reason": "no ranking-mode labels"}
    res = rmgap_metrics(items, complete_groups_only=True)
    out = {k: res[k] for k in ("Pair", "BoN", "Consistency", "n_items", "n_groups")}
    out["reasons"] = {
        m: {d: (f"no {d} item has ranking-mode labels" if m != "Consistency" else f"no {d} group has ranking-mode labels on all three prompts")
            for d in (*DOMAINS, "Avg") if out[m].get(d) is None}
        for m in ("Pair", "BoN", "Consistency")
    }
    return out
