"""RMB (Zhou et al., ICLR 2025): pairwise and Best-of-N entries over conversations.

The published ``RMB_dataset`` folder holds ``Pairwise_set/<goal>/<task>/<scenario>.json``
and ``BoN_set/...`` with the same tree; each file is one JSON array. An entry
becomes one item: a pair (``chosen``/``reject``) or a BoN set (``bon_best``,
``loser_0``..). Generator names (``llm_name``) are hidden. Pairwise and BoN
entries over one conversation share a group (a hash of the normalised
conversation), since most BoN prompts reappear as pairs.

Metrics follow RMB's evaluation as described in its paper and repository
(see ../shared/benchmark-formats.md): pairwise accuracy is the share of
pairs with ``score(chosen) > score(reject)``; a BoN entry is correct when
``bon_best`` beats every loser; both strict (a tie is wrong), per category
path, then averaged up the tree (scenario -> task -> Helpfulness/Harmlessness)
as unweighted means of the children.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from rmgap_annot.formats.common import (
    Candidate, Entry, Item, Loaded, Problems, Rate, Row, Scores, beats_all, context_group, entry_from, mean_of, rate,
    read_entries, scored, write_entries,
)
from rmgap_annot.stats.grouped import GroupedRates

T = TypeVar("T")

NAME = "rmb"
SETS = ("Pairwise_set", "BoN_set")


def _answer(problems: Problems, data: dict[str, Any], key: str, where: str) -> tuple[str | None, str | None]:
    """(answer text, llm_name) of a ``{"llm_name", "answer"}`` object."""
    obj = problems.obj(data, key, where) if key else data
    if obj is None:
        return None, None
    return problems.text(obj, "answer", f"{where}.answer"), problems.optional_text(obj, "llm_name", f"{where}.llm_name")


def category_path(value: str) -> tuple[str, ...]:
    """``Pairwise_set/Helpfulness/Code/Code Generation`` -> (Helpfulness, Code, Code Generation)."""
    parts = [p for p in value.split("/") if p.strip()]
    if parts and parts[0] in SETS:
        parts = parts[1:]
    return tuple(parts)


def _build(row: Row, problems: Problems) -> Entry | None:
    data = row.data
    is_pair, is_bon = "pair_uid" in data, "bon_uid" in data
    if is_pair == is_bon:
        problems.add("(entry)", "an RMB entry has exactly one of pair_uid (pairwise) or bon_uid (Best-of-N)"
                     + (", found both" if is_pair else ", found neither"))
        return None
    id_field = "pair_uid" if is_pair else "bon_uid"
    uid = problems.text(data, id_field)
    conversation = problems.conversation(data.get("conversation_input"), "conversation_input")
    path = problems.text(data, "category_path")
    generators: dict[str, str | None] = {}
    candidates: list[Candidate] = []
    if is_pair:
        for key in ("chosen", "reject"):
            text, llm = _answer(problems, data, key, key)
            if text is not None:
                candidates.append(Candidate(key, text))
                generators[key] = llm
    else:
        text, llm = _answer(problems, data, "bon_best", "bon_best")
        if text is not None:
            candidates.append(Candidate("bon_best", text))
            generators["bon_best"] = llm
        losers = problems.array(data, "loser_list")
        if losers is not None:
            if not losers:
                problems.add("loser_list", "must hold at least one loser (a Best-of-N entry needs 2 or more candidates)")
            for i, loser in enumerate(losers):
                if not isinstance(loser, dict):
                    problems.add(f"loser_list[{i}]", "must be an object with llm_name and answer")
                    continue
                text, llm = _answer(problems, loser, "", f"loser_list[{i}]")
                if text is not None:
                    candidates.append(Candidate(f"loser_{i}", text))
                    generators[f"loser_{i}"] = llm
    if problems.errors or uid is None or conversation is None or path is None:
        return None
    problems.candidates(candidates, "reject" if is_pair else "loser_list")
    cats = category_path(path)
    if not cats:
        problems.add("category_path", f"names no category: {path!r}")
    first = path.split("/", 1)[0]
    expected = "Pairwise_set" if is_pair else "BoN_set"
    if first in SETS and first != expected:
        problems.add("category_path", f"starts with {first} but this is a {'pairwise' if is_pair else 'Best-of-N'} entry ({expected})")
    item = Item(
        format=NAME, entry_id=uid, item_index=0, candidates=candidates,
        correct_keys=("chosen",) if is_pair else ("bon_best",),
        category_path=cats, group_id=context_group(NAME, conversation), conversation=conversation,
        hidden={"kind": "pairwise" if is_pair else "bon", "generators": generators,
                "languages": [m.get("language") for m in data["conversation_input"]]},
        original=data,
    )
    problems.item_size(item, "(entry)")
    if problems.errors:
        return None
    entry = entry_from(row, uid)
    entry.items.append(item)
    return entry


def read(path: str | Path) -> Loaded:
    """An ``RMB_dataset`` folder (Pairwise_set and BoN_set trees) or one JSON array file."""
    return read_entries(path, format_name=NAME, containers=("json",), build=_build)


def write(entries: Iterable[Entry], out: str | Path) -> list[Path]:
    """The kept entries under folder ``out``, in the same tree and file names, each file a JSON array."""
    return write_entries(entries, out)


# --- RMB's metric rules ----------------------------------------------------


def pair_correct(scores: dict[str, float]) -> bool:
    return scores["chosen"] > scores["reject"]


def bon_correct(scores: dict[str, float]) -> bool:
    return beats_all(scores, "bon_best")


def up_the_tree(leaves: dict[tuple[str, ...], T], mean: Callable[[list[T]], T]) -> dict[str, T]:
    """The leaves, then each ancestor the ``mean`` of its children, keyed by the path joined with "/".

    A path that is both a leaf and a parent keeps the leaf's own items apart
    (its value is its items', not its children's).
    """
    result = dict(leaves)
    depth = max((len(p) for p in result), default=0)
    for level in range(depth - 1, 0, -1):
        parents: dict[tuple[str, ...], list[T]] = {}
        for path, r in result.items():
            if len(path) == level + 1:
                parents.setdefault(path[:level], []).append(r)
        for parent, children in parents.items():
            if parent not in result:
                result[parent] = mean(children)
    return {"/".join(p): r for p, r in sorted(result.items())}


def tree_accuracy(outcomes: Iterable[tuple[tuple[str, ...], bool]]) -> dict[str, Rate]:
    """Accuracy per category path (a leaf), then each ancestor the unweighted mean of its children.

    Keys are paths joined by "/": ``Helpfulness/Code/Code Generation``,
    ``Helpfulness/Code``, ``Helpfulness``.
    """
    hits: dict[tuple[str, ...], list[bool]] = {}
    for path, ok in outcomes:
        hits.setdefault(path, []).append(ok)
    leaves = {p: rate(sum(v), len(v)) for p, v in hits.items()}
    return up_the_tree(leaves, lambda children: mean_of(children, "subcategories"))


def metrics(items: Iterable[Item], scores: Scores) -> dict[str, dict[str, Rate]]:
    """RMB's two accuracies, per category path and averaged up the tree.

    ``{"pairwise": {path: Rate}, "bon": {path: Rate}}``; items without scores are left out.
    """
    pairwise, bon = [], []
    for item, s in scored(items, scores):
        if item.hidden["kind"] == "pairwise":
            pairwise.append((item.category_path, pair_correct(s)))
        else:
            bon.append((item.category_path, bon_correct(s)))
    return {"pairwise": tree_accuracy(pairwise), "bon": tree_accuracy(bon)}


def estimates(units: Sequence[tuple[Item, dict[str, float]]], rates: GroupedRates) -> dict[str, Any]:
    """``metrics`` with intervals: ``{"pairwise": {path: Estimate}, "bon": {path: Estimate}}``.

    Same rules (strict: a tie, human or model, is wrong), each leaf a
    proportion over its entries, each ancestor the unweighted mean of its
    children draw by draw. ``units`` are in ``rates``' order.
    """
    out: dict[str, Any] = {}
    for kind, correct in (("pairwise", pair_correct), ("bon", bon_correct)):
        ok = np.array([kind == item.hidden["kind"] and correct(s) for item, s in units], dtype=float)
        is_kind = np.array([item.hidden["kind"] == kind for item, _ in units], dtype=bool)
        paths = sorted({item.category_path for item, _ in units if item.hidden["kind"] == kind})
        leaves = {
            p: rates.proportion(ok, is_kind & np.array([item.category_path == p for item, _ in units], dtype=bool),
                                f"scored {kind} entries")
            for p in paths
        }
        out[kind] = up_the_tree(leaves, lambda children: rates.mean(children, what="subcategories"))
    return out
