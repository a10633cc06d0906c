"""Does the headline survive a human check? Reward models on the verified items vs the rest.

Issue 11 (item 7, last bullet): each scorer's Pair / BoN / Consistency /
TopConsistency on all labelled items, on the human-verified items only and
on the rest, with record-clustered intervals, and a clustered test of
verified vs rest. "Verified" is exactly the export's rule with its default
thresholds (``export.apply_rule`` with ``export.Rule()``, plurality picks,
the counted labels: excluded annotators count nowhere), so the subset the
numbers describe is the subset ``export-verified`` writes (the rule's
tallies come from the report's item summary, checked equal to
``export.verify`` in tests/test_verdict.py).

Why verified vs *rest* and not vs *all*: the two are disjoint, so their
difference is the question ("do models do better on the items people
confirmed?") without the overlap that makes verified-vs-all shrink towards
zero. A record usually has items in both sets, so the two sides are not
independent: both are resampled with the *same* record draws (the report's
draws, stratified by domain), and the test is the Durkalski-style clustered
score test (``bootstrap.clustered_score_test``) on the per-unit
contribution to the difference, d_i = a_i (y_i - p n_i) / N_a - b_i (y_i - p n_i) / N_b
(p the pooled rate, N the trials of each side), whose sum is p_a - p_b and
whose mean is zero under H0: p_a = p_b. p-values are Holm-adjusted (or as the
report's ``adjust`` says) across scorers, one family per metric and domain.

Shape of ``report["verified_subset"]`` (everything JSON-ready)::

    {
      "rule": {"min_labels": 3, "min_agreement": "2/3", "min_naturalness": "3",
               "aggregate": "plurality", "checks": [str, ...]},
      "n_items": {domain | "All": {"labelled": int, "verified": int, "rest": int}},
      "share_verified": {domain | "All": {"value": float | None, "ci": [lo, hi] | None,
                         "ci_method": str | None, "n_labelled": int, "n_verified"?: int, "reason"?: str}},
      "scorers": {name: {
          "all" | "verified" | "rest": {
              "Pair" | "BoN" | "Consistency" | "TopConsistency": {domain | "Avg": float | None},
              "ci": {metric: {domain | "Avg": [lo, hi] | None}}, "reasons": {metric: {domain: str}},
              "n_items": int},
          "difference": {metric: {domain | "All": {
              "verified": float, "rest": float, "difference": verified - rest,
              "ci": [lo, hi] | None, "p_value": float, "p_adjusted": float, "adjust": str,
              "n_verified": int, "n_rest": int, "n_clusters": int, "reason"?: str}}}}},
      "method": str, "reason"?: str (why ``scorers`` is empty)
    }

``all`` is the scorer's ``labelled_only`` block (the same items and draws).
Metric values per domain and ``Avg`` (RMGAP's plain mean of domains);
differences per domain and ``All`` (pooled over domains, stratified draws).
Consistency and TopConsistency count a group on a side only when all three
of its prompts are on that side; Pair and BoN on a side leave NaN-scored items
out (RMGAP's 0.0 for an all-NaN domain stays in the ``all`` side only).
People are not compared here: a verified item's plurality pick is the winner
by definition (human BoN = 1).

Public helpers (for the referee and paper outputs): ``verified_labelled(summary)``
(the verified item ids), ``rule_stats(summary)``, ``subset_difference(...)``
(any two disjoint unit sets, clustered), ``draw_sums(...)``, ``format_verified``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs

METRICS = ("Pair", "BoN", "Consistency", "TopConsistency")
SIDES = ("verified", "rest")
ALL = "All"
METHOD = (
    "verified = the export rule with its default thresholds (plurality picks, counted labels); rest = the other labelled "
    "items (disjoint). Intervals: the report's record draws (whole records, within domain); verified - rest: the same "
    "draws for both sides and a clustered score test on each unit's contribution to the difference, adjusted across scorers."
)


def rule_stats(summary: pd.DataFrame) -> pd.DataFrame:
    """``export.item_stats``'s tallies for the labelled items, read off the report's item summary.

    The export tallies labels in a Python loop (1-2 s on 40k labels); the
    report already has every count per item, so the tallies are rebuilt here
    in vectorised form and the rule itself (``export.apply_rule``) runs
    unchanged. tests/test_verdict.py checks the verdicts equal ``verify``'s.
    """
    from rmgap_annot.export import STAT_COLUMNS  # noqa: PLC0415

    if summary.empty:
        return pd.DataFrame(columns=STAT_COLUMNS)
    n_decided = summary["n_decided"].to_numpy(dtype=np.int64)
    top = np.rint(summary["agreement_share"].fillna(0).to_numpy(dtype=float) * n_decided).astype(np.int64)
    nat_count = summary["n_naturalness"].to_numpy(dtype=np.int64)
    nat_sum = np.rint(summary["mean_naturalness"].fillna(0).to_numpy(dtype=float) * nat_count).astype(np.int64)
    pick = summary["plurality_pick"].astype(object)
    out = pd.DataFrame({
        "item_id": summary["item_id"].to_numpy(), "record_id": summary["record_id"].to_numpy(),
        "domain": summary["domain"].to_numpy(), "group": summary["group"].to_numpy(),
        "prompt_index": summary["prompt_index"].to_numpy(), "role": summary["role"].to_numpy(),
        "winner_key": summary["winner_key"].to_numpy(), "n_labels": summary["n_labels"].to_numpy(dtype=np.int64),
        "n_decided": n_decided, "n_cant_decide": summary["n_cant_decide"].to_numpy(dtype=np.int64),
        "votes": summary["votes"].to_numpy(), "pick": pick.where(pick.notna(), None).to_numpy(), "top_count": top,
        "tie": summary["tie"].to_numpy(dtype=bool), "nat_sum": nat_sum, "nat_count": nat_count,
        "mean_naturalness": np.where(nat_count > 0, nat_sum / np.where(nat_count > 0, nat_count, 1), np.nan),
    })
    return out[STAT_COLUMNS].reset_index(drop=True)


def verified_labelled(summary: pd.DataFrame) -> set[int]:
    """Ids of the labelled items the export rule (default thresholds) verifies."""
    from rmgap_annot.export import Rule, apply_rule  # noqa: PLC0415

    stats = rule_stats(summary)
    if stats.empty:
        return set()
    verdicts = apply_rule(stats, Rule())
    return set(int(i) for i in verdicts.loc[verdicts["verified"], "item_id"])


def draw_sums(columns: list[np.ndarray], cluster: np.ndarray, stratum: np.ndarray,
              draws_by_stratum: Mapping[str, bs.ClusterDraws]) -> Optional[list[np.ndarray]]:
    """Per-draw weighted sums of several per-unit columns, one set of record draws (stratified) for all.

    The same numbers as ``bootstrap.bind_strata(...).sum(column)``, with the
    records looked up by hash (``pd.Index.get_indexer``) instead of a sorted
    search over object arrays: this section sums dozens of columns.
    """
    if not draws_by_stratum:
        return None
    cluster = np.asarray(cluster)
    stratum = np.asarray(stratum, dtype=object)
    n_draws = next(iter(draws_by_stratum.values())).draws
    if n_draws == 0:
        return None
    totals = [np.zeros(n_draws) for _ in columns]
    for s in dict.fromkeys(stratum.tolist()):
        sel = stratum == s
        cd = draws_by_stratum[s]
        codes = pd.Index(cd.clusters).get_indexer(cluster[sel])
        if (codes < 0).any():
            raise ValueError("a unit's record is not among its domain's drawn records")
        per_cluster = np.vstack([np.bincount(codes, weights=np.asarray(c, float)[sel], minlength=cd.n_clusters) for c in columns])
        block = cd.weights @ per_cluster.T  # draws x columns
        for i in range(len(columns)):
            totals[i] += block[:, i]
    return totals


def _rule_info() -> dict:
    from rmgap_annot.export import Rule  # noqa: PLC0415

    rule = Rule()
    return {"min_labels": rule.min_labels, "min_agreement": str(rule.min_agreement),
            "min_naturalness": str(rule.min_naturalness), "aggregate": "plurality", "checks": rule.describe()}


def subset_difference(
    num: np.ndarray, den: np.ndarray, in_a: np.ndarray, in_b: np.ndarray, cluster: np.ndarray, stratum: np.ndarray,
    draws_by_stratum: Mapping[str, bs.ClusterDraws], *, confidence: float = bs.CONFIDENCE,
) -> dict:
    """rate(a) - rate(b) for two disjoint sets of units, rate = sum(num) / sum(den), clustered.

    The same record draws weigh both sides (a record with units on both
    sides moves both together), and the p-value is the clustered score
    test described in the module docstring.
    """
    num, den = np.asarray(num, float), np.asarray(den, float)
    a, b = np.asarray(in_a, bool), np.asarray(in_b, bool)
    keep = a | b
    num, den, a, b = num[keep], den[keep], a[keep], b[keep]
    cluster, stratum = np.asarray(cluster)[keep], np.asarray(stratum, dtype=object)[keep]
    sums = draw_sums([num * a, den * a, num * b, den * b], cluster, stratum, draws_by_stratum)
    return _difference(num, den, a, b, cluster, sums, confidence)


def _difference(num: np.ndarray, den: np.ndarray, a: np.ndarray, b: np.ndarray, cluster: np.ndarray,
                sums: Optional[list[np.ndarray]], confidence: float) -> dict:
    """``subset_difference`` from per-draw sums already taken: [num*a, den*a, num*b, den*b]."""
    na, nb = den[a].sum(), den[b].sum()
    out: dict[str, Any] = {"verified": None, "rest": None, "difference": None, "ci": None, "p_value": None,
                           "n_verified": int(a.sum()), "n_rest": int(b.sum()), "n_clusters": int(len(pd.unique(cluster)))}
    if na <= 0 or nb <= 0:
        side = "verified" if na <= 0 else "rest"
        out["reason"] = f"no {side} units with a defined outcome: nothing to compare"
        if na > 0:
            out["verified"] = float(num[a].sum() / na)
        if nb > 0:
            out["rest"] = float(num[b].sum() / nb)
        return out
    pa, pb = float(num[a].sum() / na), float(num[b].sum() / nb)
    point = pa - pb
    boot = None
    if sums is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = sums[0] / sums[1] - sums[2] / sums[3]
    out.update(verified=pa, rest=pb, difference=point)
    out.update(bs.interval(point, boot, confidence=confidence))
    pooled = float(num.sum() / den.sum())
    resid = num - pooled * den
    test = bs.clustered_score_test(np.where(a, resid / na, 0.0) - np.where(b, resid / nb, 0.0), cluster)
    out.update(p_value=test["p_value"], statistic=test["statistic"], test=test["test"])
    if "note" in test:
        out["note"] = test["note"]
    return out


def matrix_table(layout, matrix) -> pd.DataFrame:  # noqa: ANN001 - score_matrix.Layout, score_matrix.ScoreMatrix
    """Per scored item: (pairs won, pairs total, BoN correct, NaN, top pick, ranking code), from the scorer's score matrix.

    Built from what the scorer section already read, so no score is read twice.

    The outcomes are ``score_matrix.outcomes``' (the same rules: a tie is a
    loss, a tie at the top or any NaN is no top pick, rankings break ties by
    response key); ``group`` is the layout's group code, which like
    (record, group) names one prompt group.
    """
    from rmgap_annot.stats import score_matrix as sm  # noqa: PLC0415

    out = sm.outcomes(layout, matrix)
    rows = out.rows
    width = out.order.shape[1] if out.order.ndim == 2 else 0
    rank = out.order.astype(np.int64) @ (max(width, 1) ** np.arange(width, dtype=np.int64)) if width else np.zeros(len(rows), np.int64)
    return pd.DataFrame({
        "item_id": layout.item_id[rows].astype(np.int64), "domain": layout.domain[rows], "record_id": layout.record_id[rows],
        "group": layout.group_code[rows], "won": out.won.astype(float), "total": out.total.astype(float),
        "best": out.best.astype(float), "nan": out.nan.astype(bool), "top": out.top.astype(np.int64), "rank": rank,
    })


def _unit_rows(table: pd.DataFrame, side_of: Mapping[int, str]) -> dict[str, dict[str, np.ndarray]]:
    """Per metric: num, den, side flag (verified), record and domain of each unit (an item, or a complete group).

    Pair and BoN: items without a NaN score (as ``rmgap_metrics`` counts
    them); Consistency / TopConsistency: groups whose three prompts are all
    on one side (as ``group_outcomes``: a NaN makes a group inconsistent).
    """
    from rmgap_annot.stats.metrics import PROMPTS_PER_GROUP  # noqa: PLC0415

    t = table.copy()
    t["a"] = [side_of[int(i)] == "verified" for i in t["item_id"]]
    ok = t[~t["nan"].astype(bool)]
    out = {}
    for m, num, den in (("Pair", ok["won"], ok["total"]), ("BoN", ok["best"], np.ones(len(ok)))):
        out[m] = {"num": np.asarray(num, float), "den": np.asarray(den, float), "a": ok["a"].to_numpy(bool),
                  "rec": ok["record_id"].to_numpy(dtype=object), "dom": ok["domain"].to_numpy(dtype=object)}
    g = t.assign(no_top=t["top"] < 0).groupby(["a", "domain", "record_id", "group"], sort=False).agg(
        size=("item_id", "size"), nan=("nan", "any"), ranks=("rank", "nunique"), tops=("top", "nunique"), no_top=("no_top", "any"),
    ).reset_index()
    g = g[g["size"] == PROMPTS_PER_GROUP]
    consistent = (~g["nan"].astype(bool)) & (g["ranks"] == 1)
    top_consistent = (~g["no_top"].astype(bool)) & (g["tops"] == 1)
    for m, flags in (("Consistency", consistent), ("TopConsistency", top_consistent)):
        out[m] = {"num": flags.to_numpy(float), "den": np.ones(len(g)), "a": g["a"].to_numpy(bool),
                  "rec": g["record_id"].to_numpy(dtype=object), "dom": g["domain"].to_numpy(dtype=object)}
    return out


def _no_units(d: str) -> str:
    return "no labelled unit with a defined outcome" if d == ALL else f"no labelled {d} unit with a defined outcome"


def _sides_and_differences(table: pd.DataFrame, side_of: Mapping[int, str], draws_by_domain: Mapping, confidence: float) -> tuple[dict, dict]:
    """({verified, rest} metric blocks, differences) in one pass: one set of draw sums per metric and domain serves both."""
    units = _unit_rows(table, side_of)
    blocks = {side: {**{m: {} for m in METRICS}, "ci": {m: {} for m in METRICS}, "reasons": {m: {} for m in METRICS},
                     "n_items": sum(1 for i in table["item_id"] if side_of[int(i)] == side)} for side in SIDES}
    diffs: dict[str, dict] = {m: {} for m in METRICS}
    unit_word = {"Pair": "item", "BoN": "item", "Consistency": "complete group", "TopConsistency": "complete group"}
    for m in METRICS:
        u = units[m]
        boots: dict[str, dict[str, np.ndarray]] = {side: {} for side in SIDES}
        pooled: Optional[list[np.ndarray]] = None
        for d in DOMAINS:
            sel = u["dom"] == d
            num, den, a, rec = u["num"][sel], u["den"][sel], u["a"][sel], u["rec"][sel]
            b = ~a
            sums = draw_sums([num * a, den * a, num * b, den * b], rec, u["dom"][sel], draws_by_domain) if sel.any() else None
            if sums is not None:
                pooled = sums if pooled is None else [p + q for p, q in zip(pooled, sums)]
            for side, flag, k in (("verified", a, 0), ("rest", b, 2)):
                block = blocks[side]
                n = den[flag].sum()
                if n <= 0:
                    block[m][d], block["ci"][m][d] = None, None
                    block["reasons"][m][d] = f"no {d} {unit_word[m]} on this side" + (
                        " with a defined outcome (NaN scores are left out)" if m in ("Pair", "BoN") else "")
                    continue
                value = float(num[flag].sum() / n)
                boot = None
                if sums is not None:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        boot = sums[k] / sums[k + 1]
                    boots[side][d] = boot
                info = bs.clustering(num[flag] / den[flag], rec[flag]) if m != "Pair" else {"design_effect": None}
                iv = bs.interval(value, boot, confidence=confidence, successes=float(num[flag].sum()), trials=float(n),
                                 design_effect=info["design_effect"], n_clusters=int(len(pd.unique(rec[flag]))))
                block[m][d], block["ci"][m][d] = value, iv["ci"]
                if iv["ci"] is None:
                    block["reasons"][m][d] = f"no interval: {iv.get('ci_reason')}"
            diffs[m][d] = (_difference(num, den, a, b, rec, sums, confidence) if sel.any() else
                           {"verified": None, "rest": None, "difference": None, "ci": None, "p_value": None,
                            "n_verified": 0, "n_rest": 0, "n_clusters": 0, "reason": _no_units(d)})
        a = u["a"]
        diffs[m][ALL] = (_difference(u["num"], u["den"], a, ~a, u["rec"], pooled, confidence) if len(a) else
                         {"verified": None, "rest": None, "difference": None, "ci": None, "p_value": None,
                          "n_verified": 0, "n_rest": 0, "n_clusters": 0, "reason": _no_units(ALL)})
        for side in SIDES:
            block = blocks[side]
            present = [d for d in DOMAINS if block[m][d] is not None]
            avg = float(np.mean([block[m][d] for d in present])) if present else None
            with_boot = [d for d in present if d in boots[side]]
            iv = (bs.mean_of_strata_interval(avg, [boots[side][d] for d in with_boot], [block["ci"][m][d] for d in with_boot], confidence)
                  if avg is not None and with_boot and len(with_boot) == len(present) else bs.interval(avg, None))
            block[m]["Avg"], block["ci"][m]["Avg"] = avg, iv["ci"]
            if avg is None:
                block["reasons"][m]["Avg"] = "no domain has a value on this side"
            elif iv["ci"] is None:
                block["reasons"][m]["Avg"] = "no interval: no bootstrap draws (draws=0)"
    return blocks, diffs


def _share_verified(summary: pd.DataFrame, verified: set, draws_by_domain: Mapping, confidence: float) -> dict:
    out: dict[str, dict] = {}
    v_all = summary["item_id"].isin(verified).to_numpy(dtype=float) if len(summary) else np.zeros(0)
    rec_all = summary["record_id"].to_numpy() if len(summary) else np.zeros(0)
    dom_all = summary["domain"].to_numpy(dtype=object) if len(summary) else np.zeros(0, dtype=object)
    for d in (*DOMAINS, ALL):
        sel = np.ones(len(v_all), bool) if d == ALL else (dom_all == d)
        n = int(sel.sum())
        if n == 0:
            out[d] = {"value": None, "ci": None, "ci_method": None, "n_labelled": 0,
                      "reason": "no labelled items yet" if d == ALL else f"no labelled {d} items"}
            continue
        v, rec = v_all[sel], rec_all[sel]
        sums = draw_sums([v, np.ones(n)], rec, dom_all[sel], draws_by_domain)
        boot = None
        if sums is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = sums[0] / sums[1]
        point = float(v.mean())
        info = bs.clustering(v, rec)
        entry = {"value": point, "n_labelled": n, "n_verified": int(v.sum())}
        entry.update(bs.interval(point, boot, confidence=confidence, successes=float(v.sum()), trials=float(n),
                                 design_effect=info["design_effect"], n_clusters=int(len(np.unique(rec)))))
        out[d] = entry
    return out


def verified_subset_section(
    *, engine: Engine, benchmark_id: int, summary: pd.DataFrame,
    record_draws: Mapping[str, bs.ClusterDraws], scorers: Optional[Mapping[str, dict]] = None,
    scored_tables: Optional[Mapping[str, pd.DataFrame]] = None, confidence: float = bs.CONFIDENCE, adjust: str = "holm",
) -> dict:
    """``report["verified_subset"]`` (shape in the module docstring).

    ``summary``/``record_draws``: the report's item summary (of the counted
    labels, with plurality picks) and record draws; ``scorers``: the report's ``scorers``
    section, whose ``labelled_only`` blocks are the ``all`` side;
    ``scored_tables``: name -> per-item outcome table (``matrix_table``) from
    the score matrices the scorer section read (read again when absent).
    """
    labelled = set(int(i) for i in summary["item_id"]) if len(summary) else set()
    verified = verified_labelled(summary)
    counts: dict[str, dict] = {}
    dom = summary["domain"] if len(summary) else pd.Series(dtype=object)
    for d in (*DOMAINS, ALL):
        ids = set(int(i) for i in (summary["item_id"] if d == ALL else summary.loc[dom == d, "item_id"])) if len(summary) else set()
        counts[d] = {"labelled": len(ids), "verified": len(ids & verified), "rest": len(ids - verified)}
    out: dict[str, Any] = {
        "rule": _rule_info(),
        "n_items": counts,
        "share_verified": _share_verified(summary, verified, record_draws, confidence),
        "scorers": {},
        "method": METHOD,
    }
    if not labelled:
        out["reason"] = "no labelled items yet"
        return out
    if not scorers:
        out["reason"] = "no reward model has scores on this benchmark (rmgap-annot score)"
        return out
    side_of = {i: ("verified" if i in verified else "rest") for i in labelled}
    for name, section in scorers.items():
        table = (scored_tables or {}).get(name)
        if table is None:
            table = _read_table(engine=engine, benchmark_id=benchmark_id, name=name)
        mine = table[table["item_id"].isin(list(labelled))]
        blocks, diffs = _sides_and_differences(mine, side_of, record_draws, confidence)
        out["scorers"][name] = {"all": _all_side(section, len(mine)), **blocks, "difference": diffs}
    for m in METRICS:
        for d in (*DOMAINS, ALL):
            bs.adjust_family({n: e["difference"][m][d] for n, e in out["scorers"].items()}, adjust)
    return out


def _read_table(*, engine: Engine, benchmark_id: int, name: str) -> pd.DataFrame:
    from sqlalchemy import select  # noqa: PLC0415

    from rmgap_annot.stats import score_matrix as sm  # noqa: PLC0415
    from rmgap_annot.db import session_scope  # noqa: PLC0415
    from rmgap_annot.models import Scorer  # noqa: PLC0415

    with session_scope(engine) as session:
        scorer_id = session.execute(select(Scorer.id).where(Scorer.name == name)).scalar_one()
    layout = sm.load_layout(engine=engine, benchmark_id=benchmark_id)
    return matrix_table(layout, sm.load_scores(engine=engine, layout=layout, scorer_id=scorer_id))


def _all_side(section: Mapping, n_items: int) -> dict:
    """The ``all`` side: the scorer section's ``labelled_only`` block (the same items, the same record draws)."""
    lab = section.get("labelled_only") if isinstance(section, Mapping) else None
    if not isinstance(lab, Mapping):
        return {"reason": "the scorer section has no labelled-only block", "n_items": n_items}
    return {**{m: lab.get(m) for m in METRICS}, "ci": lab.get("ci"), "reasons": lab.get("reasons"), "n_items": lab.get("n_items", n_items)}


