"""Labels: validation, revision, shuffle stability, blinding of the annotator view."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import pytest
from sqlalchemy import select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import (
    LabelError,
    displayed_order,
    item_for_annotator,
    label_for,
    previous_label,
    submit_label,
)
from rmgap_annot.assignment import next_item, update_study
from rmgap_annot.db import session_scope
from rmgap_annot.models import Item, Label, Lease, Record

KEYS = ["response1", "response2", "response3", "response4"]


@pytest.fixture
def annotator(engine) -> int:
    return create_user(engine=engine, name="ann", role="annotator")


@pytest.fixture
def item_id(engine, benchmark_id, annotator) -> int:
    return next_item(engine=engine, user_id=annotator, benchmark_id=benchmark_id)


def stored(engine, label_id: int) -> Label:
    with session_scope(engine) as s:
        return s.get(Label, label_id)


def test_shuffle_is_stable_and_varies_between_annotators_and_items():
    first = displayed_order(user_id=1, item_id=5, keys=KEYS)
    assert sorted(first) == KEYS
    assert displayed_order(user_id=1, item_id=5, keys=list(reversed(KEYS))) == first
    orders = {tuple(displayed_order(user_id=u, item_id=i, keys=KEYS)) for u in range(1, 6) for i in range(1, 21)}
    assert len(orders) > 10  # not one fixed permutation
    # Every key lands in slot A for someone: no position bias by construction.
    assert {o[0] for o in orders} == set(KEYS)


def test_label_stores_keys_order_and_times(engine, annotator, item_id):
    view = item_for_annotator(engine=engine, user_id=annotator, item_id=item_id)
    choice = view.key_for("B")
    label_id = submit_label(engine=engine, user_id=annotator, item_id=item_id, choice_key=choice, naturalness=2,
                            comment="  odd prompt  ", displayed_order=list(view.keys))
    lab = stored(engine, label_id)
    assert lab.choice_key == choice and lab.naturalness == 2 and lab.comment == "odd prompt"
    assert json.loads(lab.displayed_order_json) == list(view.keys)
    assert lab.revisions == 0 and lab.first_submitted_at == lab.submitted_at
    with session_scope(engine) as s:
        assert s.execute(select(Lease).where(Lease.user_id == annotator)).first() is None  # lease released


def test_resubmitting_revises_and_keeps_both_times(engine, annotator, item_id):
    first = submit_label(engine=engine, user_id=annotator, item_id=item_id, choice_key="response1", naturalness=3)
    before = stored(engine, first)
    second = submit_label(engine=engine, user_id=annotator, item_id=item_id, choice_key=None, reason="several_fit", naturalness=5)
    after = stored(engine, second)
    assert second == first
    assert after.choice_key is None and after.reason == "several_fit" and after.naturalness == 5
    assert after.revisions == 1
    assert after.first_submitted_at == before.first_submitted_at and after.submitted_at > before.submitted_at
    with session_scope(engine) as s:
        assert len(s.execute(select(Label)).all()) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"choice_key": "response9", "naturalness": 3}, "unknown response key"),
        ({"choice_key": "response1", "naturalness": 0}, "1 to 5"),
        ({"choice_key": "response1", "naturalness": 6}, "1 to 5"),
        ({"choice_key": "response1", "naturalness": None}, "natural"),
        ({"choice_key": None, "naturalness": 3}, "say why"),
        ({"choice_key": None, "naturalness": 3, "reason": "bored"}, "say why"),
        ({"choice_key": "response1", "naturalness": 3, "ranking": ["response1", "response2"]}, "all 4"),
        ({"choice_key": "response2", "naturalness": 3, "ranking": KEYS}, "first place"),
        ({"choice_key": "response1", "naturalness": 3, "comment": "x" * 6000}, "too long"),
    ],
)
def test_invalid_labels_are_refused_with_a_clear_message(engine, annotator, item_id, kwargs, message):
    with pytest.raises(LabelError, match=message):
        submit_label(engine=engine, user_id=annotator, item_id=item_id, **kwargs)
    assert label_for(engine=engine, user_id=annotator, item_id=item_id) is None


def test_ranking_mode_label(engine, benchmark_id, annotator, item_id):
    update_study(engine=engine, benchmark_id=benchmark_id, mode="ranking")
    view = item_for_annotator(engine=engine, user_id=annotator, item_id=item_id)
    assert view.mode == "ranking"
    ranking = [view.key_for(x) for x in ("C", "A", "D", "B")]
    submit_label(engine=engine, user_id=annotator, item_id=item_id, choice_key=ranking[0], ranking=ranking, naturalness=4)
    got = label_for(engine=engine, user_id=annotator, item_id=item_id)
    assert got.ranking == ranking and got.choice_key == ranking[0]


def test_annotator_view_is_blinded(engine, benchmark_id, annotator, item_id, small_records):
    other = create_user(engine=engine, name="other", role="annotator")
    submit_label(engine=engine, user_id=other, item_id=item_id, choice_key="response2", naturalness=1, comment="SECRET-COMMENT")
    view = item_for_annotator(engine=engine, user_id=annotator, item_id=item_id)
    with session_scope(engine) as s:
        item = s.get(Item, item_id)
        record = s.get(Record, item.record_pk)
    raw = next(r for r in small_records if r["id"] == record.record_id)
    assert view.prompt == item.text
    assert [letter for letter, _ in view.responses] == ["A", "B", "C", "D"]
    assert {t for _, t in view.responses} == {r["text"] for r in raw["responses"]}
    # What a page renders: the prompt and the lettered texts. No winner, no
    # style, no models/source, no other label.
    rendered = json.dumps([view.prompt, view.responses])
    assert "SECRET-COMMENT" not in json.dumps(asdict(view))
    for secret in (raw["source"], *raw["models"].values(), json.dumps(raw["style_assignments"])):
        assert secret not in rendered
    assert set(vars(view)) == {"item_id", "prompt", "responses", "keys", "mode", "conversation", "profile", "study_id"}


def test_back_walks_through_own_labels(engine, benchmark_id, annotator):
    done = []
    for _ in range(3):
        item = next_item(engine=engine, user_id=annotator, benchmark_id=benchmark_id)
        submit_label(engine=engine, user_id=annotator, item_id=item, choice_key="response1", naturalness=3)
        done.append(item)
    assert previous_label(engine=engine, user_id=annotator, benchmark_id=benchmark_id) == done[2]
    assert previous_label(engine=engine, user_id=annotator, benchmark_id=benchmark_id, before_item_id=done[2]) == done[1]
    # Revising a label does not reorder the history.
    submit_label(engine=engine, user_id=annotator, item_id=done[1], choice_key="response3", naturalness=3)
    assert previous_label(engine=engine, user_id=annotator, benchmark_id=benchmark_id, before_item_id=done[1]) == done[0]
    assert previous_label(engine=engine, user_id=annotator, benchmark_id=benchmark_id, before_item_id=done[0]) is None


def test_opaque_keys_hide_item_ids_and_differ_per_session():
    from rmgap_annot.annotation import opaque_key

    a, b = b"a" * 32, b"b" * 32
    keys = {opaque_key(secret=a, parts=("label", i, "new")) for i in range(1, 200)}
    assert len(keys) == 199  # one fresh form per item
    assert opaque_key(secret=a, parts=("label", 7, "new")) == opaque_key(secret=a, parts=("label", 7, "new"))
    assert opaque_key(secret=a, parts=("label", 7, "new")) != opaque_key(secret=a, parts=("label", 7, 1))
    assert opaque_key(secret=a, parts=("label", 7, "new")) != opaque_key(secret=b, parts=("label", 7, "new"))
    assert all(re.fullmatch(r"k[0-9a-f]{20}", k) for k in keys)
