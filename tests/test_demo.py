"""The bundled sample and `make demo`'s seeding step."""

from __future__ import annotations

import json
import re
from collections import Counter

from sqlalchemy import func, select

from rmgap_annot.accounts import authenticate
from rmgap_annot.formats.rmgap import parse_file, sample_path
from rmgap_annot.db import session_scope
from rmgap_annot.assignment import next_item
from rmgap_annot.demo import CROWD, DEMO_ACCOUNTS, seed_demo
from rmgap_annot.models import Benchmark, Item, Label, Score, User
from rmgap_annot.report import build_report


def test_sample_validates_and_covers_what_real_texts_hold():
    parsed = parse_file(sample_path())
    records = [r.data for r in parsed.records]
    assert Counter(r["domain"] for r in records) == {"Chat": 3, "Writing": 3, "Reasoning": 3, "Safety": 3}
    texts = [resp["text"] for r in records for resp in r["responses"]]
    texts += [p["text"] for r in records for g in r["prompt_groups"] for p in g["prompts"]]
    everything = "\n".join(texts)
    assert "```" in everything, "a code fence"
    assert "$$" in everything or re.search(r"\$[^$\n]+\$", everything), "LaTeX"
    assert re.search(r"^\s*#+ |\n\s*[-*] ", everything, re.M), "markdown"
    assert re.search(r"[\u0400-\u04FF\u0600-\u06FF\u0900-\u097F\u3040-\u30FF\u4E00-\u9FFF]", everything), "a non-Latin script"
    assert max(len(t) for t in texts) >= 3000, "one response of several thousand characters"
    for r in records:
        assert set(r["style_assignments"]) == {"r1", "r2", "r3", "r4"}


def test_seed_demo_twice_duplicates_nothing(engine):
    first = seed_demo(engine=engine)
    assert first.benchmark.created
    assert [(n, r) for n, r, _ in first.new_accounts] == list(DEMO_ACCOUNTS)
    name, role, password = first.new_accounts[0]
    assert authenticate(engine=engine, name=name, password=password).ok
    second = seed_demo(engine=engine)
    assert not second.benchmark.created and second.new_accounts == []
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Benchmark)).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == len(DEMO_ACCOUNTS) + len(CROWD)
        assert s.execute(select(func.count()).select_from(Item)).scalar_one() == 12 * 12
        # Simulated labels on half the records (6 x 12 items x 3 annotators), once.
        assert s.execute(select(func.count()).select_from(Label)).scalar_one() == 6 * 12 * 3
        assert s.execute(select(func.count()).select_from(Score)).scalar_one() == 12 * 12 * 4
    # The password printed the first time still works: nothing was reset.
    assert authenticate(engine=engine, name=name, password=password).ok


def test_seed_demo_cli_prints_passwords_once(cli):
    out1 = cli("seed-demo").output
    assert "passwords shown only now" in out1 and "users set-password NAME" in out1
    assert "users invite NAME" in out1  # how to invite real annotators
    for name, role in DEMO_ACCOUNTS:
        assert re.search(rf"{name}\s+{role}\s+\S+", out1)
    out2 = cli("seed-demo").output
    assert "already exist" in out2 and "Reusing" in out2


def test_sample_ships_inside_the_package():
    assert sample_path().is_file()
    first = json.loads(sample_path().read_text(encoding="utf-8").splitlines()[0])
    assert len(first["responses"]) == 4


def test_demo_shows_real_numbers_and_leaves_work_for_people(engine):
    seed = seed_demo(engine=engine)
    report = build_report(engine=engine, benchmark_id=seed.benchmark.benchmark_id, draws=50)
    alpha = report["agreement"]["choice_alpha"]["All"]
    assert alpha["alpha"] is not None and alpha["n_items"] == 72
    assert all(report["human"]["BoN"][d] is not None for d in ("Chat", "Writing", "Reasoning", "Safety"))
    assert report["scorers"]["length"]["BoN"]["Avg"] == 0.25  # prompt-independent: one winner per group
    # A real annotator still gets an unlabelled item (from the other half).
    with session_scope(engine) as s:
        uid = s.execute(select(User.id).where(User.name == "alice")).scalar_one()
    item = next_item(engine=engine, user_id=uid, benchmark_id=seed.benchmark.benchmark_id)
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Label).where(Label.item_id == item)).scalar_one() == 0


def test_demo_passwords_can_be_changed_from_the_cli(cli, engine):
    out = cli("seed-demo").output
    password = re.search(r"alice\s+annotator\s+(\S+)", out).group(1)
    res = cli("users", "set-password", "alice", "--password-stdin", input="a-new-secret-9\n")
    assert res.exit_code == 0 and "changed" in res.output
    assert not authenticate(engine=engine, name="alice", password=password).ok
    assert authenticate(engine=engine, name="alice", password="a-new-secret-9").ok
    short = cli("users", "set-password", "alice", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "at least 8" in short.stderr
    assert authenticate(engine=engine, name="alice", password="a-new-secret-9").ok


def test_make_demo_runs_streamlit_without_the_file_watcher():
    """The watcher floods the log with "Inotify queue overflowed" and is of no use to a demo."""
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    run = next(line for line in recipe.splitlines() if "streamlit run" in line)
    assert "--server.fileWatcherType none" in run


def test_simulated_annotators_are_marked_as_such(engine):
    seed_demo(engine=engine)
    with session_scope(engine) as s:
        names = set(s.execute(select(User.name).join(Label, Label.user_id == User.id)).scalars())
    assert names and all(n.startswith("sim-") for n in names)  # every demo label is a simulated one


def test_the_simulated_warning_belongs_to_the_benchmark_the_sims_labelled(engine, db_url, monkeypatch):
    """The demo's sim-... crowd labels the RMGAP sample; a benchmark people labelled carries no warning about
    them (it did, on every page, once any benchmark had simulated labels)."""
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from rmgap_annot.accounts import create_user
    from rmgap_annot.annotation import submit_label
    from rmgap_annot.demo import labellers_of
    from rmgap_annot.formats.store import import_any

    demo = seed_demo(engine=engine).benchmark.benchmark_id
    samples = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
    pairs = import_any(engine=engine, path=samples / "pairs").benchmark_id
    person = create_user(engine=engine, name="maria", role="annotator")
    with session_scope(engine) as s:
        item = s.execute(select(Item.id).where(Item.benchmark_id == pairs).limit(1)).scalar_one()
    submit_label(engine=engine, user_id=person, item_id=item, choice_key="chosen")
    assert labellers_of(engine=engine, benchmark_id=pairs) == ["maria"]
    assert all(n.startswith("sim-") for n in labellers_of(engine=engine, benchmark_id=demo))

    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    researcher = create_user(engine=engine, name="res", role="researcher")
    for page in ("pages/results.py", "pages/export.py", "pages/reward_models.py"):
        for bench, warned in ((pairs, False), (demo, True)):
            st.cache_resource.clear()
            st.cache_data.clear()
            at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / page), default_timeout=120)
            at.session_state["user_id"], at.session_state["role"] = researcher, "researcher"
            at.session_state["benchmark_id"] = bench
            at.run()
            assert not at.exception, (page, at.exception)
            assert any("simulated" in w.value for w in at.warning) is warned, (page, bench)
