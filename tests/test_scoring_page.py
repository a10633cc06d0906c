"""The Reward models page through AppTest: side by side, a job from the form."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from rmgap_annot.studies import item_study_id
from rmgap_annot.accounts import create_user
from rmgap_annot.db import session_scope
from rmgap_annot.jobs import list_jobs
from rmgap_annot.models import Item, Label
from rmgap_annot.scoring.runner import run_scoring

PAGE = Path(__file__).resolve().parents[1] / "pages" / "reward_models.py"


def test_page_shows_side_by_side_and_starts_a_job(engine, benchmark_id, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    researcher = create_user(engine=engine, name="res", role="researcher", password="correct horse")
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="length")
    with session_scope(engine, write=True) as session:
        for item_id, winner in session.execute(select(Item.id, Item.winner_key).where(Item.benchmark_id == benchmark_id)).all()[:24]:
            session.add(Label(study_id=item_study_id(session, item_id), user_id=researcher, item_id=item_id, choice_key=winner))
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["user_id"] = researcher
    at.run()
    assert not at.exception, at.exception
    shown = " ".join(str(m.value) for m in at.markdown)
    assert "**BoN**" in shown and "**TopConsistency**" in shown and "clustered McNemar" in shown
    assert any("human" in str(df.value) for df in at.dataframe)

    at.text_input[0].input("random")
    at.text_input[1].input("page-random")
    at.button[0].click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = list_jobs(engine=engine)[0]
        if job.status in ("done", "failed"):
            break
        time.sleep(0.3)
    assert (job.scorer_name, job.status, job.done) == ("page-random", "done", 24)  # --items labelled by default


def test_page_refuses_annotators(engine, db_url, monkeypatch):
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    annotator = create_user(engine=engine, name="ann", role="annotator", password="correct horse")
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["user_id"] = annotator
    at.run()
    assert at.error and not at.dataframe


def test_page_caches_the_comparison_until_scores_change(engine, benchmark_id, db_url, monkeypatch):
    """The 1,000-draw comparison of every scorer is computed once per set of labels and scores, not per visit."""
    import streamlit as st

    from rmgap_annot.stats import comparison

    st.cache_data.clear()  # the cache is per process: another test's database must not answer here
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    researcher = create_user(engine=engine, name="res", role="researcher", password="correct horse")
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="length")
    with session_scope(engine, write=True) as session:
        for item_id, winner in session.execute(select(Item.id, Item.winner_key).where(Item.benchmark_id == benchmark_id)).all()[:24]:
            session.add(Label(study_id=item_study_id(session, item_id), user_id=researcher, item_id=item_id, choice_key=winner))
    calls = []
    real = comparison.side_by_side

    def counting(**kwargs):  # the real computation, counted
        calls.append(kwargs["benchmark_id"])
        return real(**kwargs)

    monkeypatch.setattr(comparison, "side_by_side", counting)
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["user_id"] = researcher
    at.run()
    at.run()
    assert not at.exception, at.exception
    assert len(calls) == 1
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="random", name="rand")
    at.run()
    assert not at.exception, at.exception
    assert len(calls) == 2
    assert any("rand" in str(df.value) for df in at.dataframe)
