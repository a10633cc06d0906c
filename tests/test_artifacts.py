"""Artifact checks: the shallow-cue ceiling, organic vs tailored prompts, the cache, the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from rmgap_annot.stats import artifacts as A
from tests.analytics_helpers import add_labels, winners

WORDS = (
    "river garden window paper market summer engine letter silver forest number camera island yellow "
    "doctor bridge winter basket planet pencil orange school travel family kitchen music motor cotton"
).split()


def _text(rng: random.Random, n_chars: int) -> str:
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < n_chars:
        out.append(rng.choice(WORDS))
    return " ".join(out)


def _items(n_records: int = 150, *, planted: float | None, seed: int = 0, n_prompts: int = 4) -> list[A.CandidateItem]:
    """Generic items (4 candidates sharing a record's texts); ``planted``: share whose winner is the longest."""
    rng = random.Random(seed)
    items = []
    domains = ("Chat", "Writing", "Reasoning", "Safety")
    for r in range(n_records):
        lengths = rng.sample(range(60, 900), 4)
        cands = tuple((f"k{j}", _text(rng, n)) for j, n in enumerate(lengths))
        longest = f"k{int(np.argmax([len(t) for _, t in cands]))}"
        for p in range(n_prompts):
            if planted is not None and rng.random() < planted:
                winner = longest
            elif planted is not None:
                winner = rng.choice([k for k, _ in cands if k != longest])
            else:
                winner = rng.choice([k for k, _ in cands])
            items.append(A.CandidateItem(f"r{r}/{p}", f"r{r}", domains[r % 4], _text(rng, rng.randint(40, 160)), cands, winner))
    return items


# --- shallow-cue ceiling ---------------------------------------------------------------------


def test_planted_length_cue_is_found_and_named():
    items = _items(planted=0.9)
    res = A.shallow_cue_ceiling(items, draws=200)
    model = res["methods"]["shallow_model"]
    assert model["BoN"]["Avg"] > 0.7  # chance is 0.25; the cue gives ~0.9
    for d in ("Chat", "Writing", "Reasoning", "Safety"):
        assert model["BoN"][d] > 0.5
        lo, hi = model["ci"]["BoN"][d]
        assert lo <= model["BoN"][d] <= hi
    assert res["top_family"] == "length"
    assert res["top_feature"] in ("length_log", "length_ratio")
    assert res["features"][0]["weight"] > 0  # longer wins
    assert res["carried_by"] == "length"  # refitting without the length cues costs the most
    assert res["family_ablation"][0]["family"] == "length" and res["family_ablation"][0]["BoN_drop"] > 0.1  # overlap with a 28-word vocabulary grows with length too
    # The zero-training "longest" baseline sees the same cue.
    assert res["methods"]["longest"]["BoN"]["Avg"] > 0.8
    assert res["chance"]["BoN"] == pytest.approx(0.25)


def test_without_a_cue_the_ceiling_stays_near_chance():
    res = A.shallow_cue_ceiling(_items(planted=None, seed=3), draws=200)
    bon = res["methods"]["shallow_model"]["BoN"]["Avg"]
    assert 0.15 < bon < 0.35
    assert 0.4 < res["methods"]["shallow_model"]["Pair"]["Avg"] < 0.6
    lo, hi = res["methods"]["shallow_model"]["ci"]["BoN"]["Avg"]
    assert lo < 0.25 < hi
    assert all(abs(r["BoN_drop"]) < 0.1 for r in res["family_ablation"])


def test_folds_never_split_a_record():
    items = _items(n_records=40, planted=0.9, n_prompts=12)
    res = A.shallow_cue_ceiling(items, draws=0)
    folds_of_record: dict[str, set[int]] = {}
    for it, f in zip(items, res["_item_folds"]):
        folds_of_record.setdefault(it.record, set()).add(f)
    assert res["n_folds"] == 5
    assert all(len(f) == 1 for f in folds_of_record.values()), "a record's items sit in two folds (train and test)"
    # And at the CV level: no group is in a fold's test rows and its training rows at once.
    X, row_item, _ = A.shallow_features(items)
    groups = np.array([items[i].record for i in row_item])
    y = np.array([float(k == it.winner) for it in items for k, _ in it.candidates])
    _, fold, coefs = A.cross_validated_scores(X, y, groups)
    for f in np.unique(fold):
        assert not set(groups[fold == f]) & set(groups[fold != f])
    assert coefs.shape == (5, len(A.feature_table()))


def test_features_are_centred_within_each_item():
    items = _items(n_records=10, planted=0.9)
    X, row_item, _ = A.shallow_features(items)
    for i in range(len(items)):
        assert np.allclose(X[row_item == i].sum(axis=0), 0, atol=1e-9)


def test_outcomes_count_a_tie_as_a_loss_and_take_any_number_of_candidates():
    cands3 = (("a", "x"), ("b", "yy"), ("c", "zzz"))
    items = [A.CandidateItem(1, "r1", "Chat", "p", cands3, "c"), A.CandidateItem(2, "r2", "Chat", "p", cands3[:2], "a")]
    bon, won, total = A.item_outcomes(items, [[1.0, 2.0, 2.0], [3.0, 1.0]])
    assert bon.tolist() == [0.0, 1.0] and won.tolist() == [1.0, 1.0] and total.tolist() == [2.0, 1.0]
    summary = A.summarise_outcomes(items, bon, won, total, draws=0)
    assert summary["BoN"]["Chat"] == 0.5 and summary["Pair"]["Chat"] == pytest.approx(2 / 3)


def test_record_bootstrap_keeps_each_stratum_size():
    strata = np.array([0, 0, 0, 1, 1, 2])
    w = A._record_bootstrap(strata, draws=50, seed=1)
    assert w.shape == (50, 6)
    assert (w[:, :3].sum(axis=1) == 3).all() and (w[:, 3:5].sum(axis=1) == 2).all() and (w[:, 5] == 1).all()


def test_record_clustered_interval_is_wider_than_an_item_level_one():
    # Outcomes identical within a record: 12 items are one piece of evidence, not twelve.
    rng = random.Random(0)
    items, bon = [], []
    for r in range(60):
        ok = float(rng.random() < 0.5)
        for p in range(12):
            items.append(A.CandidateItem(f"{r}/{p}", f"r{r}", "Chat", "p", (("a", "x"), ("b", "y")), "a"))
            bon.append(ok)
    bon = np.array(bon)
    clustered = A.summarise_outcomes(items, bon, bon, np.ones(len(bon)), draws=500)["ci"]["BoN"]["Chat"]
    flat_items = [A.CandidateItem(it.item_id, str(it.item_id), it.domain, it.prompt, it.candidates, it.winner) for it in items]
    flat = A.summarise_outcomes(flat_items, bon, bon, np.ones(len(bon)), draws=500)["ci"]["BoN"]["Chat"]
    assert (clustered[1] - clustered[0]) > 2 * (flat[1] - flat[0])


def test_record_bootstrap_covers_a_known_truth_where_an_item_bootstrap_does_not():
    # Records differ in difficulty (p_r ~ Beta(2, 2), truth 0.5); 12 items per record share it.
    rng = np.random.default_rng(7)
    n_rec, per = 50, 12
    clustered_hits = flat_hits = 0
    reps = 200
    items = [A.CandidateItem(i, f"r{i // per}", "Chat", "p", (), "") for i in range(n_rec * per)]
    flat_items = [A.CandidateItem(i, f"i{i}", "Chat", "p", (), "") for i in range(n_rec * per)]
    for rep in range(reps):
        p = np.repeat(rng.beta(2, 2, size=n_rec), per)
        bon = (rng.random(n_rec * per) < p).astype(float)
        ones = np.ones(len(bon))
        lo, hi = A.summarise_outcomes(items, bon, bon, ones, draws=200, seed=rep)["ci"]["BoN"]["Chat"]
        clustered_hits += lo <= 0.5 <= hi
        lo, hi = A.summarise_outcomes(flat_items, bon, bon, ones, draws=200, seed=rep)["ci"]["BoN"]["Chat"]
        flat_hits += lo <= 0.5 <= hi
    assert clustered_hits / reps >= 0.88  # nominal 0.95
    assert flat_hits / reps <= 0.85  # treating items as independent under-covers


def test_paired_difference_resamples_both_sides_together():
    rng = random.Random(2)
    items = [A.CandidateItem(i, f"r{i // 12}", ("Chat", "Safety")[i // 240], "p", (), "") for i in range(480)]
    b = np.array([float(rng.random() < 0.4) for _ in items])
    same = A.paired_bon_difference(items, b, b, draws=200)
    assert same["difference"]["Chat"] == 0 and same["ci"]["difference"]["Chat"] == [0.0, 0.0]
    a = np.maximum(b, np.array([float(i % 10 == 0) for i in range(480)]))  # a = b plus a few more correct
    res = A.paired_bon_difference(items, a, b, draws=200)
    lo, hi = res["ci"]["difference"]["Avg"]
    assert 0 < lo <= res["difference"]["Avg"] <= hi
    # Paired: far narrower than the two sides' own intervals.
    assert hi - lo < (res["ci"]["a"]["Avg"][1] - res["ci"]["a"]["Avg"][0])


# --- organic vs tailored -----------------------------------------------------------------------


SENTENCES = [
    "Tell me how to keep basil alive on a windowsill.", "Find a cheap way to get from the airport to the city.",
    "Explain why bread goes stale so fast.", "Suggest a gift for a friend who likes hiking.",
    "Describe how a bicycle gear works.", "Help me plan meals for a busy week.",
    "Recommend a board game for four people.", "Tell me what to see in Rome in one day.",
    "Explain how a mortgage payment is split.", "Suggest a name for a small bakery.",
    "Describe the rules of cricket for a beginner.", "Help me fix a leaking kitchen tap.",
]


def _prompts(n_records: int, sentences_per_prompt: int, rng: random.Random) -> list[A.BenchmarkPrompt]:
    out = []
    for r in range(n_records):
        for p in range(3):
            text = " ".join(rng.sample(SENTENCES, sentences_per_prompt))
            out.append(A.BenchmarkPrompt(f"{r}/{p}", f"r{r}", ("Chat", "Writing", "Reasoning", "Safety")[r % 4], text))
    return out


def test_organic_set_differing_only_in_length_is_separated_by_length():
    rng = random.Random(0)
    tailored = _prompts(80, 4, rng)
    organic = sorted({" ".join(rng.sample(SENTENCES, 1)) + f" Thanks {i}." for i in range(60)})
    res = A.organic_vs_tailored(tailored, organic, draws=200)
    assert res["auc"] > 0.95
    assert res["ci"][0] > 0.85
    assert res["top_feature"] == "length_log"
    assert res["features"][0]["weight"] > 0  # longer looks tailored


def test_two_samples_of_the_same_prompts_are_not_separable():
    rng = random.Random(1)
    tailored = _prompts(80, 2, rng)
    organic = sorted({" ".join(rng.sample(SENTENCES, 2)) for _ in range(200)})
    res = A.organic_vs_tailored(tailored, organic, draws=200)
    assert abs(res["auc"] - 0.5) < 0.15
    assert res["ci"][0] < 0.5 + 0.15 and res["ci"][1] > 0.5 - 0.15


def test_weighted_auc_matches_scikit_learn():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=300), 1)  # ties included
    y = rng.random(300) < 0.3
    w = rng.integers(0, 4, size=300).astype(float)
    uniq, u_idx = np.unique(scores, return_inverse=True)
    assert A._weighted_auc(u_idx, y, w, len(uniq)) == pytest.approx(roc_auc_score(y, scores, sample_weight=w))
    assert A._weighted_auc(u_idx, y, np.ones(300), len(uniq)) == pytest.approx(roc_auc_score(y, scores))


def test_persona_and_style_requests_are_detected():
    f = dict(zip([n for n, _, _ in A.PROMPT_FEATURES], A.prompt_features("I am a nurse. Explain insulin briefly, in bullet points?")))
    assert f["persona"] == 1 and f["style_request"] == 1 and f["format_request"] == 1 and f["question"] == 1
    g = dict(zip([n for n, _, _ in A.PROMPT_FEATURES], A.prompt_features("how do magnets work")))
    assert g["persona"] == 0 and g["style_request"] == 0 and g["question"] == 0
    assert A.style_requests("Keep it short and casual")["brief"] == 1
    assert A.style_requests("Keep it short and casual")["casual"] == 1


# --- the organic file ------------------------------------------------------------------------------


def test_bundled_organic_sample_reads(tmp_path):
    org = A.read_organic_prompts(A.organic_sample_path())
    assert 40 <= len(org.prompts) <= 60 and len(set(org.prompts)) == len(org.prompts)
    plain = tmp_path / "organic.txt"
    plain.write_text("\n".join(org.prompts[:10]) + "\n\n", encoding="utf-8")
    assert A.read_organic_prompts(plain).prompts == org.prompts[:10]


def test_bad_organic_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine one"}\n{"text": "no prompt"}\nnot json\n{"prompt": ""}\n', encoding="utf-8")
    with pytest.raises(A.OrganicFileError) as exc:
        A.read_organic_prompts(bad)
    msgs = [str(e) for e in exc.value.errors]
    assert msgs[0].startswith(f"{bad}:2: prompt: missing")
    assert msgs[1].startswith(f"{bad}:3: (line): not valid JSON")
    assert msgs[2].startswith(f"{bad}:4: prompt:")
    few = tmp_path / "few.txt"
    few.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(A.OrganicFileError, match="at least 5 distinct prompts"):
        A.read_organic_prompts(few)


# --- on the database: cache, people, CLI ------------------------------------------------------------


def test_checks_are_cached_and_people_join_fresh(engine, benchmark_id, tmp_path):
    org = A.read_organic_prompts(A.organic_sample_path())
    assert A.cached_artifact_checks(engine=engine, benchmark_id=benchmark_id, organic=org, draws=50) is None
    first = A.artifact_checks(engine=engine, benchmark_id=benchmark_id, organic=org, draws=50)
    assert first["cached"] is False and first["human"] == {"reason": "no labels yet"}
    files = sorted(f.name for f in (tmp_path / "cache").glob("artifacts-*.json"))
    assert len(files) == 2 and sum(f.endswith("-organic.json") for f in files) == 1  # the shallow-cue fit and the organic fit
    # Labels arrive: the cached fit is reused and the human columns are current.
    win = winners(engine, benchmark_id)
    add_labels(engine, [{"annotator": "ann", "item_id": i, "choice": w, "naturalness": 4} for i, w in win.items()])
    again = A.cached_artifact_checks(engine=engine, benchmark_id=benchmark_id, organic=org, draws=50)
    assert again["cached"] is True
    assert again["shallow_cue"]["methods"] == first["shallow_cue"]["methods"]
    assert again["human"]["BoN"]["Chat"] == 1.0
    assert again["organic"]["by_domain"]["Chat"]["naturalness_mean"] == 4.0
    on = again["shallow_cue"]["on_labelled_items"]
    assert on["n_items"]["Chat"] == 24 and on["people_BoN"]["Chat"] == 1.0
    assert on["difference"]["Chat"] == pytest.approx(1.0 - on["shallow_model_BoN"]["Chat"])
    assert first["shallow_cue"]["on_labelled_items"] == {"reason": "no labels yet"}
    assert "_item_folds" not in again["shallow_cue"] and "_item_p_tailored" not in again["organic"]
    # Without organic prompts (as the verdict asks) the shallow-cue fit is reused.
    alone = A.cached_artifact_checks(engine=engine, benchmark_id=benchmark_id, organic=None, draws=50)
    assert alone["shallow_cue"]["methods"] == first["shallow_cue"]["methods"] and "reason" in alone["organic"]
    # Another organic file is another organic fit, and only that.
    other = tmp_path / "other.txt"
    other.write_text("\n".join(org.prompts[:20]), encoding="utf-8")
    org2 = A.read_organic_prompts(other)
    assert A.cached_artifact_checks(engine=engine, benchmark_id=benchmark_id, organic=org2, draws=50) is None
    third = A.artifact_checks(engine=engine, benchmark_id=benchmark_id, organic=org2, draws=50)
    assert third["organic"]["n_organic"] == 20 and third["shallow_cue"]["methods"] == first["shallow_cue"]["methods"]
    assert len(list((tmp_path / "cache").glob("artifacts-*.json"))) == 3


def test_cli_json(cli, benchmark_id, tmp_path):
    res = cli("artifacts", "--json", "--draws", "50", "--organic", str(A.organic_sample_path()))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["benchmark"] == "small" and out["cached"] is False
    assert {"shallow_model", "tfidf_cosine", "longest"} == set(out["shallow_cue"]["methods"])
    assert out["shallow_cue"]["methods"]["longest"]["BoN"]["Chat"] == 0.25  # each response wins one group
    assert out["shallow_cue"]["features"][0]["feature"] == out["shallow_cue"]["top_feature"]
    assert 0.0 <= out["organic"]["auc"] <= 1.0 and out["organic"]["n_organic"] == 52
    again = json.loads(cli("artifacts", "--json", "--draws", "50", "--organic", str(A.organic_sample_path())).stdout)
    assert again["cached"] is True and again["organic"]["auc"] == out["organic"]["auc"]
    text = cli("artifacts", "--draws", "50")
    assert text.exit_code == 0 and "Shallow-cue ceiling" in text.stdout and "Organic vs tailored: n/a" in text.stdout


def test_cli_bad_organic_file_exits_2(cli, benchmark_id, tmp_path):
    bad = tmp_path / "organic.jsonl"
    bad.write_text('{"prompt": 3}\n', encoding="utf-8")
    res = cli("artifacts", "--organic", str(bad))
    assert res.exit_code == 2
    assert f"{bad}:1: prompt: must be a non-empty string" in res.stderr
    assert not (tmp_path / "cache").exists()


def test_results_page_fits_only_on_the_button_then_reads_the_cache(engine, benchmark_id, db_url, monkeypatch, tmp_path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from rmgap_annot.accounts import create_user

    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    uid = create_user(engine=engine, name="res", role="researcher")
    page = str(Path(__file__).resolve().parent.parent / "pages" / "results.py")
    at = AppTest.from_file(page, default_timeout=90)
    at.session_state["user_id"] = uid
    at.session_state["role"] = "researcher"
    at.run()
    assert not at.exception, at.exception
    assert "Artifact checks" in [h.value for h in at.header]
    assert not list((tmp_path / "cache").glob("artifacts-*.json"))  # a page load never fits
    button = next(b for b in at.button if b.label == "Compute artifact checks")
    button.click().run()
    assert not at.exception, at.exception
    assert len(list((tmp_path / "cache").glob("artifacts-*.json"))) == 2  # shallow-cue and organic parts
    tables = [df.value for df in at.dataframe]
    assert any("method" in t.columns and "shallow-cue model (logistic regression, grouped CV)" in t["method"].tolist() for t in tables)
    assert any("AUC" in t.columns for t in tables)
    # A fresh session reads the cached fit: no button.
    st.cache_data.clear()
    at2 = AppTest.from_file(page, default_timeout=90)
    at2.session_state["user_id"] = uid
    at2.session_state["role"] = "researcher"
    at2.run()
    assert not at2.exception, at2.exception
    assert not [b for b in at2.button if b.label == "Compute artifact checks"]
    assert any("AUC" in df.value.columns for df in at2.dataframe)
    # With labels, the people sit beside the model on the same items (the tabs render above).
    win = winners(engine, benchmark_id)
    add_labels(engine, [{"annotator": "ann", "item_id": i, "choice": w, "naturalness": 5} for i, w in win.items()])
    st.cache_data.clear()
    at3 = AppTest.from_file(page, default_timeout=90)
    at3.session_state["user_id"] = uid
    at3.session_state["role"] = "researcher"
    at3.run()
    assert not at3.exception, at3.exception
    paired = next(df.value for df in at3.dataframe if "people minus model" in df.value.columns)
    assert paired["people BoN"].iloc[0].startswith("100.0%")
    assert len(list((tmp_path / "cache").glob("artifacts-*.json"))) == 2  # labels never trigger a refit


def test_demo_precomputes_the_checks(engine):
    from rmgap_annot.demo import seed_demo

    bench_id = seed_demo(engine=engine).benchmark.benchmark_id
    org = A.read_organic_prompts(A.organic_sample_path())
    cached = A.cached_artifact_checks(engine=engine, benchmark_id=bench_id, organic=org)
    assert cached is not None and cached["cached"] is True
    assert cached["human"]["BoN"]["Chat"] is not None  # the simulated crowd's labels join in
    assert cached["organic"]["by_domain"]["Chat"]["naturalness_n"] > 0


def test_one_record_is_na_with_a_reason_not_a_crash(engine, tmp_path, record_factory, cli):
    from rmgap_annot.formats.rmgap import import_benchmark
    from rmgap_annot.synthetic import write_jsonl

    import_benchmark(engine=engine, path=write_jsonl(tmp_path / "one.jsonl", [record_factory("solo")]), name="one")
    res = cli("artifacts", "--json", "--draws", "20", "--organic", str(A.organic_sample_path()))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "at least 2 records" in out["shallow_cue"]["reason"]
    assert "at least 2 benchmark records" in out["organic"]["reason"]
    assert "n/a" in cli("artifacts", "--draws", "20").stdout
