"""RewardBench 2: one prompt, one or more correct completions, several incorrect ones, a subset.

Published as Parquet (split ``test``, 1,865 rows); JSONL copies read the
same. Candidates are keyed ``chosen_0``.. then ``rejected_0``.., in the
file's order; ``models`` and ``additional_metadata`` stay hidden.

Metric. Checked against allenai/reward-bench (commit 05a9005):
``rewardbench/utils.py`` ``load_bon_dataset_v2`` lays out each row's
completions as chosen then rejected, and ``reroll_and_score_dataset`` scores
a row ``1 / (number of scores equal to the maximum)`` when the first
completion (``chosen[0]``) has the maximum, else 0; ``scripts/run_v2.py``
takes the mean per subset. The Ties subset is scored apart
(``process_single_model``): per prompt, "accurate" means the worst correct
completion outscores the best incorrect one (strict); prompts are ``ref:N``
(one correct answer) or ``tied:N`` (several), and the subset score is
0.30 tied accuracy + 0.30 ref accuracy + 0.20 and 0.20 for two margin
comparisons + 0.01 a tanh margin term; ``ref:N`` and ``tied:N`` are paired
in the margin terms. All five are computed here, and the composite again in
every bootstrap draw (``ref:N`` and ``tied:N`` share a resampling group).

Where this differs from the evaluator, it says so rather than invent a
number: a term with no prompt (no ``ref:`` rows; no ``tied:N`` with its
``ref:N``) makes the composite None with the reason, where the evaluator
counts an empty accuracy as 0 and an empty comparison as NaN. People have a
pick, not scores: the margin terms, the composite and the tied accuracy
("every correct answer above every incorrect one") are out of a pick's
reach, so they are None with that reason and ``tied_pick_correct`` (the
pick is a correct answer) is reported for people instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rmgap_annot.formats.common import (
    Candidate, Entry, Item, Loaded, PickScores, Problems, Rate, Row, Scores, context_group, entry_id_of,
    read_entries, scored, single_item_entry, write_entries,
)
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats.grouped import Estimate, GroupedRates

NAME = "rewardbench2"
TIES = "ties"
_TIES_ID = re.compile(r"^(ref|tied):\d+$")
TIES_TERMS = ("tied_accuracy", "ref_accuracy", "correctness_preferred", "correctness_preferred_hard", "margin_score")
TIES_WEIGHTS = (0.30, 0.30, 0.20, 0.20, 0.01)  # process_single_model's, in TIES_TERMS' order
PEOPLE_NO_COMPOSITE = "the Ties composite weighs score margins (41%): people give a pick, not scores"


def _count(problems: Problems, data: dict[str, Any], key: str, expected: int, what: str) -> None:
    value = data.get(key)
    if value is None:
        return  # the counts are derived data; RewardBench 2's loader needs total_completions and num_correct
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(key, f"must be an integer, found {value!r}")
    elif value != expected:
        problems.add(key, f"is {value} but {what} holds {expected}")


def _texts(problems: Problems, data: dict[str, Any], key: str) -> list[str]:
    values = problems.array(data, key)
    if values is None:
        return []
    if not values:
        problems.add(key, "must hold at least one completion")
    return [t for i, v in enumerate(values) if (t := problems.text_value(v, f"{key}[{i}]")) is not None]


def _group(entry_id: str | None, subset: str, prompt: str) -> str:
    """The resampling group: the prompt, except that a Ties ``ref:N`` and ``tied:N`` are drawn together
    (the composite's margin comparisons pair them)."""
    match = _TIES_ID.match(entry_id or "") if subset.lower() == TIES else None
    if match:
        return f"{NAME}:ties:{entry_id.split(':', 1)[1]}"
    return context_group(NAME, prompt)


def _build(row: Row, problems: Problems) -> Entry | None:
    data = row.data
    entry_id = entry_id_of(data.get("id"))
    if entry_id is None:
        problems.add("id", "is missing or not a non-empty string")
    prompt = problems.text(data, "prompt")
    subset = problems.text(data, "subset")
    chosen, rejected = _texts(problems, data, "chosen"), _texts(problems, data, "rejected")
    if problems.errors:
        return None
    _count(problems, data, "num_correct", len(chosen), "chosen")
    _count(problems, data, "num_incorrect", len(rejected), "rejected")
    _count(problems, data, "total_completions", len(chosen) + len(rejected), "chosen and rejected together")
    models = data.get("models")
    if models is not None and not (isinstance(models, list) and all(isinstance(m, str) for m in models)):
        problems.add("models", "must be an array of strings")
    candidates = [Candidate(f"chosen_{i}", t) for i, t in enumerate(chosen)]
    candidates += [Candidate(f"rejected_{i}", t) for i, t in enumerate(rejected)]
    problems.candidates(candidates, "rejected")
    if problems.errors:
        return None
    item = Item(
        format=NAME, entry_id=entry_id, item_index=0, candidates=candidates,
        correct_keys=tuple(f"chosen_{i}" for i in range(len(chosen))),
        category_path=(subset,), group_id=_group(entry_id, subset, prompt), prompt=prompt,
        hidden={"models": models, "additional_metadata": data.get("additional_metadata"),
                "num_correct": len(chosen)},
        original=data,
    )
    return single_item_entry(problems, row, entry_id, item)


def read(path: str | Path) -> Loaded:
    """A .jsonl / .jsonl.gz / .parquet file, or a folder of them."""
    return read_entries(path, format_name=NAME, containers=("jsonl", "parquet"), build=_build)


def write(entries: Iterable[Entry], out: str | Path) -> list[Path]:
    return write_entries(entries, out)


def best_of_n(scores: dict[str, float]) -> float:
    """``chosen_0``'s credit: 1 / (number of candidates tied at the maximum) when it has the maximum, else 0."""
    top = max(scores.values())
    if scores["chosen_0"] != top:
        return 0.0
    return 1.0 / sum(1 for v in scores.values() if v == top)


def ties_accurate(item: Item, scores: dict[str, float]) -> bool:
    """Ties subset: every correct candidate outscores every incorrect one (strict)."""
    correct = [v for k, v in scores.items() if k in item.correct_keys]
    incorrect = [v for k, v in scores.items() if k not in item.correct_keys]
    return min(correct) > max(incorrect)


def pick_is_correct(item: Item, scores: PickScores) -> bool:
    """People on a Ties item: the (plurality) pick is one of the correct answers (a split: all its values are).

    A single pick cannot put every correct answer above every incorrect one,
    so the evaluator's "accurate" is out of a pick's reach on a ``tied:``
    prompt; this is what a pick does say.
    """
    picked = {k for k, v in scores.items() if v > 0}
    return bool(picked) and picked <= set(item.correct_keys)


@dataclass
class _TiesTerms:
    """Per scored unit, the evaluator's per-prompt terms of the Ties subset (None / 0 where not a Ties unit).

    ``kind`` is "ref" or "tied"; ``accurate`` 1 when the worst correct
    completion outscores the best incorrect one. ``partnered`` marks a
    ``tied:N`` unit whose ``ref:N`` is scored too: the margin comparisons
    pair them (the importer puts both in one resampling group), and their
    values sit on the ``tied:N`` unit. With the margin of a prompt being its
    worst correct minus best incorrect score and the spread a tied prompt's
    best minus worst correct score: ``preferred`` is tied margin > spread,
    ``preferred_hard`` min(ref margin, tied margin) > spread, ``margin``
    tanh(min(ref margin, tied margin) / spread - 1).
    """

    kind: np.ndarray
    accurate: np.ndarray
    partnered: np.ndarray
    preferred: np.ndarray
    preferred_hard: np.ndarray
    margin: np.ndarray


def _ties_terms(units: Sequence[tuple[Item, dict[str, float]]]) -> _TiesTerms:
    n = len(units)
    kind = np.array([None] * n, dtype=object)
    accurate, ci, spread = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan)
    number: dict[tuple[str, str], int] = {}
    for i, (item, s) in enumerate(units):
        match = _TIES_ID.match(item.entry_id) if item.category_path[0].lower() == TIES else None
        if not match:
            continue
        kind[i] = match.group(1)
        number[(match.group(1), item.entry_id.split(":", 1)[1])] = i
        accurate[i] = float(ties_accurate(item, s))
        correct = [v for k, v in s.items() if k in item.correct_keys]
        ci[i] = min(correct) - max(v for k, v in s.items() if k not in item.correct_keys)
        spread[i] = max(correct) - min(correct) if len(correct) > 1 else np.nan
    partnered, preferred, hard, margin = np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n), np.zeros(n)
    for (k, num), i in number.items():
        j = number.get(("ref", num))
        if k != "tied" or j is None:
            continue
        partnered[i] = True
        low = min(ci[j], ci[i])
        preferred[i] = float(ci[i] > spread[i])
        hard[i] = float(low > spread[i])
        with np.errstate(divide="ignore", invalid="ignore"):
            margin[i] = float(np.nan_to_num(np.tanh(low / spread[i] - 1), nan=0.0))  # 0/0 counts 0, as the evaluator's
    return _TiesTerms(kind, accurate, partnered, preferred, hard, margin)


