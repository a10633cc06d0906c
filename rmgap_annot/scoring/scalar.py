"""Sequence-classification reward models (RMGAP's ``scalar`` family).

Input: the model's chat template over [user: prompt, assistant: response] (the whole
conversation before the response, for a conversational item);
score: the head's output at ``--output-index`` (0 for single-output heads).
"""

from __future__ import annotations

from typing import Any, Sequence

from rmgap_annot.scoring import BaseScorer, ItemInput, ScoringError, ScoringOptions, Unit, prompt_messages
from rmgap_annot.scoring import hf


def _messages(item: ItemInput, response: str):  # noqa: ANN202
    prompt = prompt_messages(item)
    return prompt, prompt + [{"role": "assistant", "content": response}]


class ScalarScorer(BaseScorer):
    family = "scalar"

    def __init__(self, path: str, options: ScoringOptions):
        super().__init__(options)
        self.path = path
        self._tokenizer = None
        self._model = None
        self._device = "cpu"
        self._pad_id = 0

    def fingerprint_parts(self) -> dict[str, Any]:
        o = self.options
        return {
            "model": hf.model_files_hash(self.path),
            "dtype": hf.resolved_dtype_name(o),
            "max_length": o.max_length,
            "output_index": o.output_index,
        }

    @property
    def tokenizer(self):  # noqa: ANN201
        if self._tokenizer is None:
            self._tokenizer = hf.load_tokenizer(self.path, self.options)
        return self._tokenizer

    def _load(self) -> None:
        if self._model is not None:
            return
        self._model, self._device = hf.load_model(self.path, self.options, "seq-cls")
        self._pad_id = hf.choose_pad_id(self.tokenizer, self._model.config)
        self._model.config.pad_token_id = self._pad_id
        n_out = self._model.config.num_labels
        if not 0 <= self.options.output_index < n_out:
            raise ScoringError(f"--output-index {self.options.output_index} is out of range: the head has {n_out} output(s)")

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        return hf.chat_units(self.tokenizer, items, _messages, max_length=self.options.max_length, with_prompt_start=False)

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        import torch

        self._load()
        ids, mask = hf.pad_batch([u.payload[0] for u in units], self._pad_id, self._device)
        with torch.inference_mode():
            logits = self._model(input_ids=ids, attention_mask=mask).logits
        self.n_calls += 1
        return [[v] for v in logits[:, self.options.output_index].float().cpu().tolist()]

    def close(self) -> None:
        self._model = None
