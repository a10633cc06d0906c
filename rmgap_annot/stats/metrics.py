"""RMGAP's metrics (Pair, BoN, Consistency), for any scorer, humans included.

Definitions follow RMGAP's evaluator exactly (see shared/rmgap-format.md):
- Pair: over all (winner, other) pairs, the share where the winner's score is
  strictly greater; a tie is a loss.
- BoN: the share of items whose winner is strictly above all three others.
- Consistency: the share of groups whose three prompts give the identical
  full ranking (score descending, ties broken by response key).
- Items with a NaN score are skipped for Pair and BoN; a group with a
  skipped item counts as inconsistent.
Per domain, then "Avg" = the plain mean over the domains present. A domain
with no items is ``None`` (RMGAP would print 0.0; None cannot be mistaken
for a measured zero). A domain whose items all have a NaN score gets the
0.0 RMGAP's evaluator writes (and averages into Avg), marked in
``defined`` / ``reasons``, so both the RMGAP-compatible and the honest
reading are there.

``TopConsistency`` (not RMGAP's): the share of groups whose three prompts
get the same unique top pick; a tie at the top or a NaN is no pick, and
no pick makes the group inconsistent. It compares with the human
plurality-pick consistency, which cannot see full rankings.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from rmgap_annot.settings import DOMAINS

PROMPTS_PER_GROUP = 3
METRIC_NAMES = ("Pair", "BoN", "Consistency")
ALL_NAN = "every item in this domain has a NaN score: RMGAP's evaluator writes 0.0 (and averages it into Avg)"


@dataclass(frozen=True)
class ScoredItem:
    """One item's scores: what every metric here is computed from."""

    domain: str
    record_id: str
    group: int
    prompt_index: int
    winner_key: str
    scores: Mapping[str, float]  # response key -> score (NaN allowed)


def _has_nan(scores: Mapping[str, float]) -> bool:
    return any(v is None or (isinstance(v, float) and math.isnan(v)) for v in scores.values())


def ranking(scores: Mapping[str, float]) -> tuple[str, ...]:
    """Full ranking, best first; ties broken by response key (as RMGAP does)."""
    return tuple(k for k, _ in sorted(scores.items(), key=lambda kv: (-float(kv[1]), str(kv[0]))))


def top_pick(scores: Mapping[str, float]) -> Optional[str]:
    """The unique highest-scored key; None on a tie at the top or any NaN."""
    if _has_nan(scores) or not scores:
        return None
    values = sorted(((float(v), k) for k, v in scores.items()), reverse=True)
    if len(values) > 1 and values[0][0] == values[1][0]:
        return None
    return values[0][1]


@dataclass(frozen=True)
class GroupOutcome:
    """One complete group (all its prompts present): the unit of Consistency."""

    domain: str
    record_id: str
    group: int
    consistent: bool  # RMGAP: identical full rankings, no NaN
    top_consistent: bool  # the same unique top pick on every prompt


def group_outcomes(items: Iterable[ScoredItem]) -> list[GroupOutcome]:
    """Consistency and TopConsistency per group whose prompts are all present."""
    groups: dict[tuple, list[ScoredItem]] = defaultdict(list)
    for it in items:
        groups[(it.domain, it.record_id, it.group)].append(it)
    out = []
    for (d, rid, g), members in groups.items():
        if len(members) != PROMPTS_PER_GROUP:
            continue
        rankings = {None if _has_nan(m.scores) else ranking(m.scores) for m in members}
        tops = {top_pick(m.scores) for m in members}
        out.append(GroupOutcome(d, rid, g, None not in rankings and len(rankings) == 1, None not in tops and len(tops) == 1))
    return out


