"""The referee analyses (issue 11, item 7) on constructed data with a known answer.

Pure tests build a labels frame by hand (``item_summary`` and the report's
record draws on top of it), so the truth is set by construction; one test
runs the whole report on a real SQLite file with a real scores file.
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pandas as pd
import pytest

from rmgap_annot.stats.human_metrics import item_summary, record_draws
from rmgap_annot.report import build_report
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats import referee
from tests.analytics_helpers import add_labels, item_ids, winners
from tests.test_clustered_stats import KEYS, _nulls_without_reason, _scores_file

CONCISE = referee.LEVEL_ORDER["Conciseness"]


def _labels(rows: list[dict]) -> pd.DataFrame:
    """A labels frame with the columns item_summary reads."""
    df = pd.DataFrame(rows)
    for col, default in (("ranking", None), ("naturalness", None)):
        if col not in df:
            df[col] = default
    return df


def _study(n_records: int, *, seed: int, domain_of=lambda r: "Chat", p_label=lambda rec, role, dom: 0.8,  # noqa: ANN001
           n_labels: int = 3, record_sd: float = 0.0) -> tuple[pd.DataFrame, dict, dict]:
    """Records of four responses, each the winner of one group of three prompts (base, rewrite, rewrite).

    Each label picks the winner with probability ``p_label`` (plus a
    record-level shift of sd ``record_sd``: correlated items), else a
    uniform non-winner. Every response gets four distinct Conciseness levels.
    Returns (labels frame, styles, verbose picks: item -> the most verbose response).
    """
    rng = random.Random(seed)
    rows, styles, verbose = [], {}, {}
    item = 0
    for r in range(n_records):
        rid = f"rec{r:03d}"
        dom = domain_of(r)
        levels = rng.sample(range(5), 4)
        styles[rid] = {k: {"Conciseness": CONCISE[lv], "Formality": "neutral"} for k, lv in zip(KEYS, levels)}
        most = KEYS[int(np.argmax(levels))]
        shift = rng.gauss(0, record_sd)
        for g, winner in enumerate(KEYS):
            for p, role in enumerate(("base", "rewrite", "rewrite")):
                item += 1
                verbose[item] = most
                prob = min(max(p_label(rid, role, dom) + shift, 0.0), 1.0)
                for a in range(n_labels):
                    choice = winner if rng.random() < prob else rng.choice([k for k in KEYS if k != winner])
                    rows.append({"item_id": item, "record_id": rid, "domain": dom, "group": g, "prompt_index": p, "role": role,
                                 "winner_key": winner, "choice_key": choice, "naturalness": 5 if role == "base" else 4,
                                 "user_id": a, "annotator": f"a{a}"})
    return _labels(rows), styles, verbose


def _summary_and_draws(labels: pd.DataFrame, draws: int = 400):
    summary = item_summary(labels)
    return summary, record_draws(summary, draws=draws, seed=0)


# --- style profiles ------------------------------------------------------------------------------


def test_verbose_scorer_is_right_only_when_the_winner_is_verbose_and_its_errors_go_verbose():
    labels, styles, verbose = _study(80, seed=0)
    summary, rd = _summary_and_draws(labels)
    sec = referee.style_profiles(summary, rd, styles, {"verbose-rm": verbose})
    chat = sec["by_domain"]["Chat"]["dimensions"]["Conciseness"]
    acc = chat["accuracy_by_winner_level"]
    # the most verbose level always wins the verbose scorer's vote; the tersest never does
    assert acc["verbose"]["scorers"]["verbose-rm"]["value"] == 1.0
    assert acc["terse"]["scorers"]["verbose-rm"]["value"] == 0.0
    assert acc["terse"]["scorers"]["verbose-rm"]["ci"][1] < 0.3  # a non-degenerate interval away from the verbose level
    # people who follow the request are equally accurate whatever the winner's level
    human = [acc[lv]["human"]["BoN"]["value"] for lv in CONCISE]
    assert min(human) > 0.75 and max(human) - min(human) < 0.15
    lab = [acc[lv]["human"]["label_accuracy"]["value"] for lv in CONCISE]
    assert all(0.72 < v < 0.88 for v in lab)
    # the scorer's wrong picks pile on the verbose levels far above the uniform expectation
    wrong = chat["wrong_picks"]["verbose-rm"]
    v = wrong["levels"]["verbose"]
    assert v["observed"] > v["expected"] + 0.2 and v["ci"][0] > 0 and v["p_adjusted"] < 1e-3
    assert wrong["levels"]["terse"]["observed"] == 0.0 and wrong["levels"]["terse"]["difference"] < 0
    assert wrong["lean"]["value"] > 0.8 and wrong["lean"]["ci"][0] > 0 and wrong["lean"]["p_value"] < 1e-3
    # humans' wrong picks are uniform over the non-winners: no lean
    hw = chat["wrong_picks"]["human"]
    assert abs(hw["lean"]["value"]) < 0.25 and hw["lean"]["p_value"] > 0.01
    assert max(abs(c["difference"]) for c in hw["levels"].values()) < 0.08
    # All pools the domains with stratified draws; with one domain it equals Chat
    assert sec["by_domain"]["All"]["dimensions"]["Conciseness"]["accuracy_by_winner_level"]["verbose"]["scorers"]["verbose-rm"]["value"] == 1.0
    # a dimension where every response has the same level: the winner's level is that one, and there is nothing to lean to
    formal = sec["by_domain"]["Chat"]["dimensions"]["Formality"]
    assert list(formal["accuracy_by_winner_level"]) == ["neutral"]
    assert formal["wrong_picks"]["verbose-rm"]["lean"]["value"] == 0.0


def test_style_rows_and_score_tests_match_the_bootstrap_module():
    labels, styles, verbose = _study(12, seed=2)
    summary, rd = _summary_and_draws(labels, draws=50)
    sec = referee.style_profiles(summary, rd, styles, {"v": verbose})
    acc, wrong = referee.style_rows(sec)
    assert {r["who"] for r in acc} == {"human BoN", "human label accuracy", "v BoN"}
    assert {r["who"] for r in wrong} == {"human", "v"}
    # the vectorised score test is Durkalski's, column by column
    rng = np.random.default_rng(0)
    d = rng.normal(size=(40, 3))
    cluster = np.repeat(np.arange(10), 4)
    sums = np.vstack([np.bincount(cluster, weights=d[:, j]) for j in range(3)]).T
    x2, p = referee.score_tests(sums)
    for j in range(3):
        ref = bs.clustered_score_test(d[:, j], cluster)
        assert x2[j] == pytest.approx(ref["statistic"]) and p[j] == pytest.approx(ref["p_value"])


def test_map_styles_by_key_or_by_position():
    style = {"r1": {"Formality": "casual"}, "r2": {"Formality": "formal"}}
    # keys response1..: rN is responseN, whatever the order responses were listed in
    assert referee.map_styles(style, [("response2", 0), ("response1", 1)]) == {
        "response1": {"Formality": "casual"}, "response2": {"Formality": "formal"}}
    # other keys: rN is the N-th response by position
    assert referee.map_styles(style, [("b", 1), ("a", 0)]) == {"a": {"Formality": "casual"}, "b": {"Formality": "formal"}}
    assert referee.map_styles({"r9": {"Formality": "casual"}, "x": "junk"}, [("a", 0)]) == {}


# --- base vs rewrite -------------------------------------------------------------------------------


def test_harder_rewrites_show_the_margin_with_a_small_p():
    labels, _, _ = _study(60, seed=3, p_label=lambda rec, role, dom: 0.9 if role == "base" else 0.6, record_sd=0.05)
    summary, rd = _summary_and_draws(labels)
    sec = referee.base_vs_rewrite(summary, rd)["by_domain"]["Chat"]
    la = sec["label_accuracy"]
    assert la["base"]["value"] > la["rewrite"]["value"]
    assert la["difference"]["difference"] == pytest.approx(0.3, abs=0.06)
    assert la["difference"]["ci"][0] > 0.15 and la["difference"]["p_value"] < 1e-4
    assert sec["BoN"]["difference"]["difference"] > 0.2 and sec["BoN"]["difference"]["p_value"] < 1e-4
    assert sec["naturalness_mean"]["difference"]["difference"] == pytest.approx(1.0)
    # more agreement on the base prompt: pick alpha is higher there too
    assert sec["pick_alpha"]["difference"]["difference"] > 0.2 and sec["pick_alpha"]["difference"]["p_value"] < 0.01


def test_equal_difficulty_gives_no_small_p_in_most_seeds():
    small = 0
    for seed in range(5):
        labels, _, _ = _study(40, seed=10 + seed, p_label=lambda rec, role, dom: 0.7, record_sd=0.1)
        summary, rd = _summary_and_draws(labels, draws=200)
        sec = referee.base_vs_rewrite(summary, rd)["by_domain"]["Chat"]
        assert abs(sec["label_accuracy"]["difference"]["difference"]) < 0.1
        small += sec["label_accuracy"]["difference"]["p_value"] < 0.05
    assert small <= 1


# --- between domains -------------------------------------------------------------------------------------


def _four_domains(acc: dict, seed: int):
    return _study(120, seed=seed, domain_of=lambda r: DOMAINS[r % 4], p_label=lambda rec, role, dom: acc[dom], record_sd=0.1)


def test_equal_accuracy_across_domains_is_not_significant_in_most_seeds():
    significant = 0
    for seed in range(5):
        labels, _, _ = _four_domains({d: 0.7 for d in DOMAINS}, seed=20 + seed)
        summary, rd = _summary_and_draws(labels, draws=100)
        bd = referee.between_domains(summary, rd)["BoN"]
        assert bd["df"] == 3 and bd["domains_tested"] == list(DOMAINS)
        significant += bd["p_value"] < 0.05
    assert significant <= 1


def test_very_different_domains_are_significant():
    labels, _, _ = _four_domains({"Chat": 0.9, "Writing": 0.7, "Reasoning": 0.5, "Safety": 0.4}, seed=30)
    summary, rd = _summary_and_draws(labels, draws=200)
    out = referee.between_domains(summary, rd)
    for metric in ("BoN", "label_accuracy"):
        assert out[metric]["p_value"] < 1e-6 and out[metric]["rao_scott"]["p_value"] < 1e-6
    pair = out["label_accuracy"]["pairwise"]["Chat - Safety"]
    assert pair["difference"] == pytest.approx(0.5, abs=0.08) and pair["ci"][0] > 0.3 and pair["p_adjusted"] < 1e-6
    assert out["label_accuracy"]["pairwise"]["Writing - Reasoning"]["difference"] > 0


# --- tiny data: nulls with reasons ---------------------------------------------------------------------------


def test_tiny_data_gives_nulls_with_reasons():
    labels, styles, verbose = _study(1, seed=4, n_labels=1)
    labels = labels[labels["group"] == 0]  # one group: three items of one record
    summary, rd = _summary_and_draws(labels, draws=50)
    sec = referee.referee_section(summary, rd, styles, {"v": verbose})
    assert _nulls_without_reason(sec) == []
    cell = sec["style_profiles"]["by_domain"]["Chat"]["dimensions"]["Conciseness"]["accuracy_by_winner_level"]
    est = next(c for c in cell.values() if c["n_items"])["human"]["BoN"]
    assert est["value"] is None and "too few" in est["reason"]
    assert any(c["human"]["BoN"]["reason"] == "no items" for c in cell.values())  # a level no labelled winner has
    assert sec["base_vs_rewrite"]["by_domain"]["Chat"]["BoN"]["difference"]["difference"] is None
    assert sec["base_vs_rewrite"]["by_domain"]["Writing"]["reason"] == "no labelled Writing items"
    assert sec["between_domains"]["BoN"]["p_value"] is None and "two or more domains" in sec["between_domains"]["BoN"]["reason"]
    empty = referee.referee_section(item_summary(labels.iloc[:0]), {}, {}, {})
    assert _nulls_without_reason(empty) == []
    assert empty["style_profiles"]["reason"] == "no labels yet"
    none = referee.style_profiles(summary, rd, {}, {})
    assert none["reason"] == "no record has style_assignments"


# --- the report ---------------------------------------------------------------------------------------------------


def test_report_json_has_the_referee_section_with_scorers(engine, benchmark_id, tmp_path):
    ids = item_ids(engine, benchmark_id)
    win = winners(engine, benchmark_id)
    add_labels(engine, [{"annotator": a, "item_id": iid, "choice": win[iid], "naturalness": 4} for iid in ids.values() for a in "ab"])
    _scores_file(engine, benchmark_id, tmp_path, "always-r1", lambda d, k, w, *_: float(k == "response1"))
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)
    ref = report["referee"]
    assert set(ref) == {"style_profiles", "base_vs_rewrite", "between_domains"}
    sp = ref["style_profiles"]
    assert sp["scorers"] == ["always-r1"]
    assert set(sp["dimensions"]) == set(referee.DIMENSIONS)
    # the styles were read from the database: every labelled item's winner has a level
    assert sp["by_domain"]["All"]["n_items_with_styles"] == len(ids)
    # every wrong pick of a scorer that always says response1 is response1
    wrong = sp["by_domain"]["All"]["dimensions"]["Formality"]["wrong_picks"]["always-r1"]
    assert wrong["n_wrong"] == len(ids) * 3 // 4
    assert ref["base_vs_rewrite"]["by_domain"]["All"]["BoN"]["base"]["value"] == 1.0
    assert _nulls_without_reason(ref) == []
    json.dumps(ref)  # plain data
    # the styles come from the file: r1 is response1's profile; parsed once per benchmark (records never change)
    styles = referee.load_styles(engine=engine, benchmark_id=benchmark_id)
    from rmgap_annot.synthetic import make_records

    first = make_records({"Chat": 2, "Writing": 2, "Reasoning": 2, "Safety": 2}, seed=1, long_text=False)[0]
    assert styles[first["id"]]["response1"] == first["style_assignments"]["r1"]
    assert referee.load_styles(engine=engine, benchmark_id=benchmark_id) is styles


def _labelled_benchmark(db_url, tmp_path):
    """Six records per domain, three labels per item (70% on the winner), a verbose-loving scorer."""
    from rmgap_annot.formats.rmgap import import_benchmark
    from rmgap_annot.db import get_engine, init_db
    from rmgap_annot.synthetic import make_records, write_jsonl

    init_db(db_url)
    engine = get_engine(db_url)
    path = write_jsonl(tmp_path / "b.jsonl", make_records({d: 6 for d in DOMAINS}, seed=2, long_text=False))
    bid = import_benchmark(engine=engine, path=path, name="b").benchmark_id
    rng = random.Random(0)
    win = winners(engine, bid)
    add_labels(engine, [{"annotator": f"a{a}", "item_id": iid, "naturalness": 4,
                         "choice": win[iid] if rng.random() < 0.7 else rng.choice(KEYS)}
                        for iid in item_ids(engine, bid).values() for a in range(3)])
    _scores_file(engine, bid, tmp_path, "keyed", lambda d, k, w, *_: float(KEYS.index(k)))
    return engine, bid


def test_results_page_shows_the_referee_tab(db_url, monkeypatch, tmp_path):
    """A benchmark big enough for every cell: the tab draws the style chart and the three tables."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from rmgap_annot.accounts import create_user

    engine, _ = _labelled_benchmark(db_url, tmp_path)
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    uid = create_user(engine=engine, name="res", role="researcher")
    at = AppTest.from_file(str(__import__("pathlib").Path(__file__).resolve().parent.parent / "pages" / "results.py"),
                           default_timeout=60)
    at.session_state["user_id"] = uid
    at.session_state["role"] = "researcher"
    at.run()
    assert not at.exception, at.exception
    tab = next(t for t in at.tabs if t.label == "Referee analyses")
    heads = [h.value for h in tab.subheader]
    assert heads[0] == "Style profiles: accuracy by the winner's level"
    assert "Base prompt vs its two paraphrases" in heads and "Does human accuracy differ between domains?" in heads
    assert [c.type for c in tab.children.values()].count("vega_lite_chart") == 1
    frames = tab.dataframe
    assert len(frames) >= 5
    assert set(frames[0].value["who"]) == {"human BoN", "keyed BoN"}  # the default series: humans and scorers