def _composite(parts: Sequence[Estimate], n: int, n_groups: int, mask: np.ndarray, confidence: float) -> Estimate:
    """0.30 tied + 0.30 ref accuracy + 0.20 + 0.20 the two margin comparisons + 0.01 the tanh term, draw by draw."""
    missing = [p.reason for p in parts if p.value is None]
    if missing:
        return Estimate(None, n, n_groups, reason="the Ties composite needs all five terms: " + "; ".join(missing),
                        ci_reason="no estimate")
    point = float(sum(w * p.value for w, p in zip(TIES_WEIGHTS, parts)))
    boot = None
    if all(p.boot is not None for p in parts):
        boot = sum(w * p.boot for w, p in zip(TIES_WEIGHTS, parts))
    if boot is not None and n_groups < 2:  # noqa: PLR2004
        # One ref:N/tied:N pair: every draw is that pair, a zero-width interval that would claim certainty.
        return Estimate(point, n, n_groups, ci_reason="one resampling group (one ref:/tied: pair): no interval",
                        boot=boot, mask=mask)
    iv = bs.interval(point, boot, confidence=confidence)
    return Estimate(point, n, n_groups, ci=iv["ci"], ci_method=iv["ci_method"], ci_reason=iv.get("ci_reason"),
                    boot=boot, mask=mask)


