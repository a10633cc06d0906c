"""The per-item reference implementation of the scorer comparison (the code before issue 11's speed-up).

``rmgap_annot.stats.comparison`` now computes every scorer at once over score
matrices (``rmgap_annot.stats.score_matrix``); this is the readable version it
replaced, one ``ScoredItem`` at a time on ``rmgap_annot.stats.metrics``' rules,
kept verbatim so tests can check the fast path gives exactly its numbers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Optional, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.stats.comparison import _per_domain_share, adjust_across_scorers, mcnemar_exact, plurality_picks
from rmgap_annot.db import session_scope
from rmgap_annot.stats.metrics import METRIC_NAMES, ScoredItem, group_outcomes, item_outcomes, rmgap_metrics, top_pick, with_avg
from rmgap_annot.models import Item, Record, Response, Score, Scorer
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats.bootstrap import CONFIDENCE, DRAWS, SEED


def scored_items(*, engine: Engine, benchmark_id: int, scorer_id: int) -> dict[int, ScoredItem]:
    """item_id -> ScoredItem for the items holding a score for every response."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Score.item_id, Score.response_key, Score.value, Item.domain, Record.record_id, Item.group,
                   Item.prompt_index, Item.winner_key, Item.record_pk)
            .join(Item, Item.id == Score.item_id)
            .join(Record, Record.id == Item.record_pk)
            .where(Score.scorer_id == scorer_id, Item.benchmark_id == benchmark_id)
        ).all()
        n_responses = dict(
            session.execute(
                select(Response.record_pk, func.count()).join(Record, Record.id == Response.record_pk)
                .where(Record.benchmark_id == benchmark_id).group_by(Response.record_pk)
            ).all()
        )
    scores: dict[int, dict[str, float]] = defaultdict(dict)
    meta: dict[int, tuple] = {}
    for item_id, key, value, domain, rid, grp, pi, winner, pk in rows:
        scores[item_id][key] = float("nan") if value is None else value
        meta[item_id] = (domain, rid, grp, pi, winner, pk)
    return {
        i: ScoredItem(domain=m[0], record_id=m[1], group=m[2], prompt_index=m[3], winner_key=m[4], scores=scores[i])
        for i, m in meta.items()
        if len(scores[i]) == n_responses.get(m[5], 4)
    }