def test_dataset_card_has_the_referee_section(db_url, tmp_path):
    from rmgap_annot.export import write_export

    engine, bid = _labelled_benchmark(db_url, tmp_path)
    write_export(engine=engine, benchmark_id=bid, out_dir=tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    section = card.split("## Referee analyses")[1]
    assert "| dimension | human | keyed |" in section
    for dim in referee.DIMENSIONS:
        assert re.search(rf"^\| {dim} \| [+-]\d\.\d\d \[", section, re.M), dim
    assert re.search(r"^\| All \| [+-]\d+\.\d pp \[", section, re.M)  # base minus rewrite BoN with its interval
    assert re.search(r"^- BoN: chi-square \d+\.\d\d on 3 df, p ", section, re.M)


def test_all_pools_the_domains_and_counts_each_record_once():
    labels, styles, verbose = _four_domains({"Chat": 0.9, "Writing": 0.7, "Reasoning": 0.5, "Safety": 0.4}, seed=5)
    summary, rd = _summary_and_draws(labels, draws=100)
    sec = referee.style_profiles(summary, rd, styles, {"v": verbose})
    level = {(r, k): p["Conciseness"] for r, prof in styles.items() for k, p in prof.items()}
    win_level = np.array([level[(r, w)] for r, w in zip(summary["record_id"], summary["winner_key"])])
    for lv in ("terse", "verbose"):
        sel = win_level == lv
        cell = sec["by_domain"]["All"]["dimensions"]["Conciseness"]["accuracy_by_winner_level"][lv]
        assert cell["human"]["BoN"]["value"] == pytest.approx(summary["matches_winner"][sel].mean())
        assert cell["n_records"] == summary["record_id"][sel].nunique()
        per_domain = [sec["by_domain"][d]["dimensions"]["Conciseness"]["accuracy_by_winner_level"][lv]["n_items"] for d in DOMAINS]
        assert cell["n_items"] == sum(per_domain) == sel.sum()
    wrong = sec["by_domain"]["All"]["dimensions"]["Conciseness"]["wrong_picks"]["human"]
    assert wrong["n_wrong"] == sum(sec["by_domain"][d]["dimensions"]["Conciseness"]["wrong_picks"]["human"]["n_wrong"] for d in DOMAINS)
    # the interval of the pooled figure is narrower than any one domain's
    width = lambda e: e["ci"][1] - e["ci"][0]  # noqa: E731
    all_cell = sec["by_domain"]["All"]["dimensions"]["Conciseness"]["accuracy_by_winner_level"]["moderate"]["human"]["label_accuracy"]
    assert all(width(all_cell) < width(sec["by_domain"][d]["dimensions"]["Conciseness"]["accuracy_by_winner_level"]["moderate"]["human"]["label_accuracy"])
               for d in DOMAINS)


def test_text_report_summarises_the_referee_section(db_url, tmp_path):
    from rmgap_annot.report import format_report

    engine, bid = _labelled_benchmark(db_url, tmp_path)
    text = format_report(build_report(engine=engine, benchmark_id=bid, draws=50))
    block = text.split("Referee analyses")[1]
    assert re.search(r"human BoN differs between domains: chi2=\d+\.\d\d on 3 df, p=", block)
    assert re.search(r"BoN base minus rewrite prompts: [-\d.]+% \[", block)
    assert re.search(r"Conciseness lean of wrong picks .*human [+-]\d\.\d\d; keyed [+-]\d\.\d\d", block)


def test_an_all_correct_domain_keeps_the_test_defined():
    labels, _, _ = _study(60, seed=6, domain_of=lambda r: DOMAINS[r % 2], p_label=lambda rec, role, dom: 1.0 if dom == "Chat" else 0.6)
    summary, rd = _summary_and_draws(labels, draws=100)
    bd = referee.between_domains(summary, rd)["BoN"]
    chat = bd["domains"]["Chat"]
    assert chat["value"] == 1.0 and chat["variance"] > 0 and "pooled" in chat["variance_note"]
    assert bd["domains_tested"] == ["Chat", "Writing"] and bd["p_value"] < 1e-6
    assert bd["domains"]["Reasoning"]["reason"] == "no labelled Reasoning items"
    # its interval is not [1, 1]: the Wilson fallback on the effective sample size
    sec = referee.base_vs_rewrite(summary, rd)["by_domain"]["Chat"]["BoN"]["base"]
    assert sec["value"] == 1.0 and sec["ci"][0] < 1.0 and "Wilson" in sec["ci_method"]
