"""``export-verified --min-rating NAME=X``: a study's rating question as a threshold of the verification rule."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.assignment import update_study
from rmgap_annot.cli import app
from rmgap_annot.db import session_scope
from rmgap_annot.export import REASON_RATING, REASON_WRONG, ExportError, Rule, verify, write_export
from rmgap_annot.formats.store import import_any
from rmgap_annot.models import Item, Record
from rmgap_annot.questions import Question, dumps
from rmgap_annot.studies import list_studies

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
CLEAR = Question("clear", "Is the request clear?", ((1, "Yes"), (0, "No")))
HELPFUL = Question("helpful", "How helpful is it?", ((1, "No"), (2, "Somewhat"), (3, "Very")), about="response")
W = "chosen"


def _verdicts(cases: dict[int, list[tuple[str, dict | None]]], rule: Rule) -> dict[int, str | None]:
    """item id -> reason (None: verified); each label is (choice, ratings) on a pair whose winner is ``chosen``."""
    items = pd.DataFrame([{"item_id": i, "record_pk": i, "record_id": f"e{i}", "domain": "x", "group": 0, "group_index": 0,
                           "prompt_index": 0, "role": "", "winner_key": W} for i in cases])
    labels = pd.DataFrame([
        {"label_id": n, "item_id": i, "annotator": f"a{j}", "choice_key": c, "naturalness": None,
         "ratings_json": None if r is None else json.dumps(r)}
        for n, (i, j, c, r) in enumerate((i, j, c, r) for i, rows in cases.items() for j, (c, r) in enumerate(rows))
    ])
    out = verify(labels=labels, items=items, rule=rule)
    return dict(zip(out["item_id"], out["reason"]))


def _rule(*specs: str) -> Rule:
    return Rule.of(min_labels=3, min_agreement="2/3", min_naturalness=0, min_ratings=specs)


def test_a_prompt_question_passes_at_its_mean_exactly():
    # Answers 1, 1, 0: mean 2/3, the share saying yes.
    cases = {1: [(W, {"clear": 1}), (W, {"clear": 1}), (W, {"clear": 0})]}
    assert _verdicts(cases, _rule("clear=2/3")) == {1: None}
    assert _verdicts(cases, _rule("clear=0.67")) == {1: REASON_RATING}  # 0.67 is a hair above 2/3
    assert _verdicts(cases, _rule("clear=0.6666666")) == {1: None}  # exact: not a hair above


def test_a_response_question_reads_the_designated_winners_answers():
    # About the winner: 3, 2, 2 (mean 7/3); about the loser: 1, 1, 1 (would fail any threshold above 1).
    cases = {1: [(W, {"helpful": {"chosen": 3, "rejected": 1}}), (W, {"helpful": {"chosen": 2, "rejected": 1}}),
                 (W, {"helpful": {"chosen": 2, "rejected": 1}})]}
    assert _verdicts(cases, _rule("helpful=7/3")) == {1: None}
    assert _verdicts(cases, _rule("helpful=2.4")) == {1: REASON_RATING}


def test_unanswered_items_fail_and_earlier_checks_come_first():
    cases = {
        1: [(W, None)] * 3,  # nobody answered "clear"
        2: [(W, {"clear": 1, "helpful": {"chosen": 1}})] * 3,  # clear passes, helpful fails: both thresholds must hold
        3: [("rejected", {"clear": 0})] * 3,  # a wrong winner is reported as such, not as a low rating
        4: [(W, {"clear": 1, "helpful": {"chosen": 3}}), (W, {"clear": 1}), (W, {"clear": 1, "helpful": {"rejected": 3}})],
    }
    got = _verdicts(cases, _rule("clear=1", "helpful=2"))
    # Item 4: one answer about the winner (3): mean 3 passes; answers about another candidate do not count.
    assert got == {1: REASON_RATING, 2: REASON_RATING, 3: REASON_WRONG, 4: None}
    assert _verdicts({1: cases[1]}, _rule()) == {1: None}  # no threshold: ratings are not checked


@pytest.mark.parametrize("spec,message", [
    ("clear", "NAME=X"), ("=1", "NAME=X"), ("clear=", "NAME=X"), ("clear=abc", "clear"),
])
def test_bad_thresholds_are_refused(spec, message):
    with pytest.raises(ExportError, match=message):
        Rule.of(min_ratings=[spec])
    with pytest.raises(ExportError, match="twice"):
        Rule.of(min_ratings=["clear=1", "clear=0"])


def test_the_rule_says_its_rating_thresholds():
    lines = _rule("clear=2/3", "helpful=2").describe()
    assert "mean answer to clear >= 2/3" in lines[-1] and "helpful >= 2" in lines[-1] and "winner" in lines[-1]
    assert "no rating-question threshold" in Rule().describe()[-1]


def _pairs(engine) -> tuple[int, list[tuple[int, str]]]:
    bench = import_any(engine=engine, path=SAMPLES / "pairs").benchmark_id
    study = list_studies(engine=engine, benchmark_id=bench)[0].id
    update_study(engine=engine, study_id=study, questions_json=dumps([CLEAR, HELPFUL]))
    with session_scope(engine) as s:
        items = s.execute(select(Item.id, Record.record_id).join(Record, Record.id == Item.record_pk)
                          .where(Item.benchmark_id == bench).order_by(Item.id)).all()
    users = [create_user(engine=engine, name=f"r{u}", role="annotator") for u in range(3)]
    for n, (item_id, _) in enumerate(items):
        for u, user in enumerate(users):
            # Everyone picks the right answer; "clear" is 1 from all three on even items, 1, 1, 0 on odd ones.
            clear = 0 if (n % 2 and u == 2) else 1
            submit_label(engine=engine, user_id=user, item_id=item_id, choice_key="chosen", study_id=study,
                         ratings={"clear": clear, "helpful": {"chosen": 3, "rejected": 1}})
    return bench, [(iid, rid) for iid, rid in items]


def test_export_keeps_the_entries_whose_answers_pass(engine, tmp_path):
    bench, items = _pairs(engine)
    result = write_export(engine=engine, benchmark_id=bench, out_dir=tmp_path / "all", rule=_rule("clear=1"))
    even = [rid for n, (_, rid) in enumerate(items) if n % 2 == 0]
    assert result.n_written == len(even)
    assert result.summary["All"]["items_dropped"][REASON_RATING] == len(items) - len(even)
    loose = write_export(engine=engine, benchmark_id=bench, out_dir=tmp_path / "loose", rule=_rule("clear=2/3", "helpful=3"))
    assert loose.n_written == len(items)
    card = (tmp_path / "all" / "README.md").read_text(encoding="utf-8")
    assert "mean answer to clear >= 1" in card and REASON_RATING in card


def test_cli_min_rating(engine, db_url, tmp_path):
    bench, items = _pairs(engine)
    runner = CliRunner()
    base = ["--db", db_url, "export-verified", "--min-naturalness", "0"]
    ok = runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--min-rating", "clear=1", "--min-rating", "helpful=2.5"])
    assert ok.exit_code == 0, ok.output
    assert f"Wrote {sum(1 for n in range(len(items)) if n % 2 == 0)} verified entries" in ok.output
    for spec, message in (("clarity=1", "no study of this benchmark asks a question 'clarity'"),
                          ("helpful=4", "off the question's scale (1 to 3)"),
                          ("naturalness=3", "--min-naturalness"), ("clear", "NAME=X")):
        bad = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--min-rating", spec])
        assert bad.exit_code == 2 and message in bad.output, (spec, bad.output)
        assert not (tmp_path / "b").exists()
    assert Fraction(2, 3) == Rule.of(min_ratings=["clear=2/3"]).min_ratings[0][1]


def test_export_page_has_a_slider_per_rating_question(engine, db_url, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    bench, items = _pairs(engine)
    researcher = create_user(engine=engine, name="res", role="researcher", password="correct horse")
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.setenv("RMGAP_ANNOT_EXPORTS", str(tmp_path / "exports"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "export.py"), default_timeout=60)
    at.session_state["user_id"] = researcher
    at.run()
    assert not at.exception, at.exception
    n = len(items)
    assert f"{n} of {n} items" in " ".join(str(m.value) for m in at.markdown)  # every slider at its lowest: off
    at.slider(key="export_min_rating_clear").set_value(1.0).run()
    assert not at.exception, at.exception
    even = sum(1 for k in range(n) if k % 2 == 0)
    assert f"{even} of {n} items" in " ".join(str(m.value) for m in at.markdown)
    assert at.slider(key="export_min_rating_helpful").max == 3.0


def test_export_page_counts_the_chosen_studys_labels(engine, db_url, tmp_path, monkeypatch):
    """With a second, empty study the page pools by default and counts only the chosen study's labels otherwise."""
    from streamlit.testing.v1 import AppTest

    from rmgap_annot.assignment import create_study

    bench, items = _pairs(engine)
    create_study(engine=engine, name="main-run", benchmark_id=bench)
    researcher = create_user(engine=engine, name="res", role="researcher", password="correct horse")
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.setenv("RMGAP_ANNOT_EXPORTS", str(tmp_path / "exports"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "export.py"), default_timeout=60)
    at.session_state["user_id"] = researcher
    at.run()
    assert not at.exception, at.exception
    n = len(items)
    assert f"{n} of {n} items" in " ".join(str(m.value) for m in at.markdown)  # pooled: the first study's labels
    main = next(s for s in list_studies(engine=engine, benchmark_id=bench) if s.name == "main-run")
    at.selectbox(key="export_study").set_value(main).run()
    assert not at.exception, at.exception
    assert f"0 of {n} items" in " ".join(str(m.value) for m in at.markdown)  # the main run has no label yet
