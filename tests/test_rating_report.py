"""The report's ratings section: each study question's ordinal alpha, from labels stored by the service."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest
from sqlalchemy import select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.assignment import get_study, update_study
from rmgap_annot.db import session_scope
from rmgap_annot.labels_frame import load_labels
from rmgap_annot.models import Item
from rmgap_annot.questions import Question, dumps
from rmgap_annot.stats.rating_report import ratings_section

CLEAR = Question("clear", "Is the request clear?", ((1, "Yes"), (0, "No")))
HELPFUL = Question("helpful", "How helpful is it?", ((1, "No"), (2, "Somewhat"), (3, "Very")), about="response")


@pytest.fixture
def rated(engine, benchmark_id):
    study = get_study(engine=engine, benchmark_id=benchmark_id)
    update_study(engine=engine, study_id=study.id, questions_json=dumps([CLEAR, HELPFUL]), one_item_per_record=False)
    users = [create_user(engine=engine, name=f"r{i}", role="annotator") for i in range(3)]
    with session_scope(engine) as s:
        items = s.execute(select(Item.id).where(Item.benchmark_id == benchmark_id).order_by(Item.id)).scalars().all()[:6]
    clear = {}
    for n, item in enumerate(items):
        for k, user in enumerate(users):
            c = (n + (k == 2 and n % 3 == 0)) % 2
            h = {key: 1 + (n + j + (k == 1)) % 3 for j, key in enumerate(["response1", "response2", "response3", "response4"])}
            clear[(user, item)] = c
            submit_label(engine=engine, user_id=user, item_id=item, choice_key="response1",
                         ratings={"clear": c, "helpful": h}, study_id=study.id)
    return study, users, items, clear


def test_each_question_gets_its_ordinal_alpha(engine, benchmark_id, rated):
    study, users, items, clear = rated
    labels = load_labels(engine=engine, benchmark_id=benchmark_id)
    section = ratings_section(engine=engine, benchmark_id=benchmark_id, labels=labels, draws=50)
    names = [q["name"] for q in section["questions"]]
    assert names == ["clear", "helpful"]  # the study's own questions, not RMGAP's default naturalness
    reliability = np.array([[clear[(u, i)] for i in items] for u in users], dtype=float)
    want = krippendorff.alpha(reliability_data=reliability, level_of_measurement="ordinal")
    got = section["questions"][0]
    assert got["alpha"] == pytest.approx(want)
    assert sum(got["distribution"].values()) == len(users) * len(items)
    helpful = section["questions"][1]
    assert helpful["about"] == "response" and helpful["n_items"] == len(items) * 4  # each response is a unit


def test_a_required_question_must_be_answered(engine, benchmark_id, rated):
    from rmgap_annot.annotation import LabelError

    study, users, items, _ = rated
    other = create_user(engine=engine, name="late", role="annotator")
    with pytest.raises(LabelError, match="clear"):
        submit_label(engine=engine, user_id=other, item_id=items[0], choice_key="response1",
                     ratings={"helpful": {k: 1 for k in ("response1", "response2", "response3", "response4")}},
                     study_id=study.id)
    with pytest.raises(LabelError, match="not on the scale"):
        submit_label(engine=engine, user_id=other, item_id=items[0], choice_key="response1",
                     ratings={"clear": 7, "helpful": {k: 1 for k in ("response1", "response2", "response3", "response4")}},
                     study_id=study.id)


def test_rmgap_default_is_naturalness(engine, benchmark_id):
    users = [create_user(engine=engine, name=f"n{i}", role="annotator") for i in range(2)]
    with session_scope(engine) as s:
        items = s.execute(select(Item.id).where(Item.benchmark_id == benchmark_id).order_by(Item.id)).scalars().all()[:4]
    for n, item in enumerate(items):
        for k, user in enumerate(users):
            submit_label(engine=engine, user_id=user, item_id=item, choice_key="response1", naturalness=1 + (n + k) % 5)
    labels = load_labels(engine=engine, benchmark_id=benchmark_id)
    section = ratings_section(engine=engine, benchmark_id=benchmark_id, labels=labels, draws=20)
    (q,) = section["questions"]
    assert q["name"] == "naturalness" and sum(q["distribution"].values()) == 8
    assert json.dumps(section)  # plain data