def _signed(part: Estimate) -> Estimate:
    """A proportion of (x + 1) / 2 back on x's own scale, (-1, 1): the tanh margin term."""
    if part.value is None:
        return part
    return Estimate(2 * part.value - 1, part.n, part.n_groups, ci=None if part.ci is None else [2 * c - 1 for c in part.ci],
                    ci_method=part.ci_method, ci_reason=part.ci_reason,
                    boot=None if part.boot is None else 2 * part.boot - 1,
                    values=None if part.values is None else 2 * part.values - 1, mask=part.mask)


def _ties_estimates(units: Sequence[tuple[Item, dict[str, float]]], rates: GroupedRates, is_ties: np.ndarray) -> dict:
    terms = _ties_terms(units)
    ref, tied = terms.kind == "ref", terms.kind == "tied"
    n, k = int(is_ties.sum()), rates.n_groups(is_ties)
    people = any(isinstance(s, PickScores) for t, (_, s) in zip(is_ties, units) if t)
    out: dict[str, Any] = {"ref_accuracy": rates.proportion(terms.accurate, ref, "scored ref: items")}
    if people:
        why = "people give a pick, not scores: the margin terms need score differences"
        out["tied_accuracy"] = Estimate(None, int(tied.sum()), rates.n_groups(tied), reason=(
            "a single pick cannot put every correct answer above every incorrect one; see tied_pick_correct"),
            ci_reason="no estimate")
        picked_right = np.array([t and pick_is_correct(item, s) for t, (item, s) in zip(tied, units)], dtype=float)
        out["tied_pick_correct"] = rates.proportion(picked_right, tied, "scored tied: items")
        for key in ("correctness_preferred", "correctness_preferred_hard", "margin_score"):
            out[key] = Estimate(None, int(terms.partnered.sum()), 0, reason=why, ci_reason="no estimate")
        out["score"] = Estimate(None, n, k, reason=f"{PEOPLE_NO_COMPOSITE}; see ref_accuracy and tied_pick_correct",
                                ci_reason="no estimate")
    else:
        pairs_what = "tied: items whose ref: item is scored too"
        out["tied_accuracy"] = rates.proportion(terms.accurate, tied, "scored tied: items")
        out["correctness_preferred"] = rates.proportion(terms.preferred, terms.partnered, pairs_what)
        out["correctness_preferred_hard"] = rates.proportion(terms.preferred_hard, terms.partnered, pairs_what)
        out["margin_score"] = _signed(rates.proportion((terms.margin + 1) / 2, terms.partnered, pairs_what))
        out["score"] = _composite([out[key] for key in TIES_TERMS], n, k, is_ties, rates.confidence)
    out["unplaced"] = int((is_ties & np.array([x is None for x in terms.kind])).sum())
    return {"score": out.pop("score"), **out}


