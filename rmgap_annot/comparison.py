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
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.metrics import ScoredItem, item_outcomes, rmgap_metrics
from rmgap_annot.models import Item, Record, Response, Score, Scorer
from rmgap_annot.settings import DOMAINS


def picks_from_summary(summary) -> dict[int, Optional[str]]:  # noqa: ANN001 (a human_metrics.item_summary frame)
    """item_id -> plurality pick (None: no unique pick), as human_metrics defines it."""
    return {int(i): p for i, p in zip(summary.index, summary["plurality_pick"])}


def plurality_picks(*, engine: Engine, benchmark_id: int) -> dict[int, Optional[str]]:
    """item_id -> the human plurality pick (None: no unique pick) for every labelled item."""
    from rmgap_annot.human_metrics import item_summary

    # Excluded annotators count nowhere, the scorer comparison included.
    return picks_from_summary(item_summary(counted_labels(engine=engine, benchmark_id=benchmark_id).labels))


def top_pick(scores: Mapping[str, float]) -> Optional[str]:
    values = [(float(v), k) for k, v in scores.items() if v is not None]
    if len(values) != len(scores) or any(v != v for v, _ in values):
        return None
    values.sort(reverse=True)
    if len(values) > 1 and values[0][0] == values[1][0]:
        return None
    return values[0][1]


def mcnemar_exact(human_correct: list[bool], scorer_correct: list[bool]) -> dict:
    """Exact McNemar: two-sided binomial test of the discordant pairs at p = 0.5."""
    from scipy.stats import binomtest

    b = sum(1 for h, s in zip(human_correct, scorer_correct) if h and not s)
    c = sum(1 for h, s in zip(human_correct, scorer_correct) if s and not h)
    n = len(human_correct)
    return {
        "n_items": n,
        "human_bon": sum(human_correct) / n if n else None,
        "scorer_bon": sum(scorer_correct) / n if n else None,
        "human_only_correct": b,
        "scorer_only_correct": c,
        "p_value": float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0,
    }


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


def _per_domain_share(flags: Mapping[str, list[bool]]) -> dict:
    share = {d: (sum(flags[d]) / len(flags[d]) if flags[d] else None) for d in DOMAINS}
    present = [v for v in share.values() if v is not None]
    share["Avg"] = sum(present) / len(present) if present else None
    return share


def compare_scorer(*, items: Mapping[int, ScoredItem], picks: Mapping[int, Optional[str]], n_benchmark_items: int) -> dict:
    """Every number of one scorer's section, from its items and the human picks."""
    everything = rmgap_metrics(items.values(), complete_groups_only=len(items) < n_benchmark_items)
    labelled = {i: it for i, it in items.items() if i in picks}
    on_labelled = rmgap_metrics(labelled.values(), complete_groups_only=True)
    agree: dict[str, list[bool]] = defaultdict(list)
    human_ok: dict[str, list[bool]] = defaultdict(list)
    scorer_ok: dict[str, list[bool]] = defaultdict(list)
    for item_id, it in labelled.items():
        outcome = item_outcomes(it)
        if outcome is None:
            continue
        pick = picks[item_id]
        if pick is not None:
            agree[it.domain].append(top_pick(it.scores) == pick)
        human_ok[it.domain].append(pick == it.winner_key)
        scorer_ok[it.domain].append(bool(outcome[2]))
    mcnemar = {d: mcnemar_exact(human_ok[d], scorer_ok[d]) for d in DOMAINS}
    mcnemar["All"] = mcnemar_exact(sum((human_ok[d] for d in DOMAINS), []), sum((scorer_ok[d] for d in DOMAINS), []))
    return {
        "Pair": everything["Pair"],
        "BoN": everything["BoN"],
        "Consistency": everything["Consistency"],
        "n_items": len(items),
        "n_items_by_domain": everything["n_items"],
        "n_nan_items": everything["n_nan_items"],
        "labelled_only": {
            "Pair": on_labelled["Pair"], "BoN": on_labelled["BoN"], "Consistency": on_labelled["Consistency"],
            "n_items": len(labelled), "n_groups": on_labelled["n_groups"],
        },
        "agreement_with_human": {**_per_domain_share(agree), "n_items": {d: len(agree[d]) for d in DOMAINS}},
        "mcnemar": mcnemar,
    }


def scorer_section(
    *, engine: Engine, benchmark_id: int, human: Optional[Mapping] = None, picks: Optional[Mapping[int, Optional[str]]] = None
) -> dict:
    """``report --json``'s ``scorers``: one entry per scorer with scores on this benchmark.

    ``human``: the report's ``human`` section; its Pair/BoN/Consistency are
    copied into each scorer's ``human`` key so the two columns sit side by
    side. ``picks``: item_id -> human plurality pick, when the caller already
    has them (the report does); otherwise they are read from the labels.
    """
    human_section = {m: human.get(m) for m in ("Pair", "BoN", "Consistency")} if human else None
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
        section = compare_scorer(items=items, picks=picks, n_benchmark_items=n_items)
        section.update(family=s.family, spec=s.spec, truncated=truncated.get(s.id, 0), n_unparseable=s.n_unparseable)
        if human_section is not None:
            section["human"] = human_section
        out[s.name] = section
    return out


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


def side_by_side(*, engine: Engine, benchmark_id: int) -> dict:
    """Human vs each scorer on exactly the labelled items, as long-form rows.

    ``metrics``: {who, metric, domain, value} for Pair/BoN/Consistency (the
    human column from ``human_metrics``, the scorers' ``labelled_only``);
    ``tests``: per scorer and domain, agreement with the plurality pick and
    the exact McNemar test.
    """
    from rmgap_annot.human_metrics import human_accuracy, item_summary

    labels = counted_labels(engine=engine, benchmark_id=benchmark_id).labels
    human = human_accuracy(summary=item_summary(labels), labels=labels, draws=0) if len(labels) else None
    sections = scorer_section(engine=engine, benchmark_id=benchmark_id)
    rows: list[dict] = []
    domains = (*DOMAINS, "Avg")
    for metric in ("Pair", "BoN", "Consistency"):
        if human is not None:
            rows += [{"who": "human", "metric": metric, "domain": d, "value": human[metric].get(d)} for d in domains]
        for name, sec in sections.items():
            rows += [{"who": name, "metric": metric, "domain": d, "value": sec["labelled_only"][metric].get(d)} for d in domains]
    tests = []
    for name, sec in sections.items():
        for d in (*DOMAINS, "All"):
            t = sec["mcnemar"][d]
            agree = sec["agreement_with_human"].get(d if d != "All" else "Avg")
            tests.append({"scorer": name, "domain": d, "items": t["n_items"], "human BoN": t["human_bon"], "scorer BoN": t["scorer_bon"],
                          "human only right": t["human_only_correct"], "scorer only right": t["scorer_only_correct"],
                          "McNemar p": t["p_value"], "top pick = human pick": agree})
    return {"metrics": rows, "tests": tests, "n_labelled_items": int(labels["item_id"].nunique()) if len(labels) else 0}
