"""What the transformers-based families share: devices, dtypes, tokenizers,
chat rendering, padding, truncation, fingerprints and response log-probs.

Choices made once here so every family agrees:
- fp32 on CPU by default (bf16 matmuls on most CPUs are far slower), bf16 on GPU.
- An explicit pad id distinct from EOS, also written into
  ``model.config.pad_token_id``: a sequence-classification head pools the
  last non-pad token, so a pad equal to EOS would pool the wrong position
  for every sequence ending in EOS.
- Right padding (positions stay 0..n-1 without position ids, so a batched
  score equals the unbatched one) and left truncation (the end of a
  conversation, where the response and its end-of-turn token sit, is kept).
- When a tokenizer has no chat template, the fallback renders
  ``"User: {prompt}\\n\\nAssistant: {response}"`` followed by EOS.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

from rmgap_annot.scoring import ScoringError, ScoringOptions

FALLBACK_USER = "User: {content}\n\n"
FALLBACK_SYSTEM = "System: {content}\n\n"
FALLBACK_ASSISTANT_PREFIX = "Assistant: "
SMALL_FILE = 16 * 1024 * 1024
EDGE_BYTES = 1024 * 1024


def model_files_hash(path: str) -> str:
    """Hash of a model folder (or the hub id when it is not a folder).

    Small files (configs, tokenizers) are hashed whole; weight files by
    name, size and their first and last MiB: re-hashing tens of GB on every
    run would cost more than scoring, and a changed checkpoint changes these.
    """
    p = Path(path)
    h = hashlib.sha256()
    if not p.exists():
        h.update(f"hub:{path}".encode())
        return h.hexdigest()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(p) if p.is_dir() else f.name}:{size}\n".encode())
        with open(f, "rb") as fh:
            if size <= SMALL_FILE:
                h.update(fh.read())
            else:
                h.update(fh.read(EDGE_BYTES))
                fh.seek(size - EDGE_BYTES)
                h.update(fh.read(EDGE_BYTES))
    return h.hexdigest()


def check_model_path(path: str) -> None:
    """A clear error before transformers tries (and fails) to reach the hub."""
    if Path(path).exists():
        return
    looks_local = path.startswith(("/", ".", "~")) or os.sep in path and path.count("/") != 1
    if looks_local:
        raise ScoringError(f"model folder {path!r} does not exist")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ScoringError(f"{path!r} is not a local folder and HF_HUB_OFFLINE=1 forbids the hub")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ScoringError("--device cuda was asked for but torch sees no CUDA device")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ScoringError(f"--device must be auto, cpu or cuda, got {device!r}")
    return device


def resolved_dtype_name(options: ScoringOptions) -> str:
    """The dtype a run will use; part of the fingerprint (bf16 and fp32 differ)."""
    if options.dtype != "auto":
        if options.dtype not in ("float32", "bfloat16", "float16"):
            raise ScoringError(f"--dtype must be auto, float32, bfloat16 or float16, got {options.dtype!r}")
        return options.dtype
    import torch

    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return "bfloat16" if device.startswith("cuda") else "float32"


def torch_dtype(name: str):  # noqa: ANN201
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_tokenizer(path: str, options: ScoringOptions):  # noqa: ANN201
    from transformers import AutoTokenizer

    check_model_path(path)
    return AutoTokenizer.from_pretrained(path, trust_remote_code=options.trust_remote_code)


def eos_ids(tokenizer, model_config=None) -> set[int]:  # noqa: ANN001
    ids: set[int] = set()
    for source in (tokenizer, getattr(model_config, "generation_config", None), model_config):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def choose_pad_id(tokenizer, model_config=None) -> int:  # noqa: ANN001
    """The tokenizer's pad if it is not an EOS, else its unk, else the lowest
    id that is neither EOS nor BOS (an id that exists in the embedding table,
    so no resize is needed)."""
    eos = eos_ids(tokenizer, model_config)
    for candidate in (tokenizer.pad_token_id, tokenizer.unk_token_id):
        if candidate is not None and candidate not in eos:
            return int(candidate)
    avoid = eos | {tokenizer.bos_token_id}
    for candidate in range(len(tokenizer)):
        if candidate not in avoid:
            return candidate
    raise ScoringError("the tokenizer has no id usable as a pad distinct from EOS")


def render_chat(tokenizer, messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:  # noqa: ANN001
    """The model's chat template, or the documented fallback."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    out = ""
    for m in messages:
        if m["role"] == "assistant":
            out += FALLBACK_ASSISTANT_PREFIX + m["content"] + (tokenizer.eos_token or "")
        elif m["role"] == "system":
            out += FALLBACK_SYSTEM.format(content=m["content"])
        else:
            out += FALLBACK_USER.format(content=m["content"])
    if add_generation_prompt:
        out += FALLBACK_ASSISTANT_PREFIX
    return out