def metrics(items: Iterable[Item], scores: Scores) -> dict[str, dict[str, Any]]:
    """Point values of ``estimates`` for a reward model's scores, as ``Rate``: per subset ``{"score"}``, and Ties' terms.

    A Ties item whose id is not ``ref:N`` / ``tied:N`` cannot be told apart
    and counts in neither (``unplaced``).
    """
    units = list(scored(items, scores))
    result = estimates(units, GroupedRates([i.group_id for i, _ in units], [i.category_path[0] for i, _ in units],
                                           n_boot=0))
    out: dict[str, dict[str, Any]] = {}
    for subset, parts in result["subsets"].items():
        out[subset] = {key: Rate(v.value, v.n, v.reason) if isinstance(v, Estimate) else v for key, v in parts.items()}
    return out


def estimates(units: Sequence[tuple[Item, dict[str, float]]], rates: GroupedRates) -> dict[str, Any]:
    """Each subset's score with its interval, plus the leaderboard's ``Score``.

    ``{"subsets": {subset: {"score": Estimate}, "Ties": {"score",
    "ref_accuracy", "tied_accuracy", "correctness_preferred",
    "correctness_preferred_hard", "margin_score": Estimate, "unplaced": int}},
    "Score": Estimate}``. Each best-of-N subset's score is the mean credit
    (1/k when ``chosen_0`` shares the maximum with k-1 others: a person's
    split plurality or tie choice gets the same partial credit). The Ties
    score is the evaluator's composite, recomputed in every draw; for people
    (``PickScores``) it has no value, and ``tied_pick_correct`` stands in for
    the tied accuracy a pick cannot reach. ``Score`` is the unweighted mean
    of the subset scores, as the leaderboard's.
    """
    subset_of = np.array([item.category_path[0] for item, _ in units], dtype=object)
    is_ties = np.array([s.lower() == TIES for s in subset_of.tolist()], dtype=bool)
    credit = np.array([0.0 if t else best_of_n(s) for t, (_, s) in zip(is_ties, units)])
    out: dict[str, Any] = {}
    for name in sorted(set(subset_of[~is_ties].tolist())):
        out[name] = {"score": rates.proportion(credit, subset_of == name)}
    if is_ties.any():
        out["Ties"] = _ties_estimates(units, rates, is_ties)
    ties_score = out.get("Ties", {}).get("score")
    if ties_score is not None and ties_score.value is None:
        why = PEOPLE_NO_COMPOSITE if ties_score.reason.startswith(PEOPLE_NO_COMPOSITE) else "see Ties"
        score = Estimate(None, len(units), rates.n_groups(np.ones(len(units), dtype=bool)),
                         reason=f"the leaderboard Score averages the Ties composite, which has no value here ({why})",
                         ci_reason="no estimate")
    else:
        score = rates.mean([v["score"] for v in out.values()], what="subsets")
    return {"subsets": out, "Score": score}
