"""LM judges, as RMGAP prompts them (verifier, pointwise, listwise), and a pairwise judge.

- ``verifier``: the mean log-probability of the answer "YES" (its tokens
  after the generation prompt, end-of-turn included, as RMGAP scores it) to
  "is the response good?".
- ``pointwise``: a 1-10 score, greedy; the first integer is clamped to
  1..10; unparseable output scores 5 and is counted.
- ``listwise``: the item's N responses (2 to 8; RMGAP's four) shown as
  A, B, .. in a seeded permutation, the judge answers a ranking like
  ``B>A>D>C``; ranks map to N..1; unparseable output falls back to the shown
  order (A>B>C>D, RMGAP's default) and is counted. RMGAP's prompt is kept
  word for word at N = 4; other sizes name their own letters. The
  permutation is seeded per item (``--seed`` and the item's record/group/
  prompt), not by position in the run, so a resumed or partial run shows
  each item exactly as a full run would.
- ``pairwise``: two responses side by side, "[[A]]", "[[B]]" or "[[C]]" (a
  tie), as pairwise LM judges (MT-Bench, RewardBench's generative judges)
  answer. Every ordered pair of the item's responses is asked, so each pair
  is seen in both orders and a judge's position bias cancels instead of
  deciding; a response's score is its wins (a tie or an unparseable answer
  gives each side 1/2, and the latter is counted). A pair costs 2 requests,
  RMGAP's four responses 12: N x (N - 1) per item.

Locally through transformers, or against any OpenAI-compatible server with
``--endpoint URL`` (vLLM, SGLang): PATH is then the served model's name.
Through an endpoint, ``verifier`` reads the first generated token's
``top_logprobs`` (20); when "YES" is not among them the lowest listed
log-probability is used (an upper bound) and the item is counted unparseable.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from rmgap_annot.scoring import BaseScorer, ItemInput, ScoringError, ScoringOptions, Unit
from rmgap_annot.scoring import hf
from rmgap_annot.scoring.lm_logprob import LogprobScorer

SYSTEM = "You are an AI evaluator. Your role is to assess AI-generated text for its quality and adherence to instructions."
POINTWISE_DEFAULT = 5.0
ALPHABET = "ABCDEFGH"  # the most candidates an item has
LETTERS = tuple(ALPHABET[:4])  # RMGAP's four


def letters_for(n: int) -> str:
    """The letters of an N-response ranking."""
    if not 2 <= n <= len(ALPHABET):  # noqa: PLR2004
        raise ScoringError(f"the listwise judge ranks 2 to {len(ALPHABET)} responses, not {n}")
    return ALPHABET[:n]


def verifier_prompt(query: str, response: str) -> str:
    return (
        "You need to determine if the 'Response' is a good response to the 'Query'. "
        "A 'good' response MUST satisfy the following conditions:\n\n"
        "1. **Relevance to Query**: The answer must directly and comprehensively address the user's query "
        "without any irrelevant information.\n"
        "2. **Factuality and Helpfulness**: The information in the answer should be accurate and useful.\n\n"
        "Please carefully review the following materials.\n\n"
        f"### Query\n{query}\n\n### Response\n{response}\n\n"
        "Based on your evaluation, is the answer a good response? Answer with only 'YES' or 'NO'."
    )


def pointwise_prompt(query: str, response: str) -> str:
    return (
        "You need to evaluate the 'Response' in response to the 'Query'. "
        "Your evaluation should be a score from 1 to 10.\n\n"
        "Evaluation Criteria:\n"
        "1. Relevance to Query: Does the answer directly and comprehensively address the user's query?\n"
        "2. Factuality and Helpfulness: Is the information accurate and useful?\n\n"
        "Please review the following:\n\n"
        f"### Query\n{query}\n\n### Response\n{response}\n\n"
        "Based on your assessment, provide a single integer score from 1 to 10.\n\n"
        "Scoring Guide:\n1-2: Very Poor. Fails on most criteria.\n3-4: Poor. Significant issues in multiple areas.\n"
        "5-6: Average. Meets basic requirements but has clear flaws.\n7-8: Good. Solid response with minor issues.\n"
        "9-10: Excellent. A nearly perfect response that excels in all criteria.\n\n"
        "Provide only the numeric score.\n\n"
        "IMPORTANT: Output only a single integer between 1 and 10. Do not add any extra text."
    )


def listwise_prompt(query: str, responses: Sequence[str]) -> str:
    letters = letters_for(len(responses))
    labeled = [f"{letters[i]}) {text}" for i, text in enumerate(responses)]
    example = ">".join(letters)
    return (
        "You need to evaluate and rank the 'Responses' for the given 'Query'.\n\n"
        "Evaluation Criteria:\n"
        "1. Relevance to Query: Does the answer directly and comprehensively address the user's query?\n"
        "2. Factuality and Helpfulness: Is the information accurate and useful?\n\n"
        "Please review the following:\n\n"
        f"### Query\n{query}\n\n### Responses\n" + "\n\n".join(labeled) + "\n\n"
        f"Output only the ranking from best to worst as a permutation of letters {example}, "
        "with '>' separators and no extra text.\n\n"
        f"IMPORTANT: Respond EXACTLY with a single permutation like {example}. "
        "Use uppercase letters and '>' separators. No spaces. No extra text."
    )


def pairwise_prompt(query: str, response_a: str, response_b: str) -> str:
    return (
        "You need to compare two responses to the 'Query' and decide which one is better.\n\n"
        "Evaluation Criteria:\n"
        "1. Relevance to Query: Does the answer directly and comprehensively address the user's query?\n"
        "2. Factuality and Helpfulness: Is the information accurate and useful?\n\n"
        "Do not let the order in which the responses are shown or their length decide.\n\n"
        f"### Query\n{query}\n\n### Response A\n{response_a}\n\n### Response B\n{response_b}\n\n"
        "Output only your verdict: [[A]] if Response A is better, [[B]] if Response B is better, "
        "[[C]] if they are equally good."
    )


def parse_pairwise(text: str) -> str | None:
    """"A", "B" or "tie" from a pairwise judge's answer (its last [[A]]/[[B]]/[[C]], or a bare letter); None if none."""
    upper = (text or "").upper()
    marks = re.findall(r"\[\[\s*([ABC])\s*\]\]", upper)
    if marks:
        return {"A": "A", "B": "B", "C": "tie"}[marks[-1]]
    bare = re.fullmatch(r"\W*(?:RESPONSE\s+)?([AB])\W*", upper)
    if bare:
        return bare.group(1)
    return "tie" if re.fullmatch(r"\W*(?:TIE|C)\W*", upper) else None


