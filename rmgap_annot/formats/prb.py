"""Personalized RewardBench: a question, the asking user's past posts, a chosen and a rejected answer.

Published as Parquet (one configuration per category, split ``test``); JSONL
copies read the same. The profile is what a person needs to judge fit, so it
is part of the item's context; ``rubric_aspects`` and ``narrative`` are the
benchmark's ground truth and stay hidden.

Metric (the benchmark's own rule, ../shared/benchmark-formats.md): chosen win
rate with a strict ``>``; ties are counted apart, not as half wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rmgap_annot.formats.common import (
    Candidate, Entry, Item, Loaded, Problems, Row, Scores, context_group, entry_id_of, rate, read_entries,
    scored, single_item_entry, write_entries,
)
from rmgap_annot.stats.grouped import GroupedRates

NAME = "prb"


def _profile(problems: Problems, data: dict[str, Any]) -> list[dict[str, Any]] | None:
    posts = problems.array(data, "profile")
    if posts is None:
        return None
    if not posts:
        problems.add("profile", "is empty: a personalised item needs the user's past posts")
        return None
    out = []
    for i, post in enumerate(posts):
        if not isinstance(post, dict):
            problems.add(f"profile[{i}]", "must be an object with id, category and text")
            continue
        text = problems.text(post, "text", f"profile[{i}].text")
        if text is not None:
            out.append({"id": post.get("id"), "category": post.get("category"), "text": text})
    return out


def _build(row: Row, problems: Problems) -> Entry | None:
    data = row.data
    entry_id = entry_id_of(data.get("id"))
    if entry_id is None:
        problems.add("id", "is missing or not a non-empty string")
    question = problems.text(data, "question")
    category = problems.text(data, "category")
    profile = _profile(problems, data)
    chosen, rejected = problems.text(data, "chosen"), problems.text(data, "rejected")
    aspects = data.get("rubric_aspects")
    if aspects is not None and not isinstance(aspects, list):
        problems.add("rubric_aspects", "must be an array")
    problems.optional_text(data, "narrative")
    if problems.errors:
        return None
    candidates = [Candidate("chosen", chosen), Candidate("rejected", rejected)]
    problems.candidates(candidates, "rejected")
    item = Item(
        format=NAME, entry_id=entry_id, item_index=0, candidates=candidates, correct_keys=("chosen",),
        category_path=(category,), group_id=context_group(NAME, question), prompt=question, profile=profile,
        hidden={"rubric_aspects": aspects, "narrative": data.get("narrative")}, original=data,
    )
    return single_item_entry(problems, row, entry_id, item)


def read(path: str | Path) -> Loaded:
    """A .jsonl / .jsonl.gz / .parquet file, or a folder of them (one per configuration)."""
    return read_entries(path, format_name=NAME, containers=("jsonl", "parquet"), build=_build)


def write(entries: Iterable[Entry], out: str | Path) -> list[Path]:
    return write_entries(entries, out)


def outcome(scores: dict[str, float]) -> str:
    """'win', 'tie' or 'loss' for the chosen answer."""
    if scores["chosen"] > scores["rejected"]:
        return "win"
    return "tie" if scores["chosen"] == scores["rejected"] else "loss"


def metrics(items: Iterable[Item], scores: Scores) -> dict[str, dict[str, Any]]:
    """Per category and overall (key "all"): ``{"win_rate": Rate, "ties": n, "tie_rate": Rate}``.

    The win rate's denominator is every scored item, ties included (a tie is not a win).
    """
    groups: dict[str, list[str]] = {}
    for item, s in scored(items, scores):
        result = outcome(s)
        groups.setdefault(item.category_path[0], []).append(result)
        groups.setdefault("all", []).append(result)
    return {
        cat: {"win_rate": rate(r.count("win"), len(r)), "ties": r.count("tie"), "tie_rate": rate(r.count("tie"), len(r))}
        for cat, r in sorted(groups.items())
    }


def estimates(units: Sequence[tuple[Item, dict[str, float]]], rates: GroupedRates) -> dict[str, Any]:
    """``metrics`` with intervals: per category and ``all``, ``{"win_rate", "tie_rate": Estimate, "ties": n}``.

    Ties are counted apart, as the benchmark does: a tie (equal scores; for
    people a "Both equally good" / "Both bad" plurality, a split plurality,
    or no pick) is neither a win nor a loss, is reported in ``ties`` and
    ``tie_rate``, and stays in the win rate's denominator.
    """
    results = [outcome(s) for _, s in units]
    win = np.array([r == "win" for r in results], dtype=float)
    tie = np.array([r == "tie" for r in results], dtype=float)
    cat = np.array([item.category_path[0] for item, _ in units], dtype=object)
    out: dict[str, Any] = {}
    for name in ["all", *sorted(set(cat.tolist()))]:
        mask = np.ones(len(units), dtype=bool) if name == "all" else cat == name
        out[name] = {"win_rate": rates.proportion(win, mask), "tie_rate": rates.proportion(tie, mask),
                     "ties": int(tie[mask].sum())}
    return out
