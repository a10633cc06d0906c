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
comparisons + 0.01 a tanh margin term. Only the accuracy part is computed
here (ref and tied accuracy); the margin terms (41% of the composite) are
left out, so the Ties composite is None with that reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rmgap_annot.formats.common import (
    Candidate, Entry, Item, Loaded, Problems, Rate, Row, Scores, context_group, entry_id_of, rate,
    read_entries, scored, single_item_entry, write_entries,
)
from rmgap_annot.stats.grouped import Estimate, GroupedRates

NAME = "rewardbench2"
TIES = "ties"
_TIES_ID = re.compile(r"^(ref|tied):\d+$")


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
        category_path=(subset,), group_id=context_group(NAME, prompt), prompt=prompt,
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


def metrics(items: Iterable[Item], scores: Scores) -> dict[str, dict[str, Any]]:
    """Per subset: ``{"score": Rate}``; for Ties also ``ref_accuracy`` and ``tied_accuracy``.

    A Ties item whose id is not ``ref:N`` / ``tied:N`` cannot be told apart
    and counts in neither (``unplaced``).
    """
    credit: dict[str, list[float]] = {}
    ties: dict[str, list[bool]] = {"ref": [], "tied": []}
    unplaced = 0
    for item, s in scored(items, scores):
        subset = item.category_path[0]
        if subset.lower() == TIES:
            match = _TIES_ID.match(item.entry_id)
            if match:
                ties[match.group(1)].append(ties_accurate(item, s))
            else:
                unplaced += 1
            continue
        credit.setdefault(subset, []).append(best_of_n(s))
    out: dict[str, dict[str, Any]] = {s: {"score": rate(sum(v), len(v))} for s, v in sorted(credit.items())}
    if any(ties.values()) or unplaced:
        out["Ties"] = {
            "score": Rate(None, sum(len(v) for v in ties.values()), (
                "the Ties composite also weighs margin terms (41%) not computed here; see ref_accuracy and tied_accuracy")),
            "ref_accuracy": rate(sum(ties["ref"]), len(ties["ref"]), "scored ref: items"),
            "tied_accuracy": rate(sum(ties["tied"]), len(ties["tied"]), "scored tied: items"),
            "unplaced": unplaced,
        }
    return out


def estimates(units: Sequence[tuple[Item, dict[str, float]]], rates: GroupedRates) -> dict[str, Any]:
    """``metrics`` with intervals, plus the leaderboard's ``Score``.

    ``{"subsets": {subset: {"score": Estimate}, "Ties": {"score",
    "ref_accuracy", "tied_accuracy": Estimate, "unplaced": int}}, "Score":
    Estimate}``. Each best-of-N subset's score is the mean credit (1/k when
    ``chosen_0`` shares the maximum with k-1 others: a person's split plurality
    or tie choice gets the same partial credit). ``Score`` is the unweighted
    mean of the subset scores, as the leaderboard's; it is None while a Ties
    subset is present (its composite is not computed here).
    """
    subset_of = np.array([item.category_path[0] for item, _ in units], dtype=object)
    is_ties = np.array([s.lower() == TIES for s in subset_of.tolist()], dtype=bool)
    credit = np.array([0.0 if t else best_of_n(s) for t, (_, s) in zip(is_ties, units)])
    out: dict[str, Any] = {}
    for name in sorted(set(subset_of[~is_ties].tolist())):
        out[name] = {"score": rates.proportion(credit, subset_of == name)}
    if is_ties.any():
        kind = [m.group(1) if (m := _TIES_ID.match(item.entry_id)) else None for item, _ in units]
        accurate = np.array([t and ties_accurate(item, s) for t, (item, s) in zip(is_ties, units)], dtype=float)
        out["Ties"] = {
            "score": Estimate(None, int(is_ties.sum()), rates.n_groups(is_ties), reason=(
                "the Ties composite also weighs margin terms (41%) not computed here; see ref_accuracy and tied_accuracy"),
                ci_reason="no estimate"),
            "ref_accuracy": rates.proportion(accurate, is_ties & np.array([k == "ref" for k in kind]), "scored ref: items"),
            "tied_accuracy": rates.proportion(accurate, is_ties & np.array([k == "tied" for k in kind]), "scored tied: items"),
            "unplaced": int((is_ties & np.array([k is None for k in kind])).sum()),
        }
    if "Ties" in out:
        score = Estimate(None, len(units), rates.n_groups(np.ones(len(units), dtype=bool)),
                         reason="the leaderboard Score averages the Ties composite, which is not computed here",
                         ci_reason="no estimate")
    else:
        score = rates.mean([v["score"] for v in out.values()], what="subsets")
    return {"subsets": out, "Score": score}