def encode(tokenizer, texts: Sequence[str], chunk: int = 1024) -> list:  # noqa: ANN001
    """Token ids without added specials (the templates already hold BOS etc.).

    Returned as compact int32 arrays, tokenized in chunks: the full
    benchmark is ~52k sequences, and Python int lists would cost ~9x the
    memory of the ids themselves.
    """
    from array import array

    out: list = []
    for start in range(0, len(texts), chunk):
        out.extend(array("i", ids) for ids in tokenizer(list(texts[start : start + chunk]), add_special_tokens=False)["input_ids"])
    return out


def load_model(path: str, options: ScoringOptions, kind: str):  # noqa: ANN201
    """A model in eval mode on the chosen device, in the resolved dtype."""
    import transformers

    check_model_path(path)
    cls = {"seq-cls": transformers.AutoModelForSequenceClassification, "causal": transformers.AutoModelForCausalLM}[kind]
    device = resolve_device(options.device)
    model = cls.from_pretrained(
        path, dtype=torch_dtype(resolved_dtype_name(options)), trust_remote_code=options.trust_remote_code
    )
    return model.to(device).eval(), device


def as_tensor(ids):  # noqa: ANN001, ANN201
    """A long tensor from an int32 array (zero-copy read) or a list."""
    import torch
    from array import array

    if isinstance(ids, array) and ids.typecode == "i" and len(ids):
        return torch.frombuffer(ids, dtype=torch.int32).long()
    return torch.tensor(list(ids), dtype=torch.long)


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, device: str):  # noqa: ANN201
    """Right-padded ids and attention mask, padded to this batch's longest only."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = as_tensor(s)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def left_truncate(ids, start: int, max_length: int):  # noqa: ANN001, ANN201
    """Keep the last ``max_length`` tokens; shift the response start with them.

    The start never drops below 1: the first kept token has no context to be
    predicted from, so it cannot be scored.
    """
    if len(ids) <= max_length:
        return ids, start, False
    cut = len(ids) - max_length
    return ids[cut:], max(start - cut, 1), True


def response_token_logprobs(model, sequences: Sequence[Sequence[int]], starts: Sequence[int], pad_id: int, device: str) -> list[list[float]]:  # noqa: ANN001
    """log p(token_t | tokens_<t) for t >= start, per sequence, in fp32.

    Only the response positions go through the output head: the full
    [batch, length, vocab] logits of a 150k-vocab model would not fit.
    """
    import torch

    ids, mask = pad_batch(sequences, pad_id, device)
    base = getattr(model, model.base_model_prefix, None)
    head = model.get_output_embeddings()
    rows, cols = [], []
    for i, (seq, start) in enumerate(zip(sequences, starts)):
        for t in range(max(start, 1), len(seq)):
            rows.append(i)
            cols.append(t)
    if not rows:
        return [[] for _ in sequences]
    rows_t = torch.tensor(rows, device=device)
    cols_t = torch.tensor(cols, device=device)
    if base is not None and head is not None and base is not model:
        hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = head(hidden[rows_t, cols_t - 1]).float()
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
    else:
        logits = model(input_ids=ids, attention_mask=mask).logits[rows_t, cols_t - 1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[rows_t, cols_t].unsqueeze(-1)).squeeze(-1).cpu().tolist()
    out: list[list[float]] = [[] for _ in sequences]
    for r, v in zip(rows, logp):
        out[r].append(v)
    return out


def ids_digest(ids: Sequence[int]) -> bytes:
    """A compact dedupe key: 52k token tuples would cost more memory than the ids."""
    from array import array

    data = ids if isinstance(ids, array) and ids.typecode == "i" else array("i", ids)
    return hashlib.blake2b(data.tobytes(), digest_size=16).digest()


def chat_units(tokenizer, items, messages_for, *, max_length: int, with_prompt_start: bool):  # noqa: ANN001, ANN201
    """Units for per-response scorers: one templated sequence per response.

    ``messages_for(item, response_text)`` -> (prompt messages, full messages).
    The payload is (ids, response start); the start is the token length of
    the prompt rendered with its generation prompt, as RMGAP computes it.
    """
    from rmgap_annot.scoring import Unit

    fulls, prompts, owners = [], [], []
    for item in items:
        for key, text in item.responses:
            prompt_msgs, full_msgs = messages_for(item, text)
            fulls.append(render_chat(tokenizer, full_msgs, add_generation_prompt=False))
            if with_prompt_start:
                prompts.append(render_chat(tokenizer, prompt_msgs, add_generation_prompt=True))
            owners.append(key)
    full_ids = encode(tokenizer, fulls)
    starts = [len(p) for p in encode(tokenizer, prompts)] if with_prompt_start else [0] * len(full_ids)
    out: list[list[Any]] = []
    k = 0
    for item in items:
        units = []
        for _ in item.responses:
            ids, start, truncated = left_truncate(full_ids[k], starts[k], max_length)
            key = (ids_digest(ids), start)
            units.append(Unit(key=key, length=len(ids), payload=(ids, start), response_keys=(owners[k],), truncated=truncated))
            k += 1
        out.append(units)
    return out
