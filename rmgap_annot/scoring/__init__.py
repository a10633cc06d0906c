"""Reward models and baselines behind one small interface.

A scorer turns items (a context, 2 to 8 responses) into *units*: the smallest
pieces of model work (one templated sequence for most families, one whole
item for a listwise judge). The runner (``scoring.runner``) dedupes units by
their key, sorts them by length, batches them, and stores the values; a
scorer only knows how to build units and score a batch of them. That split
is what makes every family resumable, deduplicated and batch-size
independent without each module re-implementing it.

SPEC grammar (what ``rmgap-annot score --scorer`` takes):

- ``scalar:PATH``        sequence-classification RM (folder or hub id)
- ``lm-logprob:PATH``    causal LM log-probabilities of the response tokens
- ``dpo:POLICY,REFERENCE`` policy/reference log-ratio on the response tokens
- ``judge:PATH``         LM judge (``--judge-mode verifier|pointwise|listwise|pairwise``);
  with ``--endpoint URL``, PATH is the model name the server knows
- ``length`` | ``random`` | ``embedding``  baselines (no model path)

Heavy libraries (torch, transformers) are imported inside the family
modules only, so the CLI and the app start fast.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Hashable, Optional, Sequence

FAMILIES = ("scalar", "lm-logprob", "dpo", "judge", "length", "random", "embedding")
MODEL_FAMILIES = ("scalar", "lm-logprob", "dpo", "judge")
AGGREGATIONS = ("mean", "sum", "discounted_sum")
JUDGE_MODES = ("verifier", "pointwise", "listwise", "pairwise")
# RMGAP's default aggregation for lm-logprob / dpo (endorm.yaml).
DISCOUNT_GAMMA = 0.93
DISCOUNT_CLIP_MIN = 0.0


class ScoringError(Exception):
    """A scoring request that cannot run (bad spec, missing model, name clash)."""


@dataclass(frozen=True)
class ItemInput:
    """What a scorer sees of one item. ``uid`` is stable across runs (seeds use it)."""

    item_id: int
    uid: str  # "record_id/group/prompt_index"
    prompt: str  # the prompt, or a conversation's last user turn
    responses: tuple[tuple[str, str], ...]  # (response key, text), in file order
    # A conversation before the answer ((role, content), the last turn the user's): RMB, pairs in
    # conversational form. None: a single-turn prompt.
    context: tuple[tuple[str, str], ...] | None = None


def prompt_messages(item: ItemInput) -> list[dict[str, str]]:
    """The chat a response answers: the whole conversation where there is one, else [user: prompt].

    Scoring a conversational benchmark on its last turn alone would judge
    an answer without the question it answers.
    """
    if item.context:
        return [{"role": role, "content": content} for role, content in item.context]
    return [{"role": "user", "content": item.prompt}]


@dataclass
class Unit:
    """One piece of model work; units with equal ``key`` are scored once.

    ``response_keys``: which of the item's responses the unit's values belong
    to (one for sequence scorers, all of the item's for a listwise judge).
    """

    key: Hashable
    length: int
    payload: Any
    response_keys: tuple[str, ...]
    truncated: bool = False


@dataclass
class ScoringOptions:
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    batch_size: int = 8
    max_length: int = 4096
    output_index: int = 0
    trust_remote_code: bool = False
    aggregation: str = "discounted_sum"
    judge_mode: str = "verifier"
    endpoint: Optional[str] = None
    seed: int = 0
    max_new_tokens: int = 16
    concurrency: int = 8  # parallel requests against an endpoint

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BaseScorer:
    """The interface every family implements.

    ``fingerprint_parts`` must be computable without loading the model: the
    runner compares fingerprints before any model work, so a finished run
    repeated costs nothing.
    """

    family: str = ""
    n_calls: int = 0  # model forward/generate/request calls: tests assert on it
    n_unparseable: int = 0

    def __init__(self, options: ScoringOptions):
        self.options = options
        self.n_calls = 0
        self.n_unparseable = 0

    def fingerprint_parts(self) -> dict[str, Any]:
        raise NotImplementedError

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        """For each item, the units that together give all its responses a value."""
        raise NotImplementedError

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        """One list of values per unit, aligned with ``unit.response_keys``."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        parts = {"family": self.family, **self.fingerprint_parts()}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def close(self) -> None:
        """Free the model (the page's worker process scores one job then exits)."""


@dataclass(frozen=True)
class ParsedSpec:
    family: str
    paths: tuple[str, ...] = field(default_factory=tuple)


def parse_spec(spec: str) -> ParsedSpec:
    """``family[:path[,path]]`` -> ParsedSpec, with errors that say what to type."""
    spec = (spec or "").strip()
    family, _, rest = spec.partition(":")
    family = family.strip()
    if family not in FAMILIES:
        raise ScoringError(f"unknown scorer family {family!r} in {spec!r}; expected one of: {', '.join(FAMILIES)}")
    rest = rest.strip()
    if family in MODEL_FAMILIES:
        if not rest:
            raise ScoringError(f"{family} needs a model: --scorer {family}:/path/to/model")
        paths = tuple(p.strip() for p in rest.split(","))
        if family == "dpo" and (len(paths) != 2 or not all(paths)):
            raise ScoringError("dpo needs two models: --scorer dpo:/path/policy,/path/reference")
        if family != "dpo" and len(paths) != 1:
            raise ScoringError(f"{family} takes one model path, got {len(paths)}")
        return ParsedSpec(family, paths)
    if rest:
        raise ScoringError(f"{family} takes no model path (got {rest!r})")
    return ParsedSpec(family, ())


def default_name(spec: str, options: ScoringOptions) -> str:
    """A readable scorer name: family + model folder name (+ judge mode / aggregation)."""
    parsed = parse_spec(spec)
    if not parsed.paths:
        return parsed.family
    base = "+".join(Path(p.rstrip("/")).name or p for p in parsed.paths)
    name = f"{parsed.family}:{base}"
    if parsed.family == "judge":
        name += f":{options.judge_mode}"
    elif parsed.family in ("lm-logprob", "dpo"):
        name += f":{options.aggregation}"
    return name


def build_scorer(spec: str, options: ScoringOptions | None = None) -> BaseScorer:
    """The scorer for SPEC. Nothing heavy is loaded until the first batch."""
    options = options or ScoringOptions()
    parsed = parse_spec(spec)
    if options.aggregation not in AGGREGATIONS:
        raise ScoringError(f"--aggregation must be one of {', '.join(AGGREGATIONS)}, got {options.aggregation!r}")
    if options.judge_mode not in JUDGE_MODES:
        raise ScoringError(f"--judge-mode must be one of {', '.join(JUDGE_MODES)}, got {options.judge_mode!r}")
    if options.batch_size < 1:
        raise ScoringError("--batch-size must be at least 1")
    if options.max_length < 8:
        raise ScoringError("--max-length must be at least 8 tokens")
    if options.endpoint and parsed.family != "judge":
        raise ScoringError("--endpoint only applies to judge scorers")
    if parsed.family in MODEL_FAMILIES and not options.endpoint:
        from rmgap_annot.scoring.hf import check_model_path

        for path in parsed.paths:  # fail before a scorer row is created for a typo
            check_model_path(path)
    if parsed.family == "scalar":
        from rmgap_annot.scoring.scalar import ScalarScorer

        return ScalarScorer(parsed.paths[0], options)
    if parsed.family == "lm-logprob":
        from rmgap_annot.scoring.lm_logprob import LogprobScorer

        return LogprobScorer(parsed.paths[0], options)
    if parsed.family == "dpo":
        from rmgap_annot.scoring.dpo import DpoScorer

        return DpoScorer(parsed.paths[0], parsed.paths[1], options)
    if parsed.family == "judge":
        if options.endpoint:
            from rmgap_annot.scoring.judge import EndpointJudge

            return EndpointJudge(parsed.paths[0], options)
        from rmgap_annot.scoring.judge import LocalJudge

        return LocalJudge(parsed.paths[0], options)
    from rmgap_annot.scoring import baselines

    return {"length": baselines.LengthScorer, "random": baselines.RandomScorer, "embedding": baselines.EmbeddingScorer}[
        parsed.family
    ](options)


def aggregate(logprobs: Sequence[float], mode: str) -> float:
    """RMGAP's aggregation of per-token log-probabilities (endorm / dpo_implicit)."""
    import math

    values = [float(v) for v in logprobs]
    if not values:
        return float("nan")
    if mode == "mean":
        return math.fsum(values) / len(values)
    if mode == "sum":
        return math.fsum(values)
    if mode == "discounted_sum":
        return math.fsum(v * max(DISCOUNT_GAMMA**t, DISCOUNT_CLIP_MIN) for t, v in enumerate(values))
    raise ScoringError(f"unknown aggregation {mode!r}")
