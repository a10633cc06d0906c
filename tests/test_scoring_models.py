"""Each model family against a hand-written forward pass on the same text.

Tiny random Llamas and a locally trained tokenizer (built once per session)
stand in for real reward models: what is tested is the plumbing (templates,
padding, truncation, response positions, aggregation, batching, dedupe,
resume), which is the same at any size.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import pytest
import torch
from sqlalchemy import func, select

from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import session_scope
from rmgap_annot.models import Score, Scorer
from rmgap_annot.scoring import ScoringError, ScoringOptions, aggregate, build_scorer
from rmgap_annot.scoring import hf
from rmgap_annot.scoring.runner import load_inputs, run_scoring
from rmgap_annot.scoring.tiny import build_llama, build_tokenizer
from rmgap_annot.synthetic import make_records, write_jsonl

OPTS = ScoringOptions(device="cpu", batch_size=4, max_length=4096)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-models")
    tok = build_tokenizer(root / "tok")
    paths = {}
    for name, kind, kw in (("cls", "seq-cls", {"num_labels": 2}), ("lm", "causal", {}), ("ref", "causal", {"seed": 1})):
        build_llama(root / name, kind=kind, tokenizer=tok, **kw)
        paths[name] = str(root / name)
    return tok, paths


@pytest.fixture
def bench(engine, tmp_path):
    """One record per domain: 48 items, 16 distinct responses."""
    recs = make_records({"Chat": 1, "Writing": 1, "Reasoning": 1, "Safety": 1}, seed=3, long_text=False)
    return import_benchmark(engine=engine, path=write_jsonl(tmp_path / "b.jsonl", recs), name="tiny").benchmark_id


def stored(engine, name):
    with session_scope(engine) as session:
        sid = session.execute(select(Scorer.id).where(Scorer.name == name)).scalar_one()
        return {(i, k): v for i, k, v in session.execute(select(Score.item_id, Score.response_key, Score.value).where(Score.scorer_id == sid))}


def all_inputs(engine, bench):
    from rmgap_annot.scoring.runner import item_ids

    return load_inputs(engine=engine, ids=item_ids(engine=engine, benchmark_id=bench))


def chat(tok, prompt, response=None, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    if response is None:
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return tok.apply_chat_template(msgs + [{"role": "assistant", "content": response}], tokenize=False)


def ids_of(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def direct_logprobs(model, ids, start):
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    return [lp[t - 1, ids[t]].item() for t in range(max(start, 1), len(ids))]


def test_scalar_matches_direct_forward_and_output_index(engine, bench, tiny):
    from transformers import AutoModelForSequenceClassification

    tok, paths = tiny
    run_scoring(engine=engine, benchmark_id=bench, spec=f"scalar:{paths['cls']}", name="s1", options=dataclasses.replace(OPTS, output_index=1))
    got = stored(engine, "s1")
    model = AutoModelForSequenceClassification.from_pretrained(paths["cls"]).eval()
    assert len(got) == 48 * 4
    for item in all_inputs(engine, bench)[:12]:
        for key, text in item.responses:
            with torch.inference_mode():
                want = model(input_ids=torch.tensor([ids_of(tok, chat(tok, item.prompt, text))])).logits[0, 1].item()
            assert got[(item.item_id, key)] == pytest.approx(want, abs=1e-5)
    with pytest.raises(ScoringError, match="output-index"):
        run_scoring(engine=engine, benchmark_id=bench, spec=f"scalar:{paths['cls']}", name="s9", options=dataclasses.replace(OPTS, output_index=5))


def test_pad_is_not_eos(tiny):
    tok, _ = tiny
    assert tok.pad_token_id == tok.eos_token_id  # the tokenizer's own setup is the risky one
    assert hf.choose_pad_id(tok) not in hf.eos_ids(tok)


def test_scores_do_not_depend_on_batch_size_or_order(engine, bench, tiny):
    _, paths = tiny
    items = all_inputs(engine, bench)[:12]
    for spec in (f"scalar:{paths['cls']}", f"lm-logprob:{paths['lm']}"):
        scorer = build_scorer(spec, OPTS)
        units = [u for per in scorer.units(items) for u in per]
        one_batch = {u.key: v for u, v in zip(units, scorer.score_batch(units))}
        shuffled = units[:]
        random.Random(0).shuffle(shuffled)
        for start in range(0, len(shuffled), 3):
            chunk = shuffled[start : start + 3]
            for u, v in zip(chunk, scorer.score_batch(chunk)):
                assert v[0] == pytest.approx(one_batch[u.key][0], abs=1e-5)


def test_lm_logprob_matches_direct_forward(engine, bench, tiny):
    from transformers import AutoModelForCausalLM

    tok, paths = tiny
    model = AutoModelForCausalLM.from_pretrained(paths["lm"]).eval()
    items = all_inputs(engine, bench)[:6]
    for mode in ("mean", "sum", "discounted_sum"):
        run_scoring(engine=engine, benchmark_id=bench, spec=f"lm-logprob:{paths['lm']}", name=f"lm-{mode}",
                    options=dataclasses.replace(OPTS, aggregation=mode, batch_size=5))
        got = stored(engine, f"lm-{mode}")
        for item in items:
            for key, text in item.responses:
                lp = direct_logprobs(model, ids_of(tok, chat(tok, item.prompt, text)), len(ids_of(tok, chat(tok, item.prompt))))
                if mode == "mean":
                    want = sum(lp) / len(lp)
                elif mode == "sum":
                    want = sum(lp)
                else:
                    want = sum(v * max(0.93**t, 0.0) for t, v in enumerate(lp))
                assert got[(item.item_id, key)] == pytest.approx(want, abs=1e-4)


def test_aggregate_hand_values():
    assert aggregate([-1.0, -2.0], "mean") == -1.5
    assert aggregate([-1.0, -2.0], "sum") == -3.0
    assert aggregate([-1.0, -2.0, -4.0], "discounted_sum") == pytest.approx(-1.0 - 2.0 * 0.93 - 4.0 * 0.93**2)
    assert math.isnan(aggregate([], "mean"))


def test_dpo_is_policy_minus_reference(engine, bench, tiny):
    from transformers import AutoModelForCausalLM

    tok, paths = tiny
    policy = AutoModelForCausalLM.from_pretrained(paths["lm"]).eval()
    ref = AutoModelForCausalLM.from_pretrained(paths["ref"]).eval()
    run_scoring(engine=engine, benchmark_id=bench, spec=f"dpo:{paths['lm']},{paths['ref']}", name="dpo",
                options=dataclasses.replace(OPTS, aggregation="sum"))
    got = stored(engine, "dpo")
    for item in all_inputs(engine, bench)[:4]:
        for key, text in item.responses:
            ids = ids_of(tok, chat(tok, item.prompt, text))
            start = len(ids_of(tok, chat(tok, item.prompt)))
            want = sum(direct_logprobs(policy, ids, start)) - sum(direct_logprobs(ref, ids, start))
            assert got[(item.item_id, key)] == pytest.approx(want, abs=1e-4)


def test_judge_verifier_is_mean_logprob_of_yes(engine, bench, tiny):
    from transformers import AutoModelForCausalLM

    from rmgap_annot.scoring.judge import SYSTEM, verifier_prompt

    tok, paths = tiny
    model = AutoModelForCausalLM.from_pretrained(paths["lm"]).eval()
    run_scoring(engine=engine, benchmark_id=bench, spec=f"judge:{paths['lm']}", name="gv", options=OPTS)
    got = stored(engine, "gv")
    for item in all_inputs(engine, bench)[:3]:
        for key, text in item.responses:
            user = verifier_prompt(item.prompt, text)
            ids = ids_of(tok, chat(tok, user, "YES", system=SYSTEM))
            lp = direct_logprobs(model, ids, len(ids_of(tok, chat(tok, user, system=SYSTEM))))
            assert got[(item.item_id, key)] == pytest.approx(sum(lp) / len(lp), abs=1e-5)


def test_generative_judges_parse_and_count(engine, bench, tiny):
    _, paths = tiny
    items = all_inputs(engine, bench)[:2]
    point = build_scorer(f"judge:{paths['lm']}", dataclasses.replace(OPTS, judge_mode="pointwise", max_new_tokens=3))
    units = [u for per in point.units(items) for u in per]
    values = [v[0] for v in point.score_batch(units)]
    assert all(1.0 <= v <= 10.0 for v in values)
    assert point.n_unparseable == sum(1 for v in values if v == 5.0) or point.n_unparseable <= len(values)
    listwise = build_scorer(f"judge:{paths['lm']}", dataclasses.replace(OPTS, judge_mode="listwise", max_new_tokens=3))
    per = listwise.units(items)
    assert [len(u) for u in per] == [1, 1]
    for vals in listwise.score_batch([u[0] for u in per]):
        assert sorted(vals) == [1.0, 2.0, 3.0, 4.0]
    # A pair and a seven-candidate item through the real model: each gets a full ranking of its own size.
    from rmgap_annot.scoring import ItemInput

    pair = ItemInput(9001, "p/0/0", "Hi?", (("chosen", "Hello!"), ("rejected", "Go away.")), (("user", "Hi?"),))
    seven = ItemInput(9002, "b/0/0", "Pick?", tuple((f"loser_{i}", f"answer {i}") for i in range(7)), (("user", "Pick?"),))
    before = listwise.n_unparseable
    per = listwise.units([pair, seven])
    got = listwise.score_batch([u[0] for u in per])
    assert sorted(got[0]) == [1.0, 2.0] and sorted(got[1]) == [float(r) for r in range(1, 8)]
    assert listwise.n_unparseable - before <= 2  # a tiny random model rarely answers a ranking: counted, not hidden
    # Pairwise through the real model and the runner: the two orders of a pair share out 2 wins.
    pairwise = build_scorer(f"judge:{paths['lm']}", dataclasses.replace(OPTS, judge_mode="pairwise", max_new_tokens=3))
    per = pairwise.units([pair])
    assert [u.response_keys for u in per[0]] == [("chosen", "rejected"), ("rejected", "chosen")]
    wins = pairwise.score_batch(per[0])
    assert all(sum(w) == 1.0 for w in wins) and pairwise.n_unparseable <= 2


def test_truncation_is_left_and_counted(engine, bench, tiny):
    from transformers import AutoModelForSequenceClassification

    tok, paths = tiny
    limit = 40
    result = run_scoring(engine=engine, benchmark_id=bench, spec=f"scalar:{paths['cls']}", name="short",
                         options=dataclasses.replace(OPTS, max_length=limit))
    items = all_inputs(engine, bench)
    lengths = {(i.item_id, k): len(ids_of(tok, chat(tok, i.prompt, t))) for i in items for k, t in i.responses}
    assert result.n_truncated == sum(1 for n in lengths.values() if n > limit) > 0
    model = AutoModelForSequenceClassification.from_pretrained(paths["cls"]).eval()
    got = stored(engine, "short")
    item = items[0]
    key, text = item.responses[0]
    with torch.inference_mode():
        want = model(input_ids=torch.tensor([ids_of(tok, chat(tok, item.prompt, text))[-limit:]])).logits[0, 0].item()
    assert got[(item.item_id, key)] == pytest.approx(want, abs=1e-5)


def test_interrupted_run_resumes_and_rerun_does_no_model_work(engine, bench, tiny):
    _, paths = tiny
    spec = f"scalar:{paths['cls']}"
    first = build_scorer(spec, OPTS)

    def stop_after_first_batch(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scoring(engine=engine, benchmark_id=bench, spec=spec, name="r", options=OPTS, scorer=first, progress=stop_after_first_batch)
    assert first.n_calls == 1
    with session_scope(engine) as session:
        kept = session.execute(select(func.count()).select_from(Score)).scalar_one()
    assert kept < 48 * 4  # the first batch (4 longest sequences) completes few or no items

    second = build_scorer(spec, OPTS)
    res = run_scoring(engine=engine, benchmark_id=bench, spec=spec, name="r", options=OPTS, scorer=second)
    assert res.n_already == kept // 4 and res.n_scored == 48 - kept // 4
    assert len(stored(engine, "r")) == 48 * 4

    third = build_scorer(spec, OPTS)
    res = run_scoring(engine=engine, benchmark_id=bench, spec=spec, name="r", options=OPTS, scorer=third)
    assert (third.n_calls, res.n_scored, res.n_already) == (0, 0, 48)
    assert third._model is None and third._tokenizer is None  # not even a tokenizer load

    with pytest.raises(ScoringError, match="different model or settings"):
        run_scoring(engine=engine, benchmark_id=bench, spec=spec, name="r", options=dataclasses.replace(OPTS, max_length=64))


def test_identical_sequences_are_scored_once(engine, tmp_path, tiny):
    _, paths = tiny
    rec = make_records({"Chat": 1}, seed=5, long_text=False)[0]
    for g in rec["prompt_groups"]:  # all 12 prompts identical: 4 distinct sequences
        for p in g["prompts"]:
            p["text"] = "same prompt"
    bid = import_benchmark(engine=engine, path=write_jsonl(tmp_path / "dup.jsonl", [rec]), name="dup").benchmark_id
    res = run_scoring(engine=engine, benchmark_id=bid, spec=f"scalar:{paths['cls']}", name="dup", options=OPTS)
    assert (res.n_scored, res.n_units) == (12, 4)


def test_bad_specs_say_what_to_type():
    for spec, msg in (("nope:/x", "unknown scorer family"), ("scalar", "needs a model"), ("dpo:/a", "two models"), ("length:/x", "takes no model")):
        with pytest.raises(ScoringError, match=msg):
            build_scorer(spec)
    with pytest.raises(ScoringError, match="does not exist"):
        build_scorer("scalar:/no/such/model").units([])


def test_conversations_are_scored_on_the_whole_conversation(engine, tiny):
    """A conversational item (pairs, RMB) is scored on every turn before the response, not its last turn alone."""
    from pathlib import Path

    from transformers import AutoModelForSequenceClassification

    from rmgap_annot.formats.store import import_any

    tok, paths = tiny
    samples = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
    bench = import_any(engine=engine, path=samples / "pairs" / "conversational.jsonl").benchmark_id
    run_scoring(engine=engine, benchmark_id=bench, spec=f"scalar:{paths['cls']}", name="conv", options=OPTS)
    got = stored(engine, "conv")
    model = AutoModelForSequenceClassification.from_pretrained(paths["cls"]).eval()
    items = all_inputs(engine, bench)
    first = items[0]
    assert first.context is not None and [r for r, _ in first.context] == ["system", "user"]
    assert first.prompt == first.context[-1][1]
    for item in items:
        messages = [{"role": r, "content": c} for r, c in item.context]
        for key, text in item.responses:
            ids = ids_of(tok, tok.apply_chat_template(messages + [{"role": "assistant", "content": text}], tokenize=False))
            with torch.inference_mode():
                want = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
            assert got[(item.item_id, key)] == pytest.approx(want, abs=1e-5)
    # The system turn is in the scored sequence: scoring the last turn alone gives another number.
    key, text = first.responses[0]
    alone = ids_of(tok, chat(tok, first.prompt, text))
    with torch.inference_mode():
        last_only = model(input_ids=torch.tensor([alone])).logits[0, 0].item()
    assert got[(first.item_id, key)] != pytest.approx(last_only, abs=1e-6)


def test_judges_read_the_whole_conversation_and_listwise_ranks_any_size():
    from rmgap_annot.scoring import ItemInput
    from rmgap_annot.scoring.judge import _message_units, query_of

    conv = ItemInput(1, "c/0/0", "And in Python?", (("chosen", "def f(): ..."), ("rejected", "No.")),
                     (("user", "How do I reverse a list in Go?"), ("assistant", "Use a loop."), ("user", "And in Python?")))
    single = ItemInput(2, "s/0/0", "Hi?", (("a", "x"), ("b", "y"), ("c", "z"), ("d", "w")), (("user", "Hi?"),))
    assert query_of(single) == "Hi?"
    query = query_of(conv)
    assert "How do I reverse a list in Go?" in query and query.endswith("And in Python?")
    (units,) = _message_units([conv], "verifier", 0)
    assert "reverse a list in Go" in units[0].payload[0][1]["content"]
    assert len(_message_units([single], "listwise", 0)[0]) == 1
    # Two responses (a pair) and seven (an RMB BoN entry): lettered A.., asked for a ranking of their own size.
    seven = ItemInput(3, "b/0/0", "Sort?", tuple((f"k{i}", f"text {i}") for i in range(7)), (("user", "Sort?"),))
    (pair_unit,), (bon_unit,) = _message_units([conv, seven], "listwise", 0)
    pair_prompt, bon_prompt = pair_unit.payload[0][1]["content"], bon_unit.payload[0][1]["content"]
    assert "permutation of letters A>B," in pair_prompt and "reverse a list in Go" in pair_prompt
    assert "like A>B>C>D>E>F>G." in bon_prompt and "G) text" in bon_prompt and "H)" not in bon_prompt
    assert bon_unit.response_keys == tuple(f"k{i}" for i in range(7))
    nine = ItemInput(4, "n/0/0", "?", tuple((f"k{i}", "t") for i in range(9)), (("user", "?"),))
    with pytest.raises(ScoringError, match="2 to 8 responses, not 9"):
        _message_units([single, nine], "listwise", 0)


def test_pairwise_judge_asks_every_pair_both_ways_and_parses_verdicts():
    from rmgap_annot.scoring import ItemInput
    from rmgap_annot.scoring.judge import _message_units, pairwise_scores, parse_pairwise

    pair = ItemInput(1, "p/0/0", "Hi?", (("chosen", "Hello!"), ("rejected", "Go away.")), (("user", "Hi?"),))
    three = ItemInput(2, "t/0/0", "Q?", (("x", "one"), ("y", "two"), ("z", "three")), (("user", "Q?"),))
    (ab, ba), six = _message_units([pair, three], "pairwise", 0)
    assert (ab.response_keys, ba.response_keys) == (("chosen", "rejected"), ("rejected", "chosen"))
    shown = ab.payload[0][1]["content"]
    assert shown.index("### Response A\nHello!") < shown.index("### Response B\nGo away.")
    assert len(six) == 6 and {u.response_keys for u in six} == {(a, b) for a in "xyz" for b in "xyz" if a != b}
    assert [parse_pairwise(x) for x in ("[[A]]", "Reasoning... so [[B]].", "[[C]]", "B", "Response A.", "tie", "no idea", "")] \
        == ["A", "B", "tie", "B", "A", "tie", None, None]
    assert parse_pairwise("[[A]] at first, but on reflection [[B]]") == "B"  # the final verdict
    assert pairwise_scores("A") == [1.0, 0.0] and pairwise_scores("B") == [0.0, 1.0]
    assert pairwise_scores("tie") == pairwise_scores(None) == [0.5, 0.5]


def test_listwise_parsing_and_scores_for_any_size():
    from rmgap_annot.scoring.judge import listwise_prompt, parse_ranking, ranking_scores

    assert parse_ranking("B>A", 2) == ["B", "A"] and parse_ranking("The best: B, then A.", 2) == ["B", "A"]
    assert parse_ranking("G>A>B>C>D>E>F", 7) == list("GABCDEF")
    assert parse_ranking("A>B>C", 7) is None and parse_ranking("A>A", 2) is None
    assert parse_ranking("B>A>D>C") == ["B", "A", "D", "C"]  # RMGAP's four by default
    # Letters beyond the item's are not letters of its ranking: "E" is no candidate of a 4-response item.
    assert parse_ranking("E>A>B>C") is None
    # Shown as A, B, C: the item's responses 1, 2, 0. The judge's B>A>C gives B (response 2) 3, A (response 1) 2,
    # C (response 0) 1, back in the item's order.
    assert ranking_scores(["B", "A", "C"], [1, 2, 0]) == [1.0, 2.0, 3.0]
    # RMGAP's prompt is word for word what it was at four responses (the text the four-only judge wrote).
    before = (Path(__file__).with_name("data") / "judge_listwise_before.txt").read_text(encoding="utf-8")
    assert listwise_prompt("Q?", ["r1", "r2", "r3", "r4"]) == before
