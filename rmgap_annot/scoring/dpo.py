"""DPO implicit reward: policy over reference log-probability ratio on the
response tokens, aggregated like ``lm-logprob`` (RMGAP's ``dpo_implicit``).

The per-token differences are aggregated (for mean and sum this equals the
difference of aggregates; for the discounted sum too, since it is linear).
Both models must share the policy's tokenizer: the ratio is per token.
"""

from __future__ import annotations

from typing import Any, Sequence

from rmgap_annot.scoring import ScoringError, ScoringOptions, Unit, aggregate
from rmgap_annot.scoring import hf
from rmgap_annot.scoring.lm_logprob import CausalModel, LogprobScorer


class DpoScorer(LogprobScorer):
    family = "dpo"

    def __init__(self, policy: str, reference: str, options: ScoringOptions):
        super().__init__(policy, options)
        self.reference = reference
        self._ref: CausalModel | None = None

    def fingerprint_parts(self) -> dict[str, Any]:
        return {**super().fingerprint_parts(), "reference": hf.model_files_hash(self.reference)}

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        if self._ref is None:
            self._ref = CausalModel(self.reference, self.options, self.tokenizer)
            self._ref.load()
            n_embed = self._ref.model.get_input_embeddings().num_embeddings
            if n_embed < len(self.tokenizer):
                raise ScoringError(
                    f"the reference model embeds {n_embed} tokens but the policy's tokenizer has {len(self.tokenizer)}: "
                    "a DPO ratio needs both models on the same tokenizer"
                )
        policy = self.lm.logprobs(units)
        reference = self._ref.logprobs(units)
        self.n_calls += 1
        return [
            [aggregate([p - r for p, r in zip(pl, rl)], self.options.aggregation)] for pl, rl in zip(policy, reference)
        ]

    def close(self) -> None:
        self._lm = None
        self._ref = None
