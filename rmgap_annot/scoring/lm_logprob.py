"""Causal-LM log-probabilities of the response tokens (RMGAP's ``endorm``).

The response tokens are every token of the templated [user, assistant]
conversation after the prompt rendered with its generation prompt (so the
end-of-turn token counts, as in RMGAP); they are aggregated by mean, sum or
discounted sum (gamma 0.93, clip_min 0.0).
"""

from __future__ import annotations

from typing import Any, Sequence

from rmgap_annot.scoring import BaseScorer, ItemInput, ScoringOptions, Unit, aggregate, prompt_messages
from rmgap_annot.scoring import hf


def chat_messages(item: ItemInput, response: str):  # noqa: ANN201
    prompt = prompt_messages(item)
    return prompt, prompt + [{"role": "assistant", "content": response}]


class CausalModel:
    """A lazily loaded causal LM that returns response-token log-probs."""

    def __init__(self, path: str, options: ScoringOptions, tokenizer):  # noqa: ANN001
        self.path = path
        self.options = options
        self.tokenizer = tokenizer
        self.model = None
        self.device = "cpu"
        self.pad_id = 0

    def load(self) -> None:
        if self.model is None:
            self.model, self.device = hf.load_model(self.path, self.options, "causal")
            self.pad_id = hf.choose_pad_id(self.tokenizer, self.model.config)

    def logprobs(self, units: Sequence[Unit]) -> list[list[float]]:
        import torch

        self.load()
        with torch.inference_mode():
            return hf.response_token_logprobs(
                self.model, [u.payload[0] for u in units], [u.payload[1] for u in units], self.pad_id, self.device
            )


class LogprobScorer(BaseScorer):
    family = "lm-logprob"
    messages = staticmethod(chat_messages)

    def __init__(self, path: str, options: ScoringOptions):
        super().__init__(options)
        self.path = path
        self._tokenizer = None
        self._lm: CausalModel | None = None

    @property
    def tokenizer(self):  # noqa: ANN201
        if self._tokenizer is None:
            self._tokenizer = hf.load_tokenizer(self.path, self.options)
        return self._tokenizer

    @property
    def lm(self) -> CausalModel:
        if self._lm is None:
            self._lm = CausalModel(self.path, self.options, self.tokenizer)
        return self._lm

    def fingerprint_parts(self) -> dict[str, Any]:
        o = self.options
        return {
            "model": hf.model_files_hash(self.path),
            "dtype": hf.resolved_dtype_name(o),
            "max_length": o.max_length,
            "aggregation": o.aggregation,
        }

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        return hf.chat_units(self.tokenizer, items, self.messages, max_length=self.options.max_length, with_prompt_start=True)

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        per_token = self.lm.logprobs(units)
        self.n_calls += 1
        return [[aggregate(lp, self.options.aggregation)] for lp in per_token]

    def close(self) -> None:
        self._lm = None
