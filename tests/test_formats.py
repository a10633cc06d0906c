"""Other benchmark formats: the bundled samples read into the item model, each benchmark's
metric matches a hand computation of its rule (ties included), write-back re-reads to the
same entries, and bad input gets precise FILE:LINE / FILE:ENTRY N / FILE:ROW N errors.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rmgap_annot.cli import app
from rmgap_annot.formats import check, detect_format, pairs, prb, read, rewardbench, rewardbench2, rmb
from rmgap_annot.formats.common import FormatFileError, Rate, write_entries

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
RMB_DIR = SAMPLES / "rmb" / "RMB_dataset"
PRB_JSONL = SAMPLES / "prb" / "prb_sample.jsonl"
RB_JSONL = SAMPLES / "rewardbench" / "rewardbench_sample.jsonl"
RB2_JSONL = SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl"


def visible(item) -> str:
    """Everything of an item an annotator may see, as one string."""
    return json.dumps([item.prompt, item.conversation, item.profile, [c.text for c in item.candidates]], ensure_ascii=False)


def errors_of(excinfo) -> list[str]:
    return [str(e) for e in excinfo.value.errors]


def by_id(loaded):
    return {item.entry_id: item for item in loaded.items}


def close(rate: Rate, value: float, n: int) -> bool:
    return rate.value == pytest.approx(value) and rate.n == n


# --- RMB ----------------------------------------------------------------------


def test_rmb_folder_reads_pairs_and_bon_into_items_with_hidden_generators():
    loaded = rmb.read(RMB_DIR)
    items = by_id(loaded)
    assert len(loaded.entries) == 7 and len({e.file for e in loaded.entries}) == 6
    assert items["rmb-pair-code-0001"].keys == ["chosen", "reject"]
    bon = items["rmb-bon-code-0001"]
    assert bon.keys == ["bon_best"] + [f"loser_{i}" for i in range(6)]
    assert bon.correct_keys == ("bon_best",)
    assert bon.category_path == ("Helpfulness", "Code", "Code Generation")
    travel = items["rmb-pair-travel-0001"]
    assert len(travel.conversation) == 5 and travel.conversation[-1]["role"] == "user"
    assert set(travel.conversation[0]) == {"role", "content"}  # `language` is not part of the shown turn
    assert "。" in items["rmb-pair-translate-0001"].conversation[0]["content"]
    for item in loaded.items:
        names = [n for n in item.hidden["generators"].values() if n]
        assert names and not any(n in visible(item) for n in names), item.entry_id
    # One conversation (whitespace aside) is one resampling group across the pairwise and BoN sets.
    assert items["rmb-pair-code-0001"].group_id == bon.group_id
    assert items["rmb-pair-harm-0001"].group_id == items["rmb-bon-harm-0001"].group_id
    assert items["rmb-pair-code-0002"].group_id != bon.group_id
    assert len({i.group_id for i in loaded.items}) == 5


def test_rmb_metrics_match_the_strict_rules_per_category_and_up_the_tree():
    loaded = rmb.read(RMB_DIR)
    scores = {
        ("rmb-pair-code-0001", 0): {"chosen": 2, "reject": 1},  # right
        ("rmb-pair-code-0002", 0): {"chosen": 1, "reject": 1},  # tie: wrong
        ("rmb-pair-travel-0001", 0): {"chosen": 3, "reject": 0},  # right
        ("rmb-pair-translate-0001", 0): {"chosen": 0, "reject": 1},  # wrong
        ("rmb-pair-harm-0001", 0): {"chosen": 5, "reject": 4},  # right
        # best ties loser_2 at 5: not "beats every loser"
        ("rmb-bon-code-0001", 0): {"bon_best": 5, "loser_0": 4, "loser_1": 4, "loser_2": 5, "loser_3": 1, "loser_4": 0, "loser_5": 2},
        ("rmb-bon-harm-0001", 0): {"bon_best": 1, "loser_0": 0, "loser_1": 0.5},  # right
    }
    result = rmb.metrics(loaded.items, scores)
    pw, bon = result["pairwise"], result["bon"]
    assert close(pw["Helpfulness/Code/Code Generation"], 0.5, 2)
    assert close(pw["Helpfulness/Chat/Travel Planning"], 1.0, 1)
    assert close(pw["Helpfulness/Chat/Translation"], 0.0, 1)
    assert close(pw["Helpfulness/Chat"], 0.5, 2)
    assert close(pw["Helpfulness"], 0.5, 4)
    assert close(pw["Harmlessness"], 1.0, 1)
    assert close(bon["Helpfulness/Code/Code Generation"], 0.0, 1)
    assert close(bon["Harmlessness/Privacy/Unauthorized Access"], 1.0, 1)
    # Unscored items are left out, not counted wrong.
    del scores[("rmb-pair-code-0002", 0)]
    assert close(rmb.metrics(loaded.items, scores)["pairwise"]["Helpfulness/Code/Code Generation"], 1.0, 1)
    # The same rule once the BoN winner is alone at the top.
    scores[("rmb-bon-code-0001", 0)]["loser_2"] = 4.999
    assert close(rmb.metrics(loaded.items, scores)["bon"]["Helpfulness"], 1.0, 1)


def test_rmb_tree_averages_children_unweighted_not_pooled():
    outcomes = [(("H", "T", "a"), True), (("H", "T", "a"), False), (("H", "T", "a"), False), (("H", "T", "b"), True)]
    tree = rmb.tree_accuracy(outcomes)
    assert close(tree["H/T/a"], 1 / 3, 3) and close(tree["H/T/b"], 1.0, 1)
    assert tree["H/T"].value == pytest.approx((1 / 3 + 1) / 2)  # pooled would be 2/4
    assert tree["H"].value == pytest.approx((1 / 3 + 1) / 2)


def test_rmb_write_back_keeps_tree_names_and_entries(tmp_path):
    loaded = rmb.read(RMB_DIR)
    kept = [e for e in loaded.entries if e.entry_id != "rmb-pair-code-0002"]
    rmb.write(kept, tmp_path / "out")
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json"))
    assert written == sorted(p.relative_to(RMB_DIR).as_posix() for p in RMB_DIR.rglob("*.json"))
    again = rmb.read(tmp_path / "out")
    assert [(e.file, e.original) for e in again.entries] == [(e.file, e.original) for e in kept]
    code = json.loads((tmp_path / "out" / "Pairwise_set/Helpfulness/Code/Code Generation.json").read_text(encoding="utf-8"))
    assert isinstance(code, list) and [e["pair_uid"] for e in code] == ["rmb-pair-code-0001"]
    # A file none of whose entries is kept is not written.
    only_bon = [e for e in loaded.entries if e.entry_id.startswith("rmb-bon")]
    rmb.write(only_bon, tmp_path / "bon")
    assert not (tmp_path / "bon" / "Pairwise_set").exists()


def _rmb_pair(**changes) -> dict:
    entry = {
        "pair_uid": "p1",
        "conversation_input": [{"role": "user", "content": "Hi?"}],
        "chosen": {"llm_name": "m1", "answer": "Hello! How can I help?"},
        "reject": {"llm_name": "m2", "answer": "Go away."},
        "category_path": "Pairwise_set/Helpfulness/Chat/Greeting",
    }
    entry.update(changes)
    return entry


def _write_array(path: Path, entries: list) -> Path:
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def test_rmb_bad_entries_each_named_by_entry_number(tmp_path):
    bon_one = {"bon_uid": "b1", "conversation_input": [{"role": "user", "content": "Hi?"}],
               "bon_best": {"llm_name": "m", "answer": "Hello"}, "loser_list": [], "category_path": "BoN_set/Helpfulness/Chat/Greeting"}
    same = _rmb_pair(pair_uid="p2", reject={"llm_name": "m3", "answer": "  Hello! How can I help?\n"})
    assistant_last = _rmb_pair(pair_uid="p3", conversation_input=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yes?"}])
    path = _write_array(tmp_path / "bad.json", [_rmb_pair(), bon_one, same, assistant_last, _rmb_pair()])
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(path)
    assert errors_of(excinfo) == [
        f"{path}:ENTRY 2: loser_list: must hold at least one loser (a Best-of-N entry needs 2 or more candidates)",
        f"{path}:ENTRY 3: reject: 'reject' has the same text as 'chosen': a person cannot tell them apart",
        f"{path}:ENTRY 4: conversation_input[1].role: the last turn must be the user's, found 'assistant'",
        f"{path}:ENTRY 5: (id): duplicate entry id 'p1' (first in {path}, entry 1)",
    ]


def test_rmb_unclosed_or_broken_array_names_the_entry(tmp_path):
    text = json.dumps([_rmb_pair(), _rmb_pair(pair_uid="p2")], indent=1)
    unclosed = tmp_path / "unclosed.json"
    unclosed.write_text(text[: text.rstrip().rfind("]")], encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(unclosed)
    assert errors_of(excinfo) == [f"{unclosed}:ENTRY 2: (array): the JSON array is not closed: the file ends after this entry without ']'"]
    cut = tmp_path / "cut.json"
    cut.write_text(text[: text.find('"pair_uid": "p2"') + 10], encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(cut)
    [message] = errors_of(excinfo)
    assert message.startswith(f"{cut}:ENTRY 2: (entry): invalid JSON: ")
    not_array = _write_array(tmp_path / "obj.json", [])
    not_array.write_text(json.dumps(_rmb_pair()), encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(not_array)
    assert errors_of(excinfo)[0].startswith(f"{not_array}:0: (file): expected a JSON array")
    trailing = tmp_path / "trailing.json"
    trailing.write_text(json.dumps([_rmb_pair()]) + "\n]", encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(trailing)
    assert errors_of(excinfo) == [f"{trailing}:0: (file): text after the closing ']' at line 2 column 1"]


def test_rmb_entry_nested_past_the_limit_is_refused_by_entry(tmp_path):
    deep = _rmb_pair(pair_uid="p2")
    deep["extra"] = json.loads("[" * 80 + "]" * 80)
    path = _write_array(tmp_path / "deep.json", [_rmb_pair(), deep])
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(path)
    assert errors_of(excinfo) == [f"{path}:ENTRY 2: (entry): JSON nested deeper than 64 levels"]


# --- Personalized RewardBench ------------------------------------------------------


def test_prb_items_show_the_profile_and_hide_rubric_and_narrative():
    loaded = prb.read(PRB_JSONL)
    items = by_id(loaded)
    assert len(items) == 3
    item = items["prb-lifestyle-0001"]
    assert item.keys == ["chosen", "rejected"] and item.correct_keys == ("chosen",)
    assert item.category_path == ("Lifestyle_and_Personal_Development",)
    assert len(item.profile) == 3 and max(len(p["text"]) for p in item.profile) > 1000
    assert item.hidden["narrative"] and item.hidden["rubric_aspects"]
    for it in loaded.items:
        assert it.hidden["narrative"] not in visible(it)
        assert all(a["aspect"] not in visible(it) for a in it.hidden["rubric_aspects"])
    assert "¿" in items["prb-art-0001"].prompt


def test_prb_win_rate_is_strict_with_ties_counted_apart():
    loaded = prb.read(PRB_JSONL)
    scores = {
        ("prb-lifestyle-0001", 0): {"chosen": 1.0, "rejected": 0.0},  # win
        ("prb-art-0001", 0): {"chosen": 0.5, "rejected": 0.5},  # tie
        ("prb-society-0001", 0): {"chosen": 0.0, "rejected": 1.0},  # loss
    }
    result = prb.metrics(loaded.items, scores)
    assert close(result["all"]["win_rate"], 1 / 3, 3) and result["all"]["ties"] == 1
    assert close(result["all"]["tie_rate"], 1 / 3, 3)
    assert close(result["Art_and_Entertainment"]["win_rate"], 0.0, 1) and result["Art_and_Entertainment"]["ties"] == 1
    assert close(result["Lifestyle_and_Personal_Development"]["win_rate"], 1.0, 1)
    assert result["Society_and_Culture"]["ties"] == 0


def test_prb_parquet_holds_the_same_entries_and_round_trips(tmp_path):
    from_jsonl = prb.read(PRB_JSONL)
    from_parquet = prb.read(SAMPLES / "prb" / "prb_sample.parquet")
    assert [e.original for e in from_parquet.entries] == [e.original for e in from_jsonl.entries]
    assert [e.unit for e in from_parquet.entries] == ["row"] * 3
    kept = from_parquet.entries[::2]
    prb.write(kept, tmp_path)
    out = tmp_path / "prb_sample.parquet"
    assert pq.read_schema(out).equals(pq.read_schema(SAMPLES / "prb" / "prb_sample.parquet"))
    assert [e.original for e in prb.read(out).entries] == [e.original for e in kept]


def test_prb_jsonl_write_back_is_line_for_line(tmp_path):
    loaded = prb.read(PRB_JSONL)
    prb.write(loaded.entries[1:], tmp_path)
    lines = PRB_JSONL.read_text(encoding="utf-8").splitlines(keepends=True)
    assert (tmp_path / "prb_sample.jsonl").read_text(encoding="utf-8") == "".join(lines[1:])


def test_prb_missing_or_empty_profile_is_an_error_in_jsonl_and_parquet(tmp_path):
    rows = [json.loads(line) for line in PRB_JSONL.read_text(encoding="utf-8").splitlines()]
    del rows[1]["profile"]
    rows[2]["profile"] = []
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        prb.read(path)
    assert errors_of(excinfo) == [
        f"{path}:2: profile: is missing",
        f"{path}:3: profile: is empty: a personalised item needs the user's past posts",
    ]
    table = pq.read_table(SAMPLES / "prb" / "prb_sample.parquet").to_pylist()
    table[1]["profile"] = None
    bad_parquet = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(SAMPLES / "prb" / "prb_sample.parquet")), bad_parquet)
    with pytest.raises(FormatFileError) as excinfo:
        prb.read(bad_parquet)
    assert errors_of(excinfo) == [f"{bad_parquet}:ROW 2: profile: is missing"]


# --- RewardBench ---------------------------------------------------------------


def test_rewardbench_items_and_sections():
    loaded = rewardbench.read(RB_JSONL)
    items = by_id(loaded)
    assert list(items) == ["30", "4021", "3500", "2200", "2900"]
    assert items["4021"].category_path == ("Reasoning", "hep-python") and "def is_palindrome" in items["4021"].candidates[0].text
    assert items["30"].hidden["generators"] == {"chosen": "GPT4-Turbo", "rejected": "alpaca-7b"}


def test_rewardbench_subset_accuracy_and_example_count_weighted_sections():
    loaded = rewardbench.read(RB_JSONL)
    scores = {
        ("30", 0): {"chosen": 1, "rejected": 0},  # alpacaeval-easy: right
        ("4021", 0): {"chosen": 2, "rejected": 2},  # hep-python: tie is wrong
        ("3500", 0): {"chosen": 3, "rejected": 1},  # math-prm: right
        ("2200", 0): {"chosen": 1, "rejected": 0},  # xstest-should-respond: right
        ("2900", 0): {"chosen": 0, "rejected": 1},  # donotanswer: wrong
    }
    result = rewardbench.metrics(loaded.items, scores)
    subsets, sections = result["subsets"], result["sections"]
    assert {k: r.value for k, r in subsets.items()} == {
        "alpacaeval-easy": 1.0, "hep-python": 0.0, "math-prm": 1.0, "xstest-should-respond": 1.0, "donotanswer": 0.0}
    assert close(sections["Chat"], 1.0, 1)
    # math-prm weighs 984 (up-weighted to equal the six code subsets), hep-python 164.
    assert close(sections["Reasoning"], 984 / (984 + 164), 2)
    assert close(sections["Safety"], 250 / (250 + 136), 2)
    assert sections["Chat Hard"].value is None and "Chat Hard" in sections["Chat Hard"].reason


def test_rewardbench_parquet_round_trip(tmp_path):
    from_parquet = rewardbench.read(SAMPLES / "rewardbench" / "rewardbench_sample.parquet")
    assert [e.original for e in from_parquet.entries] == [e.original for e in rewardbench.read(RB_JSONL).entries]
    rewardbench.write(from_parquet.entries, tmp_path)
    again = rewardbench.read(tmp_path / "rewardbench_sample.parquet")
    assert [e.original for e in again.entries] == [e.original for e in from_parquet.entries]
    assert isinstance(again.entries[0].original["id"], int)


def test_rewardbench_identical_chosen_and_rejected_is_an_error(tmp_path):
    lines = RB_JSONL.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    row["rejected"] = row["chosen"]
    path = tmp_path / "rb.jsonl"
    path.write_text(lines[1] + "\n\n" + json.dumps(row) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        rewardbench.read(path)
    errors = errors_of(excinfo)
    assert errors[0] == f"{path}:3: rejected: 'rejected' has the same text as 'chosen': a person cannot tell them apart"
    assert errors[1].startswith(f"{path}:4: (line): invalid JSON")


# --- RewardBench 2 ---------------------------------------------------------------


def test_rewardbench2_items_key_every_completion():
    loaded = rewardbench2.read(RB2_JSONL)
    items = by_id(loaded)
    assert items["102"].keys == ["chosen_0", "rejected_0", "rejected_1", "rejected_2"]
    tied = items["tied:7"]
    assert tied.keys == ["chosen_0", "chosen_1", "chosen_2"] + [f"rejected_{i}" for i in range(4)]
    assert tied.correct_keys == ("chosen_0", "chosen_1", "chosen_2")
    assert items["1203"].prompt.startswith("写")
    assert "gpt-4o" not in visible(items["102"]) and items["102"].hidden["models"][0] == "gpt-4o"


def test_rewardbench2_best_of_4_partial_credit_and_ties_accuracy():
    loaded = rewardbench2.read(RB2_JSONL)
    scores = {
        ("102", 0): {"chosen_0": 2, "rejected_0": 2, "rejected_1": 1, "rejected_2": 0},  # two at the max: 1/2
        ("857", 0): {"chosen_0": 3, "rejected_0": 1, "rejected_1": 1, "rejected_2": 1},  # alone at the max: 1
        ("1203", 0): {"chosen_0": 0, "rejected_0": 1, "rejected_1": 0, "rejected_2": 0},  # not the max: 0
        ("ref:7", 0): {"chosen_0": 3, "rejected_0": 1, "rejected_1": 2, "rejected_2": 3},  # worst correct = best wrong: not accurate
        ("tied:7", 0): {"chosen_0": 5, "chosen_1": 4, "chosen_2": 4, "rejected_0": 1, "rejected_1": 2, "rejected_2": 3, "rejected_3": 3.9},
    }
    result = rewardbench2.metrics(loaded.items, scores)
    assert close(result["Factuality"]["score"], 0.5, 1)
    assert close(result["Math"]["score"], 1.0, 1)
    assert close(result["Focus"]["score"], 0.0, 1)
    ties = result["Ties"]
    assert close(ties["ref_accuracy"], 0.0, 1) and close(ties["tied_accuracy"], 1.0, 1)
    # Margins: ref 3 - 3 = 0, tied 4 - 3.9 = 0.1, correct spread 5 - 4 = 1: neither comparison holds.
    assert close(ties["correctness_preferred"], 0.0, 1) and close(ties["correctness_preferred_hard"], 0.0, 1)
    assert ties["margin_score"].value == pytest.approx(math.tanh(0 / 1 - 1))
    assert ties["score"].value == pytest.approx(0.30 * 1 + 0.30 * 0 + 0.01 * math.tanh(-1))
    assert rewardbench2.best_of_n({"chosen_0": 1, "rejected_0": 1, "rejected_1": 1, "rejected_2": 0}) == pytest.approx(1 / 3)


def test_rewardbench2_parquet_round_trip_keeps_nested_metadata(tmp_path):
    from_parquet = rewardbench2.read(SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet")
    assert [e.original for e in from_parquet.entries] == [e.original for e in rewardbench2.read(RB2_JSONL).entries]
    kept = [e for e in from_parquet.entries if e.entry_id != "857"]
    rewardbench2.write(kept, tmp_path)
    again = rewardbench2.read(tmp_path / "rewardbench2_sample.parquet")
    assert [e.original for e in again.entries] == [e.original for e in kept]
    assert again.entries[0].original["additional_metadata"] == {"source": "human-written", "error_type": "wrong author"}


def test_rewardbench2_counts_and_candidate_limit_are_checked(tmp_path):
    rows = [json.loads(line) for line in RB2_JSONL.read_text(encoding="utf-8").splitlines()]
    rows[0]["num_correct"] = 2
    rows[1]["rejected"] = [f"wrong answer {i}" for i in range(8)]
    rows[1]["num_incorrect"], rows[1]["total_completions"] = 8, 9
    rows[2]["chosen"] = []
    path = tmp_path / "rb2.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        rewardbench2.read(path)
    assert errors_of(excinfo) == [
        f"{path}:1: num_correct: is 2 but chosen holds 1",
        f"{path}:2: rejected: holds 9 candidate response(s); an item needs 2 to 8",
        f"{path}:3: chosen: must hold at least one completion",
    ]


# --- plain pairs ---------------------------------------------------------------------


def test_pairs_read_all_three_trl_variants():
    loaded = pairs.read(SAMPLES / "pairs")
    items = {(e.file, e.entry_id): e.items[0] for e in loaded.entries}
    standard = items[("standard.jsonl", "standard.jsonl:L1")]
    assert standard.prompt.startswith("Explain") and standard.conversation is None
    assert standard.hidden["extra"]["score_chosen"] == 8.5 and "8.5" not in visible(standard)
    conv = items[("conversational.jsonl", "conv-1")]
    assert [m["role"] for m in conv.conversation] == ["system", "user"] and conv.candidates[0].text.startswith("«Аригато»")
    implicit = items[("implicit.jsonl", "implicit.jsonl:L2")]
    assert [m["role"] for m in implicit.conversation] == ["user", "assistant", "user"]
    assert [c.text for c in implicit.candidates] == ["Hearth & Crumb.", "BreadTech 3000."]
    assert {i.hidden["variant"] for i in loaded.items} == {"standard", "conversational", "implicit"}


def test_pairs_accuracy_is_strict(tmp_path):
    loaded = pairs.read(SAMPLES / "pairs")
    refs = [i.ref for i in loaded.items]
    values = [(1, 0), (1, 0), (2, 1), (0.3, 0.3), (0, 1), (5, -5)]
    scores = {ref: {"chosen": c, "rejected": r} for ref, (c, r) in zip(refs, values)}
    assert close(pairs.metrics(loaded.items, scores)["all"], 4 / 6, 6)


def test_pairs_write_back_each_file_line_for_line(tmp_path):
    loaded = pairs.read(SAMPLES / "pairs")
    pairs.write(loaded.entries, tmp_path)
    for name in ("standard.jsonl", "conversational.jsonl", "implicit.jsonl"):
        assert (tmp_path / name).read_bytes() == (SAMPLES / "pairs" / name).read_bytes()


def test_pairs_bad_conversations(tmp_path):
    rows = [
        {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
         "chosen": [{"role": "assistant", "content": "A"}], "rejected": [{"role": "assistant", "content": "B"}]},
        {"chosen": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A"}],
         "rejected": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "B"}]},
        {"chosen": "A plain text", "rejected": "Another"},
        {"prompt": "Q", "chosen": "Same answer", "rejected": "Same answer"},
        {"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "A"}], "rejected": [{"role": "bot", "content": "B"}]},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        pairs.read(path)
    assert errors_of(excinfo) == [
        f"{path}:1: prompt[1].role: the last turn must be the user's, found 'assistant'",
        f"{path}:2: rejected: must share every message but the last with chosen (the implicit prompt)",
        f"{path}:3: prompt: is missing: a pair of plain texts needs a prompt column (implicit prompts are conversations)",
        f"{path}:4: rejected: 'rejected' has the same text as 'chosen': a person cannot tell them apart",
        f"{path}:5: rejected[0].role: must be one of system, user, assistant, found 'bot'",
    ]


# --- detection, shared checks, CLI ------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    (RMB_DIR, "rmb"),
    (RMB_DIR / "BoN_set" / "Helpfulness" / "Code" / "Code Generation.json", "rmb"),
    (PRB_JSONL, "prb"),
    (SAMPLES / "prb" / "prb_sample.parquet", "prb"),
    (RB_JSONL, "rewardbench"),
    (SAMPLES / "rewardbench" / "rewardbench_sample.parquet", "rewardbench"),
    (RB2_JSONL, "rewardbench2"),
    (SAMPLES / "rewardbench2" / "rewardbench2_sample.parquet", "rewardbench2"),
    (SAMPLES / "pairs", "pairs"),
    (SAMPLES / "pairs" / "implicit.jsonl", "pairs"),
    (SAMPLES.parent / "sample.jsonl", "rmgap"),
])
def test_detect_format_from_content(path, expected):
    assert detect_format(path) == expected


def test_detect_format_explains_a_failure(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n', encoding="utf-8")
    with pytest.raises(FormatFileError) as excinfo:
        detect_format(path)
    [message] = errors_of(excinfo)
    assert "fields (answer, question) match no known format" in message
    assert "pairs (chosen and rejected)" in message and "pass --format" in message
    with pytest.raises(FormatFileError, match="no such file or folder"):
        detect_format(tmp_path / "missing")


def test_copies_of_one_benchmark_under_a_folder_are_refused_as_duplicates(tmp_path):
    shutil.copy(PRB_JSONL, tmp_path / "a.jsonl")
    shutil.copy(SAMPLES / "prb" / "prb_sample.parquet", tmp_path / "b.parquet")
    with pytest.raises(FormatFileError) as excinfo:
        read(tmp_path)
    assert len(excinfo.value.errors) == 3
    assert all("duplicate entry id" in e for e in errors_of(excinfo))


def test_gzip_jsonl_reads_and_writes_back_gzip(tmp_path):
    import gzip

    gz = tmp_path / "rb.jsonl.gz"
    gz.write_bytes(gzip.compress(RB_JSONL.read_bytes()))
    loaded = rewardbench.read(gz)
    write_entries(loaded.entries, tmp_path / "out")
    assert gzip.decompress((tmp_path / "out" / "rb.jsonl.gz").read_bytes()) == RB_JSONL.read_bytes()


def test_check_summarises_every_sample():
    summary = check(RMB_DIR)
    assert (summary.format, summary.files, summary.entries, summary.items, summary.groups) == ("rmb", 6, 7, 7, 5)
    assert summary.candidates == {2: 5, 3: 1, 7: 1}
    assert summary.categories["Helpfulness/Code/Code Generation"] == 3
    assert check(SAMPLES.parent / "sample.jsonl").items == 144


def test_cli_formats_check_prints_a_summary_or_the_errors_with_exit_2(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["formats", "check", str(RMB_DIR)])
    assert ok.exit_code == 0, ok.output
    assert "valid rmb (6 file(s))" in ok.output and "7: 1 item(s)" in ok.output
    assert "Helpfulness/Chat/Travel Planning" in ok.output
    bad = _write_array(tmp_path / "bad.json", [_rmb_pair(), _rmb_pair(reject={"llm_name": "x", "answer": "Hello! How can I help?"})])
    res = runner.invoke(app, ["formats", "check", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:ENTRY 2: reject: 'reject' has the same text as 'chosen'" in res.output
    assert "Traceback" not in res.output
    wrong = runner.invoke(app, ["formats", "check", str(RB_JSONL), "--format", "prb"])
    assert wrong.exit_code == 2 and f"{RB_JSONL}:1: question: is missing" in wrong.output
    unknown = runner.invoke(app, ["formats", "check", str(RB_JSONL), "--format", "csv"])
    assert unknown.exit_code == 2 and "--format must be one of" in unknown.output


# --- people's picks through the same rules; limits; never a traceback ----------------------


def test_a_pick_or_a_tie_choice_goes_through_each_benchmarks_own_tie_rule():
    from rmgap_annot.formats.common import pick_scores, ranking_scores

    rmb_items = by_id(rmb.read(RMB_DIR))
    pair = rmb_items["rmb-pair-code-0001"]
    both_good = {pair.ref: pick_scores(pair, None)}
    assert close(rmb.metrics([pair], both_good)["pairwise"]["Helpfulness"], 0.0, 1)  # RMB: a tie is wrong
    assert close(rmb.metrics([pair], {pair.ref: pick_scores(pair, "chosen")})["pairwise"]["Helpfulness"], 1.0, 1)
    prb_item = by_id(prb.read(PRB_JSONL))["prb-art-0001"]
    result = prb.metrics([prb_item], {prb_item.ref: pick_scores(prb_item, None)})["all"]
    assert result["ties"] == 1 and result["win_rate"].value == 0.0  # PRB: counted apart
    rb2_item = by_id(rewardbench2.read(RB2_JSONL))["102"]
    assert rewardbench2.metrics([rb2_item], {rb2_item.ref: pick_scores(rb2_item, None)})["Factuality"]["score"].value == pytest.approx(1 / 4)
    bon = rmb_items["rmb-bon-code-0001"]
    ranking = ["bon_best"] + [f"loser_{i}" for i in range(6)]
    assert rmb.bon_correct(ranking_scores(bon, ranking))
    assert not rmb.bon_correct(ranking_scores(bon, ranking[1:] + ranking[:1]))
    with pytest.raises(ValueError):
        pick_scores(pair, "rejected")  # RMB's key is `reject`
    with pytest.raises(ValueError):
        ranking_scores(bon, ranking[:-1])


def test_rmb_category_path_must_match_the_entry_kind(tmp_path):
    path = _write_array(tmp_path / "x.json", [_rmb_pair(category_path="BoN_set/Helpfulness/Chat/Greeting")])
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(path)
    assert errors_of(excinfo) == [f"{path}:ENTRY 1: category_path: starts with BoN_set but this is a pairwise entry (Pairwise_set)"]


def test_overlong_entry_id_is_refused(tmp_path):
    path = _write_array(tmp_path / "x.json", [_rmb_pair(pair_uid="u" * 501)])
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(path)
    assert errors_of(excinfo) == [f"{path}:ENTRY 1: (id): entry id longer than 500 characters"]


def test_parquet_over_the_decompressed_limit_or_not_parquet_is_refused_up_front(tmp_path, monkeypatch):
    import rmgap_annot.formats.common as common

    rows = [json.loads(line) for line in PRB_JSONL.read_text(encoding="utf-8").splitlines()]
    rows[0]["profile"][0]["text"] = "I run. " * 100_000  # compresses well: small on disk, large inflated
    source = tmp_path / "bomb.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    inflated = pq.ParquetFile(source).metadata.row_group(0).total_byte_size
    assert source.stat().st_size < inflated // 10
    monkeypatch.setattr(common, "MAX_INPUT_BYTES", inflated - 1)
    with pytest.raises(FormatFileError) as excinfo:
        prb.read(source)
    assert errors_of(excinfo) == [f"{source}:0: (file): {inflated:,} bytes decompressed, over {inflated - 1:,}; split the file"]
    monkeypatch.undo()
    fake = tmp_path / "fake.parquet"
    fake.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(FormatFileError, match=r"fake.parquet:0: \(file\): not a readable Parquet file"):
        prb.read(fake)


_ERROR_LINE = r"^.+:(\d+|ENTRY [1-9]\d*|ROW [1-9]\d*): \S.*"


def _mutations():
    from hypothesis import strategies as st

    values = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
                  st.sampled_from(["", " ", "\u0000", "\ud800", "x" * 1_000_001])),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
        max_leaves=6,
    )
    return st.tuples(st.integers(min_value=0, max_value=10_000), values, st.integers(min_value=0, max_value=3))


def _mutate(obj, choice: int, value):
    """Replace the choice-th node (in a walk of the structure) with value; returns the new object."""
    nodes = []

    def walk(o, parent, key):
        nodes.append((parent, key))
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, o, k)
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, o, i)

    walk(obj, None, None)
    parent, key = nodes[choice % len(nodes)]
    if parent is None:
        return value
    parent[key] = value
    return obj


@pytest.mark.parametrize("fmt", ["rmb", "prb", "rewardbench", "rewardbench2", "pairs"])
def test_mutated_files_end_in_entries_or_positioned_errors_never_a_crash(fmt, tmp_path_factory):
    import re

    from hypothesis import HealthCheck, given, settings

    module = {"rmb": rmb, "prb": prb, "rewardbench": rewardbench, "rewardbench2": rewardbench2, "pairs": pairs}[fmt]
    source = {"rmb": RMB_DIR / "BoN_set/Helpfulness/Code/Code Generation.json", "prb": PRB_JSONL, "rewardbench": RB_JSONL,
              "rewardbench2": RB2_JSONL, "pairs": SAMPLES / "pairs" / "conversational.jsonl"}[fmt]
    text = source.read_text(encoding="utf-8")
    entries = json.loads(text) if fmt == "rmb" else [json.loads(line) for line in text.splitlines()]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_mutations())
    def run(mutation):
        choice, value, cut = mutation
        mutated = _mutate(json.loads(json.dumps(entries)), choice, value)
        if fmt == "rmb":
            body = json.dumps(mutated, ensure_ascii=False)
        else:
            body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in (mutated if isinstance(mutated, list) else [mutated]))
        if cut == 3:  # a truncated file, as a failed download leaves it
            body = body[: len(body) * 2 // 3]
        path = tmp_path_factory.mktemp("fuzz") / source.name
        path.write_text(body, encoding="utf-8", errors="surrogatepass")
        try:
            loaded = module.read(path)
        except FormatFileError as exc:
            assert exc.errors and all(re.match(_ERROR_LINE, str(e)) for e in exc.errors), [str(e) for e in exc.errors]
        else:
            assert all(2 <= len(item.candidates) <= 8 for item in loaded.items)

    run()


def test_text_limits_apply_per_entry_in_json_arrays_and_parquet(tmp_path):
    path = _write_array(tmp_path / "big.json", [_rmb_pair(reject={"llm_name": "m", "answer": "x" * 1_000_001}), _rmb_pair(pair_uid="p2")])
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(path)
    assert errors_of(excinfo) == [f"{path}:ENTRY 1: (entry): reject.answer: text longer than 1,000,000 characters"]
    nul = _write_array(tmp_path / "nul.json", [_rmb_pair(), _rmb_pair(pair_uid="p2", category_path="Pairwise_set/a\u0000b")])
    with pytest.raises(FormatFileError) as excinfo:
        rmb.read(nul)
    assert errors_of(excinfo) == [f"{nul}:ENTRY 2: (entry): contains a NUL character (\\u0000), which is not text"]
    rows = [json.loads(line) for line in PRB_JSONL.read_text(encoding="utf-8").splitlines()]
    rows[2]["narrative"] = "hidden\u0000"
    parquet = tmp_path / "nul.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    with pytest.raises(FormatFileError) as excinfo:
        prb.read(parquet)
    assert errors_of(excinfo) == [f"{parquet}:ROW 3: (row): contains a NUL character (\\u0000), which is not text"]


def test_every_sample_file_ships_in_the_package():
    import glob

    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((SAMPLES.parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["rmgap_annot"]
    package = SAMPLES.parents[1]
    shipped = {Path(p).as_posix() for pat in patterns for p in glob.glob(pat, root_dir=package, recursive=True)}
    samples = {p.relative_to(package).as_posix() for p in SAMPLES.rglob("*") if p.is_file()}
    assert samples and samples <= shipped, sorted(samples - shipped)


def test_content_hash_follows_names_and_bytes_not_location(tmp_path):
    shutil.copytree(RMB_DIR, tmp_path / "a")
    assert rmb.read(tmp_path / "a").content_hash == rmb.read(RMB_DIR).content_hash
    shutil.copytree(RMB_DIR, tmp_path / "b")
    renamed = tmp_path / "b" / "BoN_set" / "Harmlessness" / "Privacy"
    (renamed / "Unauthorized Access.json").rename(renamed / "Unauthorised Access.json")
    assert rmb.read(tmp_path / "b").content_hash != rmb.read(RMB_DIR).content_hash
    shutil.copy(RB_JSONL, tmp_path / "rb.jsonl")
    before = rewardbench.read(tmp_path / "rb.jsonl").content_hash
    assert before == rewardbench.read(RB_JSONL).content_hash  # one file: its bytes alone, not its name
    (tmp_path / "rb.jsonl").write_bytes(RB_JSONL.read_bytes() + b"\n")
    assert rewardbench.read(tmp_path / "rb.jsonl").content_hash != before
