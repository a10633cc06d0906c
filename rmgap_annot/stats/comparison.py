"""Humans and reward models on the identical items, in RMGAP's metrics.

For each scorer: Pair / BoN / Consistency on every item it scored, and again
on exactly the items people labelled (so the human and model columns are
computed on one set); how often its top pick equals the human plurality
pick; and an exact McNemar test of human-majority vs scorer BoN correctness
on the same labelled items (``scipy.stats.binomtest`` on the discordant
pairs: with few items the chi-square approximation is wrong).

Definitions kept in one place:
- human plurality pick of an item: the unique most-voted response key among
  its labels ("Can't decide" is not a vote, as in ``human_metrics``); a tie
  for first place, or no decided label at all, is no pick.
- human-majority correct: the plurality pick is the designated winner.
- scorer top pick: the unique highest score; a tie at the top is no pick
  (RMGAP counts ties as losses too).

How: RMGAP has 24 reward models, so the benchmark's layout, the human
picks and the record draws are prepared once and shared by every scorer;
each scorer is one query and array operations over its score matrix
(``score_matrix``). The per-item code this replaced is kept as
tests/reference_scorers.py and the tests check both give the same JSON to
the last bit.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Mapping, Optional, Sequence

import numpy as np

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.stats import score_matrix as sm
from rmgap_annot.stats.metrics import METRIC_NAMES, top_pick, with_avg  # noqa: F401 - top_pick: part of this module's API
from rmgap_annot.models import Item, Score, Scorer
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED


def picks_from_summary(summary) -> dict[int, Optional[str]]:  # noqa: ANN001 (a human_metrics.item_summary frame)
    """item_id -> plurality pick (None: no unique pick), as human_metrics defines it."""
    return {int(i): p for i, p in zip(summary.index, summary["plurality_pick"])}


def plurality_picks(*, engine: Engine, benchmark_id: int) -> dict[int, Optional[str]]:
    """item_id -> the human plurality pick (None: no unique pick) for every labelled item."""
    from rmgap_annot.stats.human_metrics import item_summary

    # Excluded annotators count nowhere, the scorer comparison included.
    return picks_from_summary(item_summary(counted_labels(engine=engine, benchmark_id=benchmark_id).labels))


def mcnemar_exact(human_correct: Sequence[bool], scorer_correct: Sequence[bool]) -> dict:
    """Exact McNemar: two-sided binomial test of the discordant pairs at p = 0.5.

    Item-level: it treats a record's twelve items as independent, which they
    are not, so it rejects true nulls far too often (issue 11). Kept for
    comparison with published figures; ``vs_human`` holds the clustered test.
    """
    h = np.asarray(human_correct, dtype=bool)
    s = np.asarray(scorer_correct, dtype=bool)
    b, c, n = int((h & ~s).sum()), int((s & ~h).sum()), len(h)
    if n == 0:
        return {"n_items": 0, "human_bon": None, "scorer_bon": None, "human_only_correct": 0, "scorer_only_correct": 0,
                "p_value": None, "reason": "no labelled item with a defined scorer outcome (NaN scores or none labelled)"}
    return {
        "n_items": n,
        "human_bon": int(h.sum()) / n,
        "scorer_bon": int(s.sum()) / n,
        "human_only_correct": b,
        "scorer_only_correct": c,
        "p_value": _binomial_p(b, b + c) if b + c else 1.0,
    }


@functools.lru_cache(maxsize=4096)
def _binomial_p(successes: int, trials: int) -> float:
    """Two-sided exact binomial p at 0.5 (scipy's); cached, as 24 scorers x 5 domains repeat counts."""
    from scipy.stats import binomtest

    return float(binomtest(successes, trials, 0.5).pvalue)


def _per_domain_share(flags: Mapping[str, list[bool]]) -> dict:
    share = {d: (sum(flags[d]) / len(flags[d]) if flags[d] else None) for d in DOMAINS}
    present = [v for v in share.values() if v is not None]
    share["Avg"] = sum(present) / len(present) if present else None
    return share


class _SharedProducts(bs.UnitDraws):
    """``UnitDraws`` whose draws x clusters products are computed once per (draws, per-cluster sums).

    Every per-cluster sum here is of whole numbers (counts of pairs, items,
    groups, differences of 0/1 outcomes), so a product is exact and a reused
    one is the very same number. Denominators repeat across scorers (every
    complete scorer has the same items per record) and a pooled ``All`` sums
    its domains' products again: about half the products are reused.
    """

    def __init__(self, weights: np.ndarray, column: np.ndarray, memo: dict) -> None:
        super().__init__(weights, column)
        object.__setattr__(self, "memo", memo)

    def sum(self, per_unit) -> np.ndarray:  # noqa: ANN001
        per_cluster = self.per_cluster(per_unit)
        key = (id(self.weights), per_cluster.shape, per_cluster.tobytes())
        out = self.memo.get(key)
        if out is None:
            out = self.memo[key] = self.weights @ per_cluster
        return out


class _SharedDraws:
    """Record draws and cluster columns shared by every scorer of one benchmark.

    A scorer's own draws depend only on the records it scored (the same
    records give the very same draws, so 24 full scorers share one set), and
    each set of draws maps a record to its column once, not per scorer.
    """

    def __init__(self, layout: sm.Layout, *, draws: int, seed: int) -> None:
        self.layout, self.draws, self.seed = layout, draws, seed
        self._draws: dict[tuple, bs.ClusterDraws] = {}
        self._columns: dict[int, tuple[bs.ClusterDraws, np.ndarray]] = {}
        self._products: dict[tuple, np.ndarray] = {}

    def over(self, rows: np.ndarray) -> dict[str, bs.ClusterDraws]:
        """Per domain, draws over the records of these layout rows (the reference's ``_draws_over``)."""
        if not self.draws:
            return {}
        out = {}
        domain, code = self.layout.domain[rows], self.layout.record_code[rows]
        for d in dict.fromkeys(domain.tolist()):
            # Record codes rank the record ids as strings, so the clusters are in the same order as sorted ids.
            clusters = np.unique(code[domain == d])
            key = (d, clusters.tobytes())
            if key not in self._draws:
                self._draws[key] = bs.ClusterDraws(
                    clusters, bs.multinomial_counts(len(clusters), draws=self.draws, seed=self.seed, stream=bs.stream_for(d)))
            out[d] = self._draws[key]
        return out

    def unit_draws(self, cd: bs.ClusterDraws, record_code: np.ndarray) -> bs.UnitDraws:
        """``cd.bind`` for units given by record code (draws over record ids or over codes alike)."""
        cached = self._columns.get(id(cd))
        if cached is None or cached[0] is not cd:
            column = np.full(len(self.layout.records), -1, dtype=np.int64)
            if any(cd is own for own in self._draws.values()):  # drawn here: its clusters are record codes
                column[cd.clusters] = np.arange(cd.n_clusters)
            else:  # the caller's (the report's): its clusters are record ids
                records = self.layout.records.astype(cd.clusters.dtype) if len(self.layout.records) else self.layout.records
                at = np.minimum(np.searchsorted(cd.clusters, records), max(cd.n_clusters - 1, 0))
                found = cd.clusters[at] == records if cd.n_clusters else np.zeros(len(column), bool)
                column[found] = at[found]
            cached = self._columns[id(cd)] = (cd, column)
        col = cached[1][record_code]
        if len(col) and col.min() < 0:
            raise ValueError("a unit's cluster is not among this stratum's clusters")
        return _SharedProducts(cd.weights, col, self._products)

    def strata(self, draws: Mapping[str, bs.ClusterDraws], record_code: np.ndarray, domain: np.ndarray) -> Optional[bs.StrataDraws]:
        """``bs.bind_strata`` for units given by record code."""
        if not draws:
            return None
        n_draws = next(iter(draws.values())).draws
        if n_draws == 0:
            return None
        parts = []
        for s in dict.fromkeys(domain.tolist()):
            pos = np.flatnonzero(domain == s)
            parts.append((pos, self.unit_draws(draws[s], record_code[pos])))
        return bs.StrataDraws(tuple(parts), n_draws)


def _intervals(
    layout: sm.Layout, out: sm.Outcomes, sel: np.ndarray, grp: sm.Groups, metrics: Mapping,
    draws_by_domain: Mapping[str, bs.ClusterDraws], shared: _SharedDraws, *, confidence: float,
) -> dict:
    """Record-clustered intervals of Pair, BoN, Consistency, TopConsistency per domain and Avg.

    ``metrics`` holds the point values of the selected items; TopConsistency's
    is computed here from the complete groups. A domain RMGAP scores 0.0 only
    because every item is NaN gets no interval.
    """
    domain = layout.domain[out.rows[sel]]
    top = {d: None for d in DOMAINS}
    ci: dict[str, dict] = {m: {} for m in (*METRIC_NAMES, "TopConsistency")}
    methods: dict[str, dict] = {m: {} for m in ci}
    reasons: dict[str, dict] = {m: dict(metrics.get("reasons", {}).get(m, {})) for m in ci}
    boots: dict[str, dict[str, np.ndarray]] = {m: {} for m in ci}
    for d in DOMAINS:
        units = sel[domain == d]
        cd = draws_by_domain.get(d)
        complete = (grp.domain == d) & grp.complete
        if metrics["Consistency"][d] is None:
            reasons["Consistency"][d] = "no group has all three prompts scored" if len(units) else f"no {d} items"
        if complete.any():
            top[d] = float(np.mean(grp.top_consistent[complete]))
        elif len(units):
            reasons["TopConsistency"][d] = "no group has all three prompts scored"
        else:
            reasons["TopConsistency"][d] = f"no {d} items"
        if not len(units) or cd is None or cd.draws == 0:
            for m in ci:
                ci[m][d], methods[m][d] = None, None
            continue
        rec = layout.record_code[out.rows[units]]
        w = shared.unit_draws(cd, rec)
        ok = (~out.nan[units]).astype(float)
        won, tot = out.won[units].astype(float), out.total[units].astype(float)
        best = out.best[units].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = {"Pair": w.sum(won) / w.sum(tot), "BoN": w.sum(best) / w.sum(ok)}
        info = bs.clustering(best[ok > 0], rec[ok > 0])
        proportions = {"Pair": (won.sum(), tot.sum()), "BoN": (best.sum(), ok.sum())}
        if complete.any():
            gw = shared.unit_draws(cd, grp.record_code[complete])
            for m, flags in (("Consistency", grp.consistent[complete]), ("TopConsistency", grp.top_consistent[complete])):
                flags = flags.astype(float)
                draws[m] = gw.sum(flags) / len(flags)
                proportions[m] = (flags.sum(), float(len(flags)))
        values = {**{m: metrics[m][d] for m in METRIC_NAMES}, "TopConsistency": top[d]}
        for m in ci:
            defined = metrics.get("defined", {}).get(m, {}).get(d, True)
            if m not in draws or values[m] is None or not defined:
                ci[m][d], methods[m][d] = None, None
                if values[m] is not None:
                    boots[m][d] = np.full(cd.draws, values[m])  # RMGAP's constant 0.0 enters Avg as it is
                    reasons[m].setdefault(d, "no interval: the value is not estimated from data")
                continue
            boots[m][d] = draws[m]
            succ, n = proportions[m]
            iv = bs.interval(values[m], draws[m], confidence=confidence, successes=float(succ), trials=float(n),
                             design_effect=info["design_effect"], n_clusters=cd.n_clusters)
            ci[m][d], methods[m][d] = iv["ci"], iv["ci_method"]
    top_avg = with_avg(top)
    for m in ci:
        avg = top_avg["Avg"] if m == "TopConsistency" else metrics[m]["Avg"]
        present = [d for d in DOMAINS if d in boots[m]]
        iv = bs.mean_of_strata_interval(avg, [boots[m][d] for d in present], [ci[m][d] for d in present], confidence) if present else bs.interval(avg, None)
        ci[m]["Avg"], methods[m]["Avg"] = iv["ci"], iv["ci_method"]
        if avg is None:
            reasons[m]["Avg"] = "no domain has a value"
        elif iv["ci"] is None:
            reasons[m]["Avg"] = "no interval: no domain has bootstrap draws (draws=0)" if not present else f"no interval: {iv.get('ci_reason')}"
    for m in ci:
        for d in DOMAINS:
            if ci[m][d] is None and (metrics[m][d] if m != "TopConsistency" else top[d]) is not None:
                reasons[m].setdefault(d, "no interval: no bootstrap draws (draws=0)")
    return {"TopConsistency": top_avg, "ci": ci, "ci_method": methods, "reasons": reasons}


def _tests(
    layout: sm.Layout, out: sm.Outcomes, lab: np.ndarray, human_ok: np.ndarray, human_draws: Mapping[str, bs.ClusterDraws],
    scorer_draws: Mapping[str, bs.ClusterDraws], shared: _SharedDraws, confidence: float,
) -> tuple[dict, dict]:
    """(human minus scorer BoN, scorer against chance) per domain and All, clustered by record.

    ``lab``: positions of the labelled items; ``human_ok``: whether the human
    plurality pick is the winner, per position of ``out``.
    """
    lab_domain = layout.domain[out.rows[lab]]
    pairs = lab[~out.nan[lab]]  # labelled items with a defined scorer outcome
    p_domain, p_rec = layout.domain[out.rows[pairs]], layout.record_code[out.rows[pairs]]
    p_human, p_scorer = human_ok[pairs].astype(float), out.best[pairs].astype(float)
    vs_human: dict[str, dict] = {}
    for d in (*DOMAINS, "All"):
        keep = np.ones(len(pairs), bool) if d == "All" else p_domain == d
        n_lab = len(lab) if d == "All" else int((lab_domain == d).sum())
        if not keep.any():
            vs_human[d] = {"difference": None, "ci": None, "p_value": None, "n_units": 0,
                           "reason": ("every labelled item has a NaN score: nothing to compare" if n_lab
                                      else "no labelled item scored")}
            continue
        rec, dom = p_rec[keep], p_domain[keep]
        w = shared.strata(human_draws, rec, dom)
        vs_human[d] = bs.paired_difference(p_human[keep], p_scorer[keep], rec, w, confidence=confidence)
        vs_human[d]["human_bon"] = vs_human[d].pop("a")
        vs_human[d]["scorer_bon"] = vs_human[d].pop("b")
    every = np.flatnonzero(~out.nan)
    e_domain, e_rec = layout.domain[out.rows[every]], layout.record_code[out.rows[every]]
    all_domain = layout.domain[out.rows]
    chance = 1 / layout.n_keys[out.rows[every]]
    vs_chance: dict[str, dict[str, dict]] = {"BoN": {}, "Pair": {}}
    for d in (*DOMAINS, "All"):
        keep = np.ones(len(every), bool) if d == "All" else e_domain == d
        if not keep.any():
            n_all = len(out.rows) if d == "All" else int((all_domain == d).sum())
            reason = "every item has a NaN score: nothing to test" if n_all else "no items scored"
            for m in vs_chance:
                vs_chance[m][d] = {"value": None, "chance": None, "ci": None, "p_value": None, "n_units": 0, "reason": reason}
            continue
        rec, dom, units = e_rec[keep], e_domain[keep], every[keep]
        w = shared.strata(scorer_draws, rec, dom)
        n = len(units)
        vs_chance["BoN"][d] = bs.versus_chance(out.best[units].astype(float), np.ones(n), chance[keep], rec, w, confidence=confidence)
        vs_chance["Pair"][d] = bs.versus_chance(out.won[units].astype(float), out.total[units].astype(float), np.full(n, 0.5), rec, w,
                                                confidence=confidence)
    return vs_human, vs_chance


NO_HUMAN_PICK, UNKNOWN_PICK = -2, -3


def compare_matrix(
    *, layout: sm.Layout, matrix: sm.ScoreMatrix, pick_col: np.ndarray, labelled: np.ndarray, shared: _SharedDraws,
    human_draws: Optional[Mapping[str, bs.ClusterDraws]] = None, confidence: float = CONFIDENCE,
) -> dict:
    """Every number of one scorer's section, from its score matrix and the human picks.

    ``pick_col``: per layout row, the column of the human plurality pick
    (``NO_HUMAN_PICK``: none); ``labelled``: per layout row, whether people
    labelled it (it has an entry in the picks). ``human_draws``: the human
    section's record draws per domain, so the labelled-only intervals and the
    human-minus-scorer differences resample the very records the human
    column did (paired). None: drawn here over the labelled records.
    """
    out = sm.outcomes(layout, matrix)
    every = np.arange(len(out.rows))
    lab = np.flatnonzero(labelled[out.rows])
    grp_all, grp_lab = sm.groups(layout, out, every), sm.groups(layout, out, lab)
    everything = sm.rmgap_metrics(layout, out, every, grp_all, complete_groups_only=len(out.rows) < layout.n_items)
    on_labelled = sm.rmgap_metrics(layout, out, lab, grp_lab, complete_groups_only=True)
    if human_draws is None:
        human_draws = shared.over(out.rows[lab])
    scorer_draws = shared.over(out.rows)
    pick = pick_col[out.rows]
    human_ok = (pick == layout.winner_col[out.rows]) & (pick >= 0)
    defined = lab[~out.nan[lab]]
    domain = layout.domain[out.rows[defined]]
    has_pick = pick[defined] != NO_HUMAN_PICK
    agree = {d: (out.top[defined] == pick[defined])[has_pick & (domain == d)].tolist() for d in DOMAINS}
    h_ok = {d: human_ok[defined][domain == d] for d in DOMAINS}
    s_ok = {d: out.best[defined][domain == d] for d in DOMAINS}
    mcnemar = {d: mcnemar_exact(h_ok[d], s_ok[d]) for d in DOMAINS}
    mcnemar["All"] = mcnemar_exact(np.concatenate([h_ok[d] for d in DOMAINS]), np.concatenate([s_ok[d] for d in DOMAINS]))
    iv_all = _intervals(layout, out, every, grp_all, everything, scorer_draws, shared, confidence=confidence)
    iv_lab = _intervals(layout, out, lab, grp_lab, on_labelled, human_draws, shared, confidence=confidence)
    vs_human, vs_chance = _tests(layout, out, lab, human_ok, human_draws, scorer_draws, shared, confidence)
    agreement = {**_per_domain_share(agree), "n_items": {d: len(agree[d]) for d in DOMAINS}}
    agreement["reasons"] = {d: "no labelled item with a human pick and a defined scorer outcome" for d in (*DOMAINS, "Avg")
                            if agreement[d] is None}
    return {
        "Pair": everything["Pair"],
        "BoN": everything["BoN"],
        "Consistency": everything["Consistency"],
        "TopConsistency": iv_all["TopConsistency"],
        "defined": everything["defined"],
        "reasons": iv_all["reasons"],
        "ci": iv_all["ci"],
        "ci_method": iv_all["ci_method"],
        "n_items": len(out.rows),
        "n_items_by_domain": everything["n_items"],
        "n_nan_items": everything["n_nan_items"],
        "labelled_only": {
            "Pair": on_labelled["Pair"], "BoN": on_labelled["BoN"], "Consistency": on_labelled["Consistency"],
            "TopConsistency": iv_lab["TopConsistency"], "defined": on_labelled["defined"], "reasons": iv_lab["reasons"],
            "ci": iv_lab["ci"], "ci_method": iv_lab["ci_method"],
            "n_items": len(lab), "n_groups": on_labelled["n_groups"],
        },
        "agreement_with_human": agreement,
        "vs_human": vs_human,
        "vs_chance": vs_chance,
        "mcnemar": mcnemar,
    }


def pick_columns(layout: sm.Layout, picks: Mapping[int, Optional[str]]) -> tuple[np.ndarray, np.ndarray]:
    """(column of the human pick per layout row, labelled per layout row) from item_id -> pick."""
    pick_col = np.full(layout.n_items, NO_HUMAN_PICK, dtype=np.int64)
    labelled = np.zeros(layout.n_items, dtype=bool)
    if not picks:
        return pick_col, labelled
    ids = np.fromiter(picks.keys(), dtype=np.int64, count=len(picks))
    keys = list(picks.values())
    rows = layout.positions(ids)
    found = rows >= 0
    rows, keys = rows[found], [k for k, f in zip(keys, found) if f]
    cols = layout.column(rows, layout.key_codes(keys))
    is_none = np.array([k is None for k in keys], dtype=bool)
    pick_col[rows] = np.where(is_none, NO_HUMAN_PICK, np.where(cols >= 0, cols, UNKNOWN_PICK))
    labelled[rows] = True
    return pick_col, labelled


def scorer_top_picks(layout: sm.Layout, matrix: sm.ScoreMatrix) -> dict[int, Optional[str]]:
    """item_id -> the scorer's unique top pick (None: a tie at the top); items with a NaN score are left out.

    RMGAP skips NaN items for BoN, so they are no outcome at all, not a wrong
    pick (the same rule as ``metrics.item_outcomes`` / ``metrics.top_pick``).
    """
    out = sm.outcomes(layout, matrix)
    picks: dict[int, Optional[str]] = {}
    for row, top, nan in zip(out.rows.tolist(), out.top.tolist(), out.nan.tolist()):
        if not nan:
            picks[int(layout.item_id[row])] = None if top == sm.NO_PICK else layout.record_keys[row][top]
    return picks


def scorer_section(
    *, engine: Engine, benchmark_id: int, human: Optional[Mapping] = None, picks: Optional[Mapping[int, Optional[str]]] = None,
    human_draws: Optional[Mapping[str, bs.ClusterDraws]] = None, draws: int = DRAWS, seed: int = SEED,
    confidence: float = CONFIDENCE, adjust: str = "holm", picks_out: Optional[dict] = None,
    tables_out: Optional[dict] = None,
) -> dict:
    """``report --json``'s ``scorers``: one entry per scorer with scores on this benchmark.

    ``human``: the report's ``human`` section; its Pair/BoN/Consistency/
    TopConsistency are copied into each scorer's ``human`` key so the two
    columns sit side by side. ``picks``: item_id -> human plurality pick, when
    the caller already has them (the report does); otherwise they are read
    from the labels. ``adjust``: every p-value in ``vs_human`` and
    ``vs_chance`` is adjusted across scorers (one family per test, metric
    and domain), raw ``p_value`` and ``p_adjusted`` both kept. ``picks_out``:
    filled with each scorer's top picks by name (``scorer_top_picks``), so the
    referee analyses reuse them instead of reading every score twice;
    ``tables_out``: likewise each scorer's per-item outcome table
    (``stats.verified.matrix_table``) for the verified-subset headline.

    The benchmark's layout, the picks and the record draws are prepared once
    and shared by all scorers; each scorer is one query and array operations
    (``score_matrix``), which gives exactly the per-item reference's numbers
    (tests/reference_scorers.py) in a small fraction of its time.
    """
    human_section = {m: human.get(m) for m in ("Pair", "BoN", "Consistency", "TopConsistency")} if human else None
    with session_scope(engine) as session:
        # EXISTS walks each scorer's index until a row on this benchmark: no scan of every score.
        on_benchmark = select(Score.id).join(Item, Item.id == Score.item_id).where(
            Score.scorer_id == Scorer.id, Item.benchmark_id == benchmark_id).exists()
        scorers = session.execute(select(Scorer).where(on_benchmark).order_by(Scorer.id)).scalars().all()
    if not scorers:
        return {}
    if picks is None:
        picks = plurality_picks(engine=engine, benchmark_id=benchmark_id)
    layout = sm.load_layout(engine=engine, benchmark_id=benchmark_id)
    pick_col, labelled = pick_columns(layout, picks)
    shared = _SharedDraws(layout, draws=draws, seed=seed)
    out: dict[str, dict] = {}
    for s in scorers:
        matrix = sm.load_scores(engine=engine, layout=layout, scorer_id=s.id)
        if picks_out is not None:
            picks_out[s.name] = scorer_top_picks(layout, matrix)
        if tables_out is not None:
            from rmgap_annot.stats.verified import matrix_table  # noqa: PLC0415

            tables_out[s.name] = matrix_table(layout, matrix)
        section = compare_matrix(layout=layout, matrix=matrix, pick_col=pick_col, labelled=labelled, shared=shared,
                                 human_draws=human_draws, confidence=confidence)
        section.update(family=s.family, spec=s.spec, truncated=matrix.n_truncated, n_unparseable=s.n_unparseable)
        if human_section is not None:
            section["human"] = human_section
        out[s.name] = section
    adjust_across_scorers(out, method=adjust)
    return out


def scores_fingerprint(*, engine: Engine) -> tuple:
    """Per scorer (id, name, model fingerprint, score rows, last score id): changes when scores do (a cache key).

    Read from the scorer index alone (about 0.1 s for 1.2 million scores), so
    a page can check it on every load; other benchmarks' scores are in it
    too, which only costs a recomputation now and then.
    """
    with session_scope(engine) as session:
        counts = {sid: (n, last) for sid, n, last in session.execute(
            select(Score.scorer_id, func.count(), func.max(Score.id)).group_by(Score.scorer_id)).all()}
        scorers = session.execute(select(Scorer.id, Scorer.name, Scorer.fingerprint, Scorer.n_truncated, Scorer.n_unparseable)
                                  .order_by(Scorer.id)).all()
    return tuple((*tuple(s), *counts.get(s[0], (0, None))) for s in scorers)


def comparison_key(*, engine: Engine, benchmark_id: int) -> tuple:
    """What the scorer comparison depends on: the labels (and exclusions) and every scorer's scores.

    The pages cache ``side_by_side`` and the report under this key, so a new
    label, an exclusion, an imported or re-scored model all recompute, and
    an idle page does not.
    """
    from rmgap_annot.report import report_fingerprint  # noqa: PLC0415 - report imports this module

    return (report_fingerprint(engine=engine, benchmark_id=benchmark_id), scores_fingerprint(engine=engine))


def adjust_across_scorers(sections: Mapping[str, dict], *, method: str = "holm") -> None:
    """Multiplicity adjustment in place: one family per (test, metric, domain), its members the scorers."""
    for d in (*DOMAINS, "All"):
        bs.adjust_family({name: sec["vs_human"][d] for name, sec in sections.items()}, method)
        for metric in ("BoN", "Pair"):
            bs.adjust_family({name: sec["vs_chance"][metric][d] for name, sec in sections.items()}, method)


def human_bon_on_labelled(*, engine: Engine, benchmark_id: int, picks: Optional[Mapping[int, Optional[str]]] = None) -> dict:
    """Human-majority BoN per domain (+ Avg) over the labelled items: the page's human column."""
    picks = picks if picks is not None else plurality_picks(engine=engine, benchmark_id=benchmark_id)
    with session_scope(engine) as session:
        rows = session.execute(select(Item.id, Item.domain, Item.winner_key).where(Item.benchmark_id == benchmark_id)).all()
    flags: dict[str, list[bool]] = defaultdict(list)
    for item_id, domain, winner in rows:
        if item_id in picks:
            flags[domain].append(picks[item_id] == winner)
    return _per_domain_share(flags)


def list_scorers(*, engine: Engine, benchmark_id: int) -> list[dict]:
    """Every scorer with what it holds on this benchmark (the page's scorer table)."""
    with session_scope(engine) as session:
        scorers = session.execute(select(Scorer).order_by(Scorer.id)).scalars().all()
        counts = dict(
            session.execute(
                select(Score.scorer_id, func.count(func.distinct(Score.item_id))).join(Item, Item.id == Score.item_id)
                .where(Item.benchmark_id == benchmark_id).group_by(Score.scorer_id)
            ).all()
        )
    return [
        {"name": s.name, "family": s.family, "spec": s.spec, "items_scored": counts.get(s.id, 0),
         "truncated": s.n_truncated, "unparseable": s.n_unparseable, "created": s.created_at}
        for s in scorers
    ]


def side_by_side(*, engine: Engine, benchmark_id: int, draws: int = DRAWS, seed: int = SEED, adjust: str = "holm") -> dict:
    """Human vs each scorer on exactly the labelled items, as long-form rows.

    ``metrics``: {who, metric, domain, value, lo, hi} for Pair/BoN/
    Consistency/TopConsistency (the human column from ``human_metrics``, the
    scorers' ``labelled_only``), intervals resampling whole records;
    ``tests``: per scorer and domain, agreement with the plurality pick, the
    human-minus-scorer BoN difference with its record-clustered interval and
    clustered p-value (raw and adjusted across scorers), and the scorer's BoN
    against chance. The item-level McNemar p stays in the report JSON only.
    """
    from rmgap_annot.stats.human_metrics import human_accuracy, item_summary, record_draws

    labels = counted_labels(engine=engine, benchmark_id=benchmark_id).labels
    summary = item_summary(labels)
    rdraws = record_draws(summary, draws=draws, seed=seed)
    human = human_accuracy(summary=summary, labels=labels, draws_by_domain=rdraws, draws=draws, seed=seed) if len(labels) else None
    sections = scorer_section(engine=engine, benchmark_id=benchmark_id, human_draws=rdraws, draws=draws, seed=seed, adjust=adjust,
                              picks=picks_from_summary(summary))
    rows: list[dict] = []
    domains = (*DOMAINS, "Avg")

    def row(who: str, metric: str, d: str, block: Mapping) -> dict:
        ci = (block.get("ci") or {}).get(metric, {}).get(d) or [None, None]
        return {"who": who, "metric": metric, "domain": d, "value": block[metric].get(d), "lo": ci[0], "hi": ci[1]}

    for metric in ("Pair", "BoN", "Consistency", "TopConsistency"):
        if human is not None:
            rows += [row("human", metric, d, human) for d in domains]
        for name, sec in sections.items():
            rows += [row(name, metric, d, sec["labelled_only"]) for d in domains]
    tests = []
    for name, sec in sections.items():
        for d in (*DOMAINS, "All"):
            t = sec["vs_human"][d]
            chance = sec["vs_chance"]["BoN"][d]
            ci = t.get("ci") or [None, None]
            agree = sec["agreement_with_human"].get(d if d != "All" else "Avg")
            tests.append({
                "scorer": name, "domain": d, "items": t["n_units"], "human BoN": t.get("human_bon"), "scorer BoN": t.get("scorer_bon"),
                "human - scorer": t.get("difference"), "lo": ci[0], "hi": ci[1], "p (clustered)": t.get("p_value"),
                f"p ({adjust})": t.get("p_adjusted"), "scorer BoN vs chance p": chance.get("p_adjusted"),
                "top pick = human pick": agree, "note": t.get("reason", ""),
            })
    return {"metrics": rows, "tests": tests, "n_labelled_items": int(labels["item_id"].nunique()) if len(labels) else 0,
            "adjust": adjust}