def metric_intervals(
    items: Sequence[ScoredItem], metrics: Mapping, draws_by_domain: Mapping[str, bs.ClusterDraws], *, confidence: float,
    outcomes: Optional[Mapping[int, Optional[tuple]]] = None,
) -> dict:
    """Record-clustered intervals of Pair, BoN, Consistency, TopConsistency per domain and Avg.

    ``metrics`` is ``rmgap_metrics``'s result on ``items`` (the point values);
    TopConsistency's point value is computed here from ``group_outcomes``.
    A domain RMGAP scores 0.0 only because every item is NaN gets no interval.
    """
    by_domain: dict[str, list[ScoredItem]] = defaultdict(list)
    for it in items:
        by_domain[it.domain].append(it)
    groups = group_outcomes(items)
    top = {d: None for d in DOMAINS}
    ci: dict[str, dict] = {m: {} for m in (*METRIC_NAMES, "TopConsistency")}
    methods: dict[str, dict] = {m: {} for m in ci}
    reasons: dict[str, dict] = {m: dict(metrics.get("reasons", {}).get(m, {})) for m in ci}
    boots: dict[str, dict[str, np.ndarray]] = {m: {} for m in ci}
    for d in DOMAINS:
        its = by_domain.get(d, [])
        cd = draws_by_domain.get(d)
        g = [x for x in groups if x.domain == d]
        if metrics["Consistency"][d] is None:
            reasons["Consistency"][d] = "no group has all three prompts scored" if its else f"no {d} items"
        if g:
            top[d] = float(np.mean([x.top_consistent for x in g]))
        elif its:
            reasons["TopConsistency"][d] = "no group has all three prompts scored"
        else:
            reasons["TopConsistency"][d] = f"no {d} items"
        if not its or cd is None or cd.draws == 0:
            for m in ci:
                ci[m][d], methods[m][d] = None, None
            continue
        outs = [item_outcomes(it) if outcomes is None else outcomes[id(it)] for it in its]
        rec = np.array([it.record_id for it in its])
        w = cd.bind(rec)
        won = np.array([o[0] if o else 0 for o in outs], dtype=float)
        tot = np.array([o[1] if o else 0 for o in outs], dtype=float)
        best = np.array([float(o[2]) if o else 0.0 for o in outs], dtype=float)
        ok = np.array([o is not None for o in outs], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = {"Pair": w.sum(won) / w.sum(tot), "BoN": w.sum(best) / w.sum(ok)}
        info = bs.clustering(best[ok > 0], rec[ok > 0])
        proportions = {"Pair": (won.sum(), tot.sum()), "BoN": (best.sum(), ok.sum())}
        grec = np.array([x.record_id for x in g])
        for m, attr in (("Consistency", "consistent"), ("TopConsistency", "top_consistent")):
            if g:
                flags = np.array([getattr(x, attr) for x in g], dtype=float)
                draws[m] = cd.total(grec, flags) / len(flags)
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


def _draws_over(items: Sequence[ScoredItem], *, draws: int, seed: int) -> dict[str, bs.ClusterDraws]:
    """Per domain, record draws over the records these items come from."""
    recs: dict[str, set] = defaultdict(set)
    for it in items:
        recs[it.domain].add(it.record_id)
    if not draws:
        return {}
    return {d: bs.cluster_draws(sorted(r), draws=draws, seed=seed, stream=bs.stream_for(d)) for d, r in recs.items()}


def _tests(
    labelled: Mapping[int, ScoredItem], everything: Sequence[ScoredItem], picks: Mapping[int, Optional[str]],
    human_draws: Mapping[str, bs.ClusterDraws], scorer_draws: Mapping[str, bs.ClusterDraws], confidence: float,
    outcomes: Mapping[int, Optional[tuple]],
) -> tuple[dict, dict]:
    """(human minus scorer BoN, scorer against chance) per domain and All, clustered by record."""
    pairs = []  # (domain, record, human correct, scorer correct)
    for item_id, it in labelled.items():
        outcome = outcomes[id(it)]
        if outcome is not None:
            pairs.append((it.domain, it.record_id, float(picks[item_id] == it.winner_key), float(outcome[2])))
    vs_human: dict[str, dict] = {}
    for d in (*DOMAINS, "All"):
        rows = [p for p in pairs if d == "All" or p[0] == d]
        n_lab = sum(1 for it in labelled.values() if d == "All" or it.domain == d)
        if not rows:
            vs_human[d] = {"difference": None, "ci": None, "p_value": None, "n_units": 0,
                           "reason": (f"every labelled item has a NaN score: nothing to compare" if n_lab
                                      else "no labelled item scored")}
            continue
        dom = np.array([p[0] for p in rows], dtype=object)
        rec = np.array([p[1] for p in rows])
        w = bs.bind_strata(human_draws, rec, dom)
        vs_human[d] = bs.paired_difference([p[2] for p in rows], [p[3] for p in rows], rec, w, confidence=confidence)
        vs_human[d]["human_bon"] = vs_human[d].pop("a")
        vs_human[d]["scorer_bon"] = vs_human[d].pop("b")
    rows = []  # (domain, record, bon, won, total, n responses)
    for it in everything:
        o = outcomes[id(it)]
        if o is not None:
            rows.append((it.domain, it.record_id, float(o[2]), float(o[0]), float(o[1]), len(it.scores)))
    vs_chance: dict[str, dict[str, dict]] = {"BoN": {}, "Pair": {}}
    n_all = defaultdict(int)
    for it in everything:
        n_all[it.domain] += 1
    for d in (*DOMAINS, "All"):
        part = [r for r in rows if d == "All" or r[0] == d]
        if not part:
            reason = "every item has a NaN score: nothing to test" if (n_all[d] if d != "All" else len(everything)) else "no items scored"
            for m in vs_chance:
                vs_chance[m][d] = {"value": None, "chance": None, "ci": None, "p_value": None, "n_units": 0, "reason": reason}
            continue
        dom = np.array([r[0] for r in part], dtype=object)
        rec = np.array([r[1] for r in part])
        w = bs.bind_strata(scorer_draws, rec, dom)
        ones = np.ones(len(part))
        vs_chance["BoN"][d] = bs.versus_chance([r[2] for r in part], ones, [1 / r[5] for r in part], rec, w, confidence=confidence)
        vs_chance["Pair"][d] = bs.versus_chance([r[3] for r in part], [r[4] for r in part], np.full(len(part), 0.5), rec, w,
                                                confidence=confidence)
    return vs_human, vs_chance


def compare_scorer(
    *, items: Mapping[int, ScoredItem], picks: Mapping[int, Optional[str]], n_benchmark_items: int,
    human_draws: Optional[Mapping[str, bs.ClusterDraws]] = None, draws: int = DRAWS, seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict:
    """Every number of one scorer's section, from its items and the human picks.

    ``human_draws``: the human section's record draws per domain, so the
    labelled-only intervals and the human-minus-scorer differences resample
    the very records the human column did (paired). None: drawn here.
    """
    everything = rmgap_metrics(items.values(), complete_groups_only=len(items) < n_benchmark_items)
    labelled = {i: it for i, it in items.items() if i in picks}
    on_labelled = rmgap_metrics(labelled.values(), complete_groups_only=True)
    outcomes = {id(it): item_outcomes(it) for it in items.values()}  # computed once: 13k items x 24 scorers add up
    if human_draws is None:
        human_draws = _draws_over(list(labelled.values()), draws=draws, seed=seed)
    scorer_draws = _draws_over(list(items.values()), draws=draws, seed=seed)
    agree: dict[str, list[bool]] = defaultdict(list)
    human_ok: dict[str, list[bool]] = defaultdict(list)
    scorer_ok: dict[str, list[bool]] = defaultdict(list)
    for item_id, it in labelled.items():
        outcome = outcomes[id(it)]
        if outcome is None:
            continue
        pick = picks[item_id]
        if pick is not None:
            agree[it.domain].append(top_pick(it.scores) == pick)
        human_ok[it.domain].append(pick == it.winner_key)
        scorer_ok[it.domain].append(bool(outcome[2]))
    mcnemar = {d: mcnemar_exact(human_ok[d], scorer_ok[d]) for d in DOMAINS}
    mcnemar["All"] = mcnemar_exact(sum((human_ok[d] for d in DOMAINS), []), sum((scorer_ok[d] for d in DOMAINS), []))
    iv_all = metric_intervals(list(items.values()), everything, scorer_draws, confidence=confidence, outcomes=outcomes)
    iv_lab = metric_intervals(list(labelled.values()), on_labelled, human_draws, confidence=confidence, outcomes=outcomes)
    vs_human, vs_chance = _tests(labelled, list(items.values()), picks, human_draws, scorer_draws, confidence, outcomes)
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
        "n_items": len(items),
        "n_items_by_domain": everything["n_items"],
        "n_nan_items": everything["n_nan_items"],
        "labelled_only": {
            "Pair": on_labelled["Pair"], "BoN": on_labelled["BoN"], "Consistency": on_labelled["Consistency"],
            "TopConsistency": iv_lab["TopConsistency"], "defined": on_labelled["defined"], "reasons": iv_lab["reasons"],
            "ci": iv_lab["ci"], "ci_method": iv_lab["ci_method"],
            "n_items": len(labelled), "n_groups": on_labelled["n_groups"],
        },
        "agreement_with_human": agreement,
        "vs_human": vs_human,
        "vs_chance": vs_chance,
        "mcnemar": mcnemar,
    }


def reference_scorer_section(
    *, engine: Engine, benchmark_id: int, human: Optional[Mapping] = None, picks: Optional[Mapping[int, Optional[str]]] = None,
    human_draws: Optional[Mapping[str, bs.ClusterDraws]] = None, draws: int = DRAWS, seed: int = SEED,
    confidence: float = CONFIDENCE, adjust: str = "holm",
) -> dict:
    """``report --json``'s ``scorers``: one entry per scorer with scores on this benchmark.

    ``human``: the report's ``human`` section; its Pair/BoN/Consistency/
    TopConsistency are copied into each scorer's ``human`` key so the two
    columns sit side by side. ``picks``: item_id -> human plurality pick, when
    the caller already has them (the report does); otherwise they are read
    from the labels. ``adjust``: every p-value in ``vs_human`` and
    ``vs_chance`` is adjusted across scorers (one family per test, metric
    and domain), raw ``p_value`` and ``p_adjusted`` both kept.
    """
    human_section = {m: human.get(m) for m in ("Pair", "BoN", "Consistency", "TopConsistency")} if human else None
    with session_scope(engine) as session:
        scorers = session.execute(
            select(Scorer).where(Scorer.id.in_(select(Score.scorer_id).join(Item, Item.id == Score.item_id)
                                               .where(Item.benchmark_id == benchmark_id).distinct()))
            .order_by(Scorer.id)
        ).scalars().all()
        n_items = session.execute(select(func.count()).select_from(Item).where(Item.benchmark_id == benchmark_id)).scalar_one()
        truncated = dict(
            session.execute(
                select(Score.scorer_id, func.count()).join(Item, Item.id == Score.item_id)
                .where(Item.benchmark_id == benchmark_id, Score.truncated.is_(True)).group_by(Score.scorer_id)
            ).all()
        )
    if not scorers:
        return {}
    if picks is None:
        picks = plurality_picks(engine=engine, benchmark_id=benchmark_id)
    out: dict[str, dict] = {}
    for s in scorers:
        items = scored_items(engine=engine, benchmark_id=benchmark_id, scorer_id=s.id)
        section = compare_scorer(items=items, picks=picks, n_benchmark_items=n_items, human_draws=human_draws, draws=draws,
                                 seed=seed, confidence=confidence)
        section.update(family=s.family, spec=s.spec, truncated=truncated.get(s.id, 0), n_unparseable=s.n_unparseable)
        if human_section is not None:
            section["human"] = human_section
        out[s.name] = section
    adjust_across_scorers(out, method=adjust)
    return out