def pairwise_scores(verdict: str | None) -> list[float]:
    """[A's win, B's win] for one comparison: a tie, or no verdict, is half a win each."""
    return {"A": [1.0, 0.0], "B": [0.0, 1.0]}.get(verdict or "", [0.5, 0.5])


def parse_pointwise(text: str) -> float | None:
    match = re.search(r"\d+", text or "")
    return float(max(1, min(10, int(match.group(0))))) if match else None


def parse_ranking(text: str, n: int = 4) -> list[str] | None:
    """The first ranking of all ``n`` letters in the judge's answer: ``B>A>D>C``, else n distinct letters in a row."""
    if not text:
        return None
    text = text.upper()
    letter = f"([{letters_for(n)}])"
    m = re.search(r"\b" + r"\s*>\s*".join([letter] * n) + r"\b", text)
    if m and len(set(m.groups())) == n:
        return list(m.groups())
    tokens = re.findall(f"[{letters_for(n)}]", text)
    for i in range(len(tokens) - n + 1):
        if len(set(tokens[i : i + n])) == n:
            return tokens[i : i + n]
    return None


def permutation_for(item: ItemInput, seed: int) -> list[int]:
    order = list(range(len(item.responses)))
    random.Random(f"{seed}:{item.uid}").shuffle(order)
    return order


def ranking_scores(order: Sequence[str], permutation: Sequence[int]) -> list[float]:
    """Scores in the item's response order from a letter ranking of the shown order."""
    by_letter = {letter: float(len(order) - pos) for pos, letter in enumerate(order)}
    scores = [0.0] * len(permutation)
    for slot, original in enumerate(permutation):
        scores[original] = by_letter[ALPHABET[slot]]
    return scores