def item_outcomes(item: ScoredItem) -> Optional[tuple[int, int, bool]]:
    """(pairs won, pairs total, BoN correct) for one item; None when it has a NaN."""
    if _has_nan(item.scores):
        return None
    w = float(item.scores[item.winner_key])
    others = [float(v) for k, v in item.scores.items() if k != item.winner_key]
    won = sum(1 for v in others if w > v)
    return won, len(others), won == len(others) and len(others) > 0


def average(values: Mapping[str, Optional[float]]) -> Optional[float]:
    present = [v for d, v in values.items() if d in DOMAINS and v is not None]
    return sum(present) / len(present) if present else None


def mark_undefined(values: dict[str, dict[str, float | None]], d: str, n_items: int,
                   defined: dict[str, dict[str, bool]], reasons: dict[str, dict[str, str]]) -> None:
    """Domain ``d`` of each metric: defined or not, and why not. A domain with items but no usable
    score gets RMGAP's 0.0 (it enters Avg, as in its evaluator), marked undefined with ALL_NAN."""
    for m, by_domain in values.items():
        defined[m][d] = by_domain[d] is not None
        if by_domain[d] is None and n_items:
            by_domain[d] = 0.0
            reasons[m][d] = ALL_NAN
        elif by_domain[d] is None:
            reasons[m][d] = f"no {d} items"


def with_avg(per_domain: Mapping[str, Optional[float]]) -> dict[str, Optional[float]]:
    out = {d: per_domain.get(d) for d in DOMAINS}
    out["Avg"] = average(out)
    return out


def rmgap_metrics(items: Iterable[ScoredItem], *, complete_groups_only: bool = False) -> dict:
    """RMGAP's three metrics per domain plus Avg, and the counts behind them.

    ``complete_groups_only``: for a subset of items (e.g. only the labelled
    ones) a group may be partly absent; such groups are left out of
    Consistency instead of counted as inconsistent. On a full benchmark the
    two readings agree.
    """
    pair_won: dict[str, int] = defaultdict(int)
    pair_total: dict[str, int] = defaultdict(int)
    bon: dict[str, list[int]] = defaultdict(list)
    groups: dict[str, dict[tuple, list[Optional[tuple[str, ...]]]]] = defaultdict(lambda: defaultdict(list))
    n_items: dict[str, int] = defaultdict(int)
    n_nan = 0
    for item in items:
        n_items[item.domain] += 1
        outcome = item_outcomes(item)
        gkey = (item.record_id, item.group)
        if outcome is None:
            n_nan += 1
            groups[item.domain][gkey].append(None)
            continue
        won, total, best = outcome
        pair_won[item.domain] += won
        pair_total[item.domain] += total
        bon[item.domain].append(int(best))
        groups[item.domain][gkey].append(ranking(item.scores))

    pair, bon_acc, cons = {}, {}, {}
    n_groups: dict[str, int] = {}
    defined: dict[str, dict[str, bool]] = {m: {} for m in ("Pair", "BoN")}
    reasons: dict[str, dict[str, str]] = {m: {} for m in ("Pair", "BoN")}
    for d in DOMAINS:
        pair[d] = pair_won[d] / pair_total[d] if pair_total[d] else None
        bon_acc[d] = sum(bon[d]) / len(bon[d]) if bon[d] else None
        mark_undefined({"Pair": pair, "BoN": bon_acc}, d, n_items[d], defined, reasons)
        flags = []
        for rankings in groups[d].values():
            if len(rankings) != PROMPTS_PER_GROUP:
                if complete_groups_only:
                    continue
                flags.append(0)
                continue
            flags.append(int(None not in rankings and len(set(rankings)) == 1))
        cons[d] = sum(flags) / len(flags) if flags else None
        n_groups[d] = len(flags)
    return {
        "Pair": with_avg(pair),
        "BoN": with_avg(bon_acc),
        "Consistency": with_avg(cons),
        "n_items": {d: n_items[d] for d in DOMAINS},
        "n_groups": n_groups,
        "n_nan_items": n_nan,
        "defined": defined,
        "reasons": reasons,
    }
