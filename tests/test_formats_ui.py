"""The annotate and Study pages with items of every shape (AppTest, no browser): ties, N candidates,
conversations, profiles and the study's rating questions. Chromium runs the same in tests/e2e/test_formats_ui.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import confirm_guidelines, item_for_annotator, label_for, study_questions, submit_label
from rmgap_annot.assignment import get_study, next_item, update_study
from rmgap_annot.db import session_scope
from rmgap_annot.models import Label
from rmgap_annot.questions import PRESETS, dumps
from tests.format_items import add_all_formats, join

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30


@pytest.fixture
def env(monkeypatch, db_url, engine):
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.chdir(ROOT)
    return engine, add_all_formats(engine)


def annotate_as(engine, study_id: int, name: str) -> tuple[int, AppTest]:  # noqa: ANN001
    uid = create_user(engine=engine, name=name, role="annotator")
    join(engine, study_id=study_id, user_id=uid)
    confirm_guidelines(engine=engine, user_id=uid, study_id=study_id)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["user_id"] = uid
    at.session_state["user_name"] = name
    at.session_state["role"] = "annotator"
    return uid, at.run()


def radio(at: AppTest, words: str):  # noqa: ANN201
    return next(r for r in at.radio if words in r.label)


def button(at: AppTest, prefix: str):  # noqa: ANN201
    return next(b for b in at.button if b.label.startswith(prefix))


def labels(engine) -> list[Label]:  # noqa: ANN001
    with session_scope(engine) as s:
        return list(s.execute(select(Label).order_by(Label.id)).scalars())


def test_a_pairwise_tie_is_stored_as_its_own_choice_value_in_the_annotators_study(env):
    engine, studies = env
    _, sid = studies["pairwise"]
    uid, at = annotate_as(engine, sid, "pat")
    assert not at.exception
    pick = radio(at, "fits the user's request best")
    assert pick.options == ["A [A]", "B [B]", "Both equally good [T]", "Both bad [N]", "Can't decide [X]"]
    assert not [r for r in at.radio if "How natural" in r.label]  # plain pairs ask no naturalness by default
    pick.set_value("tie_good").run()
    button(at, "Submit").click().run()
    (lab,) = labels(engine)
    assert (lab.choice_key, lab.study_id, lab.user_id, lab.ranking_json) == ("tie_good", sid, uid, None)


def test_seven_candidates_get_letters_a_to_g_and_a_full_ranking(env):
    engine, studies = env
    _, sid = studies["bon7"]
    update_study(engine=engine, study_id=sid, mode="ranking")
    _, at = annotate_as(engine, sid, "rae")
    assert any("Order all 7 responses" in m.value for m in at.markdown)
    assert [b.label for b in at.button if len(b.label) == 1] == list("ABCDEFG")
    for letter in "GFEDCB":  # A fills the last place
        next(b for b in at.button if b.label == letter).click().run()
    assert any("Your ranking: 1. G · 2. F · 3. E · 4. D · 5. C · 6. B · 7. A" in m.value for m in at.markdown)
    button(at, "Submit").click().run()
    (lab,) = labels(engine)
    order = json.loads(lab.displayed_order_json)
    assert json.loads(lab.ranking_json) == order[::-1] and lab.choice_key == order[-1]


def test_a_conversation_shows_its_turns_and_the_last_user_message_apart(env):
    engine, studies = env
    _, sid = studies["chat"]
    _, at = annotate_as(engine, sid, "cat")
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert any("The conversation" in t for t in texts) and not any(t == "**The user's request**" for t in texts)
    earlier = [i for i, t in enumerate(texts) if t.startswith("VISIBLECHAT-") and "RESP" not in t]
    assert [texts[i][:13] for i in earlier] == ["VISIBLECHAT-1", "VISIBLECHAT-2", "VISIBLECHAT-3", "VISIBLECHAT-4",
                                                "VISIBLECHAT-F"]
    assert texts[earlier[-1] - 1] == "**The user's last message**"  # the final turn, under its own heading


def test_a_profile_study_with_the_prb_questions_blocks_submit_until_each_response_is_rated(env):
    engine, studies = env
    _, sid = studies["profile"]
    update_study(engine=engine, study_id=sid, questions_json=dumps(PRESETS["prb-human-check"]))
    uid, at = annotate_as(engine, sid, "pia")
    texts = [m.value for m in at.markdown]
    assert sum(t.startswith("VISIBLEPOST-") for t in texts) == 4
    assert texts.index(next(t for t in texts if t.startswith("**About this user**"))) < texts.index("**The user's request**")
    assert not any("POSTIDSENTINEL" in t or "NARRATIVE" in t or "RUBRIC" in t for t in texts)
    rows = [r for r in at.radio if r.label.endswith(("Response A", "Response B"))]
    assert len(rows) == 8  # four questions, one row per response
    radio(at, "fits the user's request best").set_value("B").run()
    for r in [r for r in at.radio if r.label.endswith(("Response A", "Response B"))][:6]:
        r.set_value(4).run()
    button(at, "Submit").click().run()
    assert any("Answer for every response: Does the response fit this user's profile" in e.value for e in at.error)
    assert labels(engine) == []
    for r in [r for r in at.radio if r.label.endswith(("Response A", "Response B"))][6:]:
        r.set_value(2).run()
    button(at, "Submit").click().run()
    (lab,) = labels(engine)
    view = item_for_annotator(engine=engine, user_id=uid, item_id=lab.item_id, study_id=sid)
    ratings = json.loads(lab.ratings_json)
    assert lab.choice_key == view.keys[1]
    assert ratings["factuality"] == {"chosen": 4, "rejected": 4}
    assert ratings["personalised_alignment"] == {"chosen": 2, "rejected": 2}
    assert label_for(engine=engine, user_id=uid, item_id=lab.item_id, study_id=sid).ratings == ratings


def test_a_draft_keeps_rating_answers_across_a_new_session(env):
    engine, studies = env
    _, sid = studies["profile"]
    update_study(engine=engine, study_id=sid, questions_json=dumps(PRESETS["prb-human-check"]))
    uid, at = annotate_as(engine, sid, "dan")
    radio(at, "fits the user's request best").set_value("tie_bad").run()
    next(r for r in at.radio if r.label.endswith("Response B")).set_value(5).run()
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)  # a refresh: a new session
    again.session_state["user_id"] = uid
    again.session_state["user_name"] = "dan"
    again.session_state["role"] = "annotator"
    again.run()
    assert radio(again, "fits the user's request best").value == "tie_bad"
    assert next(r for r in again.radio if r.label.endswith("Response B")).value == 5


def test_transcript_and_questions_of_the_service_layer(env):
    engine, studies = env
    uid = create_user(engine=engine, name="svc", role="annotator")
    _, chat = studies["chat"]
    view = item_for_annotator(engine=engine, user_id=uid, item_id=next_item(engine=engine, user_id=uid, study_id=chat),
                              study_id=chat)
    assert [final for _, _, final in view.transcript] == [False, False, False, False, True]
    assert view.transcript[-1][1] == view.prompt
    _, bon = studies["bon7"]
    one_turn = item_for_annotator(engine=engine, user_id=uid, study_id=bon,
                                  item_id=next_item(engine=engine, user_id=uid, study_id=bon))
    assert one_turn.transcript is None and one_turn.letters == tuple("ABCDEFG")
    assert study_questions(engine=engine, study_id=bon) == ()
    _, pairs = studies["pairwise"]
    assert study_questions(engine=engine, study_id=pairs) == ()
    update_study(engine=engine, study_id=pairs, questions_json=dumps(PRESETS["rmgap"]))
    assert study_questions(engine=engine, study_id=pairs) == PRESETS["rmgap"]


def test_study_page_saves_a_preset_and_rejects_bad_json_with_its_message(env, benchmark_id):
    engine, _ = env
    rid = create_user(engine=engine, name="res", role="researcher")
    at = AppTest.from_file(str(ROOT / "pages/study.py"), default_timeout=TIMEOUT)
    at.session_state["user_id"] = rid
    at.session_state["role"] = "researcher"
    at.session_state["benchmark_id"] = benchmark_id  # the RMGAP benchmark: naturalness by default
    at.run()
    assert not at.exception
    box = next(s for s in at.selectbox if s.label == "Questions")
    assert box.value == "rmgap"
    box.set_value("custom")
    next(t for t in at.text_area if t.label.startswith("Questions as JSON")).set_value('[{"name": "Bad"}]')
    button(at, "Save questions").click().run()
    assert any("Not saved: questions[0].name" in e.value for e in at.error)
    assert get_study(engine=engine, benchmark_id=benchmark_id).questions_json is None
    next(s for s in at.selectbox if s.label == "Questions").set_value("prb-human-check")
    button(at, "Save questions").click().run()
    assert study_questions(engine=engine, study_id=get_study(engine=engine, benchmark_id=benchmark_id).id) == \
        PRESETS["prb-human-check"]
    next(s for s in at.selectbox if s.label == "Questions").set_value("custom")
    next(t for t in at.text_area if t.label.startswith("Questions as JSON")).set_value(
        '[{"name": "safe", "text": "Is the request safe?", "levels": "yes/no", "required": false}]')
    button(at, "Save questions").click().run()
    (q,) = study_questions(engine=engine, study_id=get_study(engine=engine, benchmark_id=benchmark_id).id)
    assert (q.name, q.values, q.required) == ("safe", (1, 0), False)


def test_labels_given_from_a_script_with_a_tie_and_ratings_round_trip(env):
    engine, studies = env
    _, sid = studies["profile"]
    update_study(engine=engine, study_id=sid, questions_json=dumps(PRESETS["prb-human-check"][:1]))
    uid = create_user(engine=engine, name="scr", role="annotator")
    item = next_item(engine=engine, user_id=uid, study_id=sid)
    submit_label(engine=engine, user_id=uid, item_id=item, study_id=sid, choice_key="tie_bad",
                 ratings={"factuality": {"chosen": 3, "rejected": 1}})
    got = label_for(engine=engine, user_id=uid, item_id=item, study_id=sid)
    assert got.choice_key == "tie_bad" and got.ratings == {"factuality": {"chosen": 3, "rejected": 1}}


def test_default_guidelines_name_the_studys_own_questions(env):
    from rmgap_annot.annotation import DEFAULT_GUIDELINES, guidelines_text

    engine, studies = env
    rmgap = guidelines_text(None, mode="pick", questions=PRESETS["rmgap"])
    assert rmgap == DEFAULT_GUIDELINES and "How natural is the request?" in rmgap
    prb = guidelines_text(None, mode="pick", questions=PRESETS["prb-human-check"])
    assert "How natural" not in prb and "*Is the response factually correct?* (for each response)" in prb
    none = guidelines_text(None, mode="pick", questions=())
    assert "How natural" not in none and "2. **Submit**" in none
    own = "# Our rules\nRate naturalness too."
    assert guidelines_text(own, mode="pick", questions=()) == own  # a researcher's text is kept as written
    _, sid = studies["pairwise"]
    uid, at = annotate_as(engine, sid, "gia")
    reader = AppTest.from_file(str(ROOT / "pages/guidelines.py"), default_timeout=TIMEOUT)
    reader.session_state["user_id"] = uid
    reader.session_state["role"] = "annotator"
    reader.run()
    text = "\n".join(m.value for m in reader.markdown)
    assert "Both equally good" in text and "How natural" not in text  # the study this annotator labels


def test_on_a_phone_seven_responses_get_letter_tabs(env):
    engine, studies = env
    _, sid = studies["bon7"]
    uid, _ = annotate_as(engine, sid, "phi")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["user_id"] = uid
    at.session_state["user_name"] = "phi"
    at.session_state["role"] = "annotator"
    at.session_state["narrow"] = True
    at.run()
    assert [t.label for t in at.tabs] == list("ABCDEFG")