def query_of(item: ItemInput) -> str:
    """The judge's 'Query': the prompt, or for a conversation every turn before the response, as a transcript.

    A judge shown only the last user turn of a conversation would grade an
    answer without the question it answers ("And in Python?").
    """
    if not item.context or len(item.context) == 1:
        return item.prompt
    return "\n\n".join(f"[{role}]\n{content}" for role, content in item.context)


def _verifier_messages(item: ItemInput, response: str):  # noqa: ANN202
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": verifier_prompt(query_of(item), response)}]
    return prompt, prompt + [{"role": "assistant", "content": "YES"}]


def _pointwise_messages(item: ItemInput, response: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": pointwise_prompt(query_of(item), response)}]


def _listwise_messages(item: ItemInput, seed: int) -> tuple[list[dict[str, str]], list[int]]:
    perm = permutation_for(item, seed)
    shown = [item.responses[i][1] for i in perm]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": listwise_prompt(query_of(item), shown)}], perm


def _message_units(items: Sequence[ItemInput], mode: str, seed: int) -> list[list[Unit]]:
    """Units holding chat messages (the endpoint's and generation's input)."""
    out = []
    if mode == "listwise":
        for size in sorted({len(item.responses) for item in items}):
            letters_for(size)  # before any work: an item the judge cannot rank
    for item in items:
        if mode == "pairwise":
            out.append(_pairwise_units(item))
            continue
        if mode == "listwise":
            msgs, perm = _listwise_messages(item, seed)
            key = hashlib.sha256(json.dumps([msgs, perm]).encode()).digest()
            out.append([Unit(key, sum(len(m["content"]) for m in msgs), (msgs, perm), tuple(k for k, _ in item.responses))])
            continue
        units = []
        for rkey, text in item.responses:
            msgs = _pointwise_messages(item, text) if mode == "pointwise" else _verifier_messages(item, text)[0]
            key = hashlib.sha256(json.dumps(msgs).encode()).digest()
            units.append(Unit(key, sum(len(m["content"]) for m in msgs), (msgs, None), (rkey,)))
        out.append(units)
    return out


def _pairwise_units(item: ItemInput) -> list[Unit]:
    """One unit per ordered pair of responses: (A, B) and (B, A) both, so the judge sees each pair both ways."""
    units = []
    query = query_of(item)
    for i, j in itertools.permutations(range(len(item.responses)), 2):
        (key_a, text_a), (key_b, text_b) = item.responses[i], item.responses[j]
        msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": pairwise_prompt(query, text_a, text_b)}]
        key = hashlib.sha256(json.dumps(msgs).encode()).digest()
        units.append(Unit(key, sum(len(m["content"]) for m in msgs), (msgs, None), (key_a, key_b)))
    return units


class LocalJudge(LogprobScorer):
    """A judge run through transformers on this machine."""

    family = "judge"
    messages = staticmethod(_verifier_messages)

    def fingerprint_parts(self) -> dict[str, Any]:
        o = self.options
        parts = {"model": hf.model_files_hash(self.path), "dtype": hf.resolved_dtype_name(o), "max_length": o.max_length, "mode": o.judge_mode}
        if o.judge_mode != "verifier":
            parts["max_new_tokens"] = o.max_new_tokens
        if o.judge_mode == "listwise":
            parts["seed"] = o.seed
        return parts

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        if self.options.judge_mode == "verifier":
            return super().units(items)
        out = _message_units(items, self.options.judge_mode, self.options.seed)
        texts = [hf.render_chat(self.tokenizer, u.payload[0], add_generation_prompt=True) for units in out for u in units]
        ids_all = hf.encode(self.tokenizer, texts)
        k = 0
        for units in out:
            for u in units:
                ids, _, truncated = hf.left_truncate(ids_all[k], 0, self.options.max_length)
                u.payload = (ids, u.payload[1])
                u.length, u.truncated = len(ids), truncated
                k += 1
        return out

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        mode = self.options.judge_mode
        if mode == "verifier":
            per_token = self.lm.logprobs(units)
            self.n_calls += 1
            return [[sum(lp) / len(lp) if lp else float("nan")] for lp in per_token]
        texts = self._generate([u.payload[0] for u in units])
        self.n_calls += 1
        return [self._parse(mode, text, u) for text, u in zip(texts, units)]

    def _parse(self, mode: str, text: str, unit: Unit) -> list[float]:
        if mode == "pairwise":
            verdict = parse_pairwise(text)
            if verdict is None:
                self.n_unparseable += 1
            return pairwise_scores(verdict)
        if mode == "pointwise":
            value = parse_pointwise(text)
            if value is None:
                self.n_unparseable += 1
                value = POINTWISE_DEFAULT
            return [value]
        n = len(unit.payload[1])
        order = parse_ranking(text, n)
        if order is None:
            self.n_unparseable += 1
            order = list(letters_for(n))
        return ranking_scores(order, unit.payload[1])

    def _generate(self, prompts: Sequence[Sequence[int]]) -> list[str]:
        """Greedy generation with left padding (generation appends on the right)."""
        import torch

        lm = self.lm
        lm.load()
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), lm.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = hf.as_tensor(p)
            mask[i, width - len(p) :] = 1
        with torch.inference_mode():
            out = lm.model.generate(
                input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), max_new_tokens=self.options.max_new_tokens,
                do_sample=False, pad_token_id=lm.pad_id,
            )
        return self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)


