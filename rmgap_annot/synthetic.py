"""RMGAP-shaped synthetic data for tests and benchmarks.

The released benchmark is not redistributable here, so speed is measured on
files of the same size and shape: 1,097 records in RMGAP's domain mix, four
responses with long-tailed lengths (most a few hundred characters, some tens
of thousands), four groups of three prompts, style profiles, extra fields.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

RMGAP_DOMAIN_COUNTS = {"Chat": 397, "Writing": 253, "Reasoning": 225, "Safety": 222}
_WORDS = (
    "reward model preference user response tailored prompt formal casual concise verbose technical layman "
    "objective subjective structure coherent answer explain detail example context request style benchmark "
    "señal données 数据 ответ प्रश्न $x^2$ `code` **bold** - item"
).split()
_SCALES = {
    "Formality": ["casual", "informal", "neutral", "formal", "highly_formal"],
    "Conciseness": ["terse", "concise", "moderate", "detailed", "verbose"],
    "Technicality": ["layman", "accessible", "moderate", "technical", "highly_specialized"],
    "Objectivity": ["highly_subjective", "subjective", "balanced", "objective", "strictly_objective"],
    "Structural_Coherence": ["fragmented", "loose", "moderate", "structured", "rigorous"],
}


def _text(rng: random.Random, n_chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < n_chars:
        w = rng.choice(_WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def response_length(rng: random.Random) -> int:
    """Long-tailed like real responses: median ~900 chars, 1% beyond 15,000."""
    return int(min(60_000, max(40, rng.lognormvariate(6.8, 0.9))))


def make_record(record_id: str, domain: str, rng: random.Random | None = None, *, long_text: bool = True) -> dict[str, Any]:
    """One valid RMGAP record. ``long_text=False`` keeps texts short (fast tests)."""
    rng = rng or random.Random(record_id)
    keys = [f"response{i}" for i in range(1, 5)]
    winners = keys[:]
    rng.shuffle(winners)
    responses = [
        {"key": k, "text": f"{k} of {record_id}: " + _text(rng, response_length(rng) if long_text else rng.randint(20, 120))}
        for k in keys
    ]
    groups = []
    for g, winner in enumerate(winners):
        base = f"[{record_id} g{g}] As a user who wants {winner}'s style: " + _text(rng, rng.randint(100, 400) if long_text else 40)
        prompts = [{"role": "base", "text": base}]
        prompts += [{"role": "rewrite", "text": f"(rewrite {j}) " + base} for j in (1, 2)]
        groups.append({"group": g, "winner": winner, "prompts": prompts})
    styles = {f"r{i}": {s: rng.choice(levels) for s, levels in _SCALES.items()} for i in range(1, 5)}
    return {
        "id": record_id,
        "domain": domain,
        "source": rng.choice(["alpaca", "hh-rlhf", "ultrafeedback", "wildchat"]),
        "models": {k: rng.choice(["model-a", "model-b", "model-c"]) for k in keys},
        "responses": responses,
        "prompt_groups": groups,
        "style_assignments": styles,
        "extra_field": {"kept": True},
    }


def make_records(domain_counts: dict[str, int] | None = None, *, seed: int = 0, long_text: bool = True) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    counts = domain_counts or RMGAP_DOMAIN_COUNTS
    return [
        make_record(f"{domain.lower()}-{i:04d}", domain, rng, long_text=long_text)
        for domain, n in counts.items()
        for i in range(n)
    ]


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path