def format_verified(section: Mapping) -> str:
    """Plain text for ``rmgap-annot report``: share verified, then each scorer's BoN on all / verified / rest."""

    def pct(v: Any, ci: Any = None) -> str:
        if v is None:
            return "n/a"
        return f"{v * 100:.1f}%" + (f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if ci else "")

    share = section.get("share_verified") or {}
    lines = ["The headline on the verified subset (export rule, default thresholds; 95% intervals resample whole records)",
             "  items verified: " + "; ".join(
                 f"{d} {pct((share.get(d) or {}).get('value'), (share.get(d) or {}).get('ci'))}" for d in (*DOMAINS, ALL))]
    if not section.get("scorers"):
        lines.append(f"  reward models: n/a ({section.get('reason', 'none')})")
        return "\n".join(lines)
    lines.append(f"  {'scorer / BoN':<30}{'all labelled':>24}{'verified':>24}{'rest':>24}{'verified - rest':>26}{'p adj':>8}")
    for name, e in section["scorers"].items():
        for d in (*DOMAINS, ALL):
            key = "Avg" if d == ALL else d
            diff = e["difference"]["BoN"][d]
            p = diff.get("p_adjusted")
            lines.append(
                f"  {(name[:20] + ' ' + d):<30}" + "".join(f"{pct(e[s]['BoN'].get(key), e[s]['ci']['BoN'].get(key)):>24}" for s in ("all", "verified", "rest"))
                + f"{pct(diff.get('difference'), diff.get('ci')):>26}{'n/a' if p is None else f'{p:.3g}':>8}"
            )
    return "\n".join(lines)


