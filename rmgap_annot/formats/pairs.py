"""Plain preference pairs in TRL's conventions: standard, conversational, implicit prompt.

- standard: ``{"prompt": str, "chosen": str, "rejected": str}``
- conversational: ``{"prompt": [msgs], "chosen": [msgs], "rejected": [msgs]}``
- implicit prompt: ``{"chosen": [msgs], "rejected": [msgs]}``: the prompt is
  the messages both share before their last, which must be the assistant's.

A completion must be one assistant message (multi-message completions are
not supported yet: a person would be judging a dialogue, not an answer).
Every other column (``score_chosen``, ``source``, ...) is kept verbatim and
hidden: a score column would give the answer away. The entry id is the
``id`` column when there is one, else the file and position (``train.jsonl:L12``
for line 12, ``train.parquet:R3`` for row 3).
The metric is plain accuracy: ``chosen > rejected``, strict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rmgap_annot.formats.common import (
    Candidate, Entry, Item, Loaded, Problems, Rate, Row, Scores, context_group, entry_id_of, rate,
    read_entries, scored, single_item_entry, write_entries,
)
from rmgap_annot.stats.grouped import GroupedRates

NAME = "pairs"
CORE = ("prompt", "chosen", "rejected")


def _completion(problems: Problems, value: Any, where: str) -> str | None:
    messages = problems.conversation(value, where, last="assistant")
    if messages is None:
        return None
    if len(messages) != 1:
        problems.add(where, f"holds {len(messages)} messages; a completion must be one assistant message")
        return None
    return messages[0]["content"]


def _implicit(problems: Problems, data: dict[str, Any]) -> tuple[list[dict[str, str]] | None, str | None, str | None]:
    """(shared prompt messages, chosen text, rejected text) of an implicit-prompt pair."""
    chosen = problems.conversation(data.get("chosen"), "chosen", last="assistant")
    rejected = problems.conversation(data.get("rejected"), "rejected", last="assistant")
    if chosen is None or rejected is None:
        return None, None, None
    prompt = chosen[:-1]
    if rejected[:-1] != prompt:
        problems.add("rejected", "must share every message but the last with chosen (the implicit prompt)")
        return None, None, None
    if not prompt:
        problems.add("chosen", "holds only the answer: an implicit-prompt pair needs the prompt's messages before it")
        return None, None, None
    if prompt[-1]["role"] != "user":
        problems.add(f"chosen[{len(prompt) - 1}].role", f"the last turn of the prompt must be the user's, found {prompt[-1]['role']!r}")
        return None, None, None
    return prompt, chosen[-1]["content"], rejected[-1]["content"]


def variant(data: dict[str, Any]) -> str:
    """'standard', 'conversational' or 'implicit', from the columns' shapes."""
    if "prompt" not in data:
        return "implicit"
    return "standard" if isinstance(data.get("prompt"), str) else "conversational"


def _build(row: Row, problems: Problems) -> Entry | None:
    data = row.data
    entry_id = entry_id_of(data.get("id")) if data.get("id") is not None else None
    if data.get("id") is not None and entry_id is None:
        problems.add("id", "must be an integer or a non-empty string")
    if entry_id is None:
        entry_id = f"{row.file}:{'L' if row.unit == 'line' else 'R'}{row.position}"
    kind = variant(data)
    prompt: str | None = None
    conversation: list[dict[str, str]] | None = None
    if kind == "standard":
        prompt = problems.text(data, "prompt")
        chosen, rejected = problems.text(data, "chosen"), problems.text(data, "rejected")
    elif kind == "conversational":
        conversation = problems.conversation(data.get("prompt"), "prompt")
        chosen = _completion(problems, data.get("chosen"), "chosen")
        rejected = _completion(problems, data.get("rejected"), "rejected")
    else:
        if isinstance(data.get("chosen"), str):
            problems.add("prompt", "is missing: a pair of plain texts needs a prompt column (implicit prompts are conversations)")
            return None
        conversation, chosen, rejected = _implicit(problems, data)
    if problems.errors:
        return None
    candidates = [Candidate("chosen", chosen), Candidate("rejected", rejected)]
    problems.candidates(candidates, "rejected")
    category = data.get("category", data.get("subset"))
    item = Item(
        format=NAME, entry_id=entry_id, item_index=0, candidates=candidates, correct_keys=("chosen",),
        category_path=(category,) if isinstance(category, str) and category.strip() else (),
        group_id=context_group(NAME, prompt if prompt is not None else conversation),
        prompt=prompt, conversation=conversation,
        hidden={"variant": kind, "extra": {k: v for k, v in data.items() if k not in CORE}},
        original=data,
    )
    return single_item_entry(problems, row, entry_id, item)


def read(path: str | Path) -> Loaded:
    """A .jsonl / .jsonl.gz / .parquet file, or a folder of them."""
    return read_entries(path, format_name=NAME, containers=("jsonl", "parquet"), build=_build)


def write(entries: Iterable[Entry], out: str | Path) -> list[Path]:
    return write_entries(entries, out)


def metrics(items: Iterable[Item], scores: Scores) -> dict[str, Rate]:
    """Accuracy per category (when the file has a category or subset column) and overall ("all")."""
    hits: dict[str, list[bool]] = {}
    for item, s in scored(items, scores):
        ok = s["chosen"] > s["rejected"]
        hits.setdefault("all", []).append(ok)
        if item.category_path:
            hits.setdefault(item.category_path[0], []).append(ok)
    return {k: rate(sum(v), len(v)) for k, v in sorted(hits.items())}


def estimates(units: Sequence[tuple[Item, dict[str, float]]], rates: GroupedRates) -> dict[str, Any]:
    """``metrics`` with intervals: ``{"all": Estimate, category: Estimate}`` (strict: a tie is wrong)."""
    ok = np.array([s["chosen"] > s["rejected"] for _, s in units], dtype=float)
    cat = [item.category_path[0] if item.category_path else None for item, _ in units]
    out: dict[str, Any] = {"all": rates.proportion(ok, np.ones(len(units), dtype=bool))}
    for name in sorted({c for c in cat if c is not None}):
        out[name] = rates.proportion(ok, np.array([c == name for c in cat], dtype=bool))
    return out
