"""Tiny local models for tests and the speed benchmark (never the hub).

A byte-level BPE tokenizer trained on RMGAP-shaped text, with a chat
template and EOS used as pad (the common, wrong-for-scoring setup the
runner must correct), plus randomly initialised Llama models of any size.
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<|bos|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tokenizer(path: str | Path, *, vocab_size: int = 400, corpus: list[str] | None = None):  # noqa: ANN201
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from rmgap_annot.synthetic import _WORDS

    corpus = corpus or [" ".join(_WORDS)] * 4 + ["YES NO 1 2 3 4 5 6 7 8 9 10 A>B>C>D User Assistant response"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|end|>", pad_token="<|end|>",
        additional_special_tokens=SPECIALS[2:],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(path))
    return fast


def build_llama(path: str | Path, *, kind: str, tokenizer, hidden: int = 32, layers: int = 2, num_labels: int = 1, seed: int = 0):  # noqa: ANN001, ANN201
    """A random Llama (``kind``: "seq-cls" or "causal") saved next to the tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192, num_labels=num_labels,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    cls = LlamaForSequenceClassification if kind == "seq-cls" else LlamaForCausalLM
    model = cls(config).eval()
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return model