class EndpointJudge(BaseScorer):
    """A judge behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    family = "judge"

    def __init__(self, model: str, options: ScoringOptions):
        super().__init__(options)
        self.model = model
        url = (options.endpoint or "").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ScoringError(f"--endpoint must be an http(s) URL, got {options.endpoint!r}")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self._lock = threading.Lock()  # requests run in a thread pool; counters are shared

    def _unparseable(self) -> None:
        with self._lock:
            self.n_unparseable += 1

    def fingerprint_parts(self) -> dict[str, Any]:
        o = self.options
        # The server's weights cannot be hashed from here: the served model
        # name and the URL stand in for them.
        return {"endpoint": self.url, "model": self.model, "mode": o.judge_mode, "seed": o.seed, "max_new_tokens": o.max_new_tokens}

    def units(self, items: Sequence[ItemInput]) -> list[list[Unit]]:
        return _message_units(items, self.options.judge_mode, self.options.seed)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        data = json.dumps(body).encode()
        last: Exception | None = None
        for attempt in range(4):
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=600) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code < 500 and exc.code != 429:
                    detail = exc.read().decode(errors="replace")[:500]
                    raise ScoringError(f"{self.url} answered HTTP {exc.code}: {detail}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
            time.sleep(0.5 * 2**attempt)
        raise ScoringError(f"{self.url} failed after 4 attempts: {last}")

    def _one(self, unit: Unit) -> list[float]:
        msgs, perm = unit.payload
        mode = self.options.judge_mode
        body: dict[str, Any] = {"model": self.model, "messages": msgs, "temperature": 0.0, "seed": self.options.seed}
        if mode == "verifier":
            body.update(max_tokens=1, logprobs=True, top_logprobs=20)
            reply = self._post(body)
            try:
                top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            except (KeyError, IndexError, TypeError) as exc:
                raise ScoringError(f"{self.url} returned no logprobs; the verifier needs logprobs=true support") from exc
            for entry in top:
                if entry["token"].strip() == "YES":
                    return [float(entry["logprob"])]
            self._unparseable()
            return [min(float(e["logprob"]) for e in top) if top else float("nan")]
        body["max_tokens"] = self.options.max_new_tokens
        reply = self._post(body)
        text = (reply.get("choices") or [{}])[0].get("message", {}).get("content") or ""
        if mode == "pairwise":
            verdict = parse_pairwise(text)
            if verdict is None:
                self._unparseable()
            return pairwise_scores(verdict)
        if mode == "pointwise":
            value = parse_pointwise(text)
            if value is None:
                self._unparseable()
                value = POINTWISE_DEFAULT
            return [value]
        order = parse_ranking(text, len(perm))
        if order is None:
            self._unparseable()
            order = list(letters_for(len(perm)))
        return ranking_scores(order, perm)

    def score_batch(self, units: Sequence[Unit]) -> list[list[float]]:
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            results = list(pool.map(self._one, units))
        self.n_calls += len(units)
        return results