def _pct(v: Any, ci: Any = None) -> str:
    if v is None:
        return "n/a"
    return f"{v * 100:.1f}%" + (f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if ci else "")


def verified_rows(section: Mapping) -> list[dict]:
    """Per scorer and domain (+ All): BoN on all labelled / verified / rest items and verified - rest, as text cells."""
    rows = []
    for name, e in (section.get("scorers") or {}).items():
        for d in (*DOMAINS, ALL):
            key = "Avg" if d == ALL else d
            diff = e["difference"]["BoN"][d]
            p = diff.get("p_adjusted")
            rows.append({
                "scorer": name, "domain": d if d != ALL else "All (Avg; difference pooled)",
                **{side: _pct((e[side].get("BoN") or {}).get(key), ((e[side].get("ci") or {}).get("BoN") or {}).get(key))
                   for side in ("all", "verified", "rest")},
                "verified - rest": _pct(diff.get("difference"), diff.get("ci")) if diff.get("difference") is not None
                else f"n/a ({diff.get('reason', 'undefined')})",
                "p (adjusted)": "n/a" if p is None else f"{p:.3g}",
            })
    return rows


def verified_markdown(section: Optional[Mapping]) -> str:
    """The dataset card's section: reward models' BoN on all labelled, verified and other items."""
    lines = ["## Reward models on the verified items", ""]
    if not isinstance(section, Mapping):
        return "\n".join(lines + ["n/a (no verified-subset numbers in the analytics)", ""])
    rows = verified_rows(section)
    if not rows:
        return "\n".join(lines + [f"n/a ({section.get('reason', 'no reward model')})", ""])
    cols = list(rows[0])
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "/") for c in cols) + " |" for r in rows]
    lines += ["", f"BoN, 95% intervals. {section.get('method', '')}", ""]
    return "\n".join(lines)


def verified_html(section: Optional[Mapping]) -> str:
    """report.html's section (the same table as the card)."""
    import html  # noqa: PLC0415

    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    head = "<h2>Reward models on the verified items</h2>"
    rows = verified_rows(section) if isinstance(section, Mapping) else []
    if not rows:
        why = section.get("reason", "no reward model") if isinstance(section, Mapping) else "no verified-subset numbers"
        return f"{head}<p>n/a ({e(why)})</p>"
    cols = list(rows[0])
    table = ("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"
             + "".join("<tr>" + "".join(f"<td>{e(r[c])}</td>" for c in cols) + "</tr>" for r in rows) + "</table>")
    return f"{head}{table}<p class=\"note\">BoN, 95% intervals. {e(section.get('method', ''))}</p>"
