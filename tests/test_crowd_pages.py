"""The crowd screens and the Study page's crowd section through AppTest (no browser): consent, decline,
the completion code, the researcher's preview that stores nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rmgap_annot.accounts import create_user
from rmgap_annot.assignment import get_study
from rmgap_annot.crowd import stream
from rmgap_annot.crowd.checks_store import import_checks
from rmgap_annot.db import session_scope
from rmgap_annot.models import CheckLabel, Label, Lease, StudyMember
from tests.test_crowd_stream import check_rows, crowd_study, participant, run_stream, write_checks
from tests.test_pages import page


@pytest.fixture
def app_env(monkeypatch, db_url, engine, benchmark_id):
    from pathlib import Path

    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    return engine


def rows(engine) -> tuple[int, int, int]:  # noqa: ANN001
    with session_scope(engine) as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one() for t in (Label, CheckLabel, Lease))


def test_consent_screen_then_decline_shows_the_screenout_code(app_env, benchmark_id):
    engine = app_env
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=2)
    from rmgap_annot.assignment import update_study

    update_study(engine=engine, study_id=sid, consent_md="**CONSENT-XYZ** please read.")
    uid = participant(engine, token, "p1")
    at = page("pages/annotate.py", uid, "annotator").run()
    assert not at.exception
    assert any("CONSENT-XYZ" in m.value for m in at.markdown)
    assert [b.label for b in at.button][:2] == ["Start", "I do not consent"]
    next(b for b in at.button if b.label == "I do not consent").click().run()
    assert any(c.value == "OUT456" for c in at.code)
    with session_scope(engine) as s:
        assert s.execute(select(StudyMember.declined_at).where(StudyMember.user_id == uid)).scalar_one() is not None
    assert rows(engine) == (0, 0, 0)


def test_start_opens_items_and_the_quota_ends_with_the_completion_code(app_env, benchmark_id):
    engine = app_env
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=2)
    uid = participant(engine, token, "p1")
    at = page("pages/annotate.py", uid, "annotator").run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception and any("The user's request" in m.value for m in at.markdown)
    run_stream(engine, uid, sid)
    at = page("pages/annotate.py", uid, "annotator").run()
    assert any(c.value == "DONE123" for c in at.code)
    with session_scope(engine) as s:
        assert s.execute(select(StudyMember.completed_at).where(StudyMember.user_id == uid)).scalar_one() is not None
    assert stream.crowd_state(engine=engine, user_id=uid, study_id=sid).status == "completed"


def test_the_study_page_saves_consent_shows_the_link_and_previews_a_check_storing_nothing(app_env, benchmark_id, tmp_path):
    engine = app_env
    sid = get_study(engine=engine, benchmark_id=benchmark_id).id
    import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "c.jsonl", check_rows(2)))
    rid = create_user(engine=engine, name="res", role="researcher")
    at = page("pages/study.py", rid, "researcher").run()
    assert not at.exception
    area = next(t for t in at.text_area if t.label.startswith("Consent text"))
    area.set_value("Consent **here**.")
    next(c for c in at.checkbox if c.label == "Public study link on").check()
    next(b for b in at.button if b.label == "Save").click().run()
    study = get_study(engine=engine, study_id=sid)
    assert study.consent_md == "Consent **here**." and study.public_link and study.link_token
    assert any(f"?study={study.link_token}&PROLIFIC_PID=" in c.value for c in at.code)
    next(r for r in at.radio if r.label == "What").set_value("check").run()
    assert not at.exception
    assert any("yes (0)" in m.value for m in at.markdown)  # the check's text, as annotators read it
    assert any("Expected answer (researchers only)" in i.value for i in at.info)
    assert rows(engine) == (0, 0, 0)


def test_with_the_warn_action_a_failed_check_brings_the_guidelines_back_once(app_env, benchmark_id, tmp_path):
    engine = app_env
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=6, check_rate=0.25, check_fail_limit=1)
    from rmgap_annot.assignment import update_study
    from tests.test_crowd_stream import answer

    update_study(engine=engine, study_id=sid, check_action="warn")
    import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "c.jsonl", check_rows(4)))
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    while True:
        entry = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
        answer(engine, uid, entry, right=False)
        if stream.is_check_entry(entry):
            break
    at = page("pages/annotate.py", uid, "annotator").run()
    assert not at.exception and [t.value for t in at.title] == ["A reminder of the guidelines"]
    next(b for b in at.button if b.label == "Continue").click().run()
    assert not at.exception and any("The user's request" in m.value for m in at.markdown)
    assert stream.crowd_state(engine=engine, user_id=uid, study_id=sid).status == "active"


def test_arriving_when_the_study_is_full_says_so_and_gives_the_completion_code(app_env, benchmark_id):
    engine = app_env
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=5)
    from rmgap_annot.assignment import update_study

    from rmgap_annot import annotation as ann
    from rmgap_annot.assignment import next_item

    update_study(engine=engine, study_id=sid, records_per_domain=1, labels_per_item=1, quota_per_annotator=0,
                 one_item_per_record=False)
    lab = create_user(engine=engine, name="lab", role="annotator")
    while (item := next_item(engine=engine, user_id=lab, study_id=sid)) is not None:  # a lab annotator fills the study
        view = ann.item_for_annotator(engine=engine, user_id=lab, item_id=item)
        ann.submit_label(engine=engine, user_id=lab, item_id=item, choice_key=view.keys[0], naturalness=3, study_id=sid)
    update_study(engine=engine, study_id=sid, quota_per_annotator=5)
    late = participant(engine, token, "p2")
    at = page("pages/annotate.py", late, "annotator").run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    assert any("no more items for you" in i.value and "before your quota" in i.value for i in at.info)
    assert any(c.value == "DONE123" for c in at.code)
    assert stream.crowd_state(engine=engine, user_id=late, study_id=sid).real_done == 0


def test_a_participant_of_a_second_study_labels_that_study_with_back_and_leases_in_it(app_env, benchmark_id):
    """A pilot and the main run over one benchmark: the main run's participant works in the main run only."""
    from rmgap_annot.assignment import create_study, update_study
    from rmgap_annot.crowd.links import new_study_token
    from tests.test_pages import button, radio

    engine = app_env
    first = get_study(engine=engine, benchmark_id=benchmark_id).id
    main = create_study(engine=engine, name="main", benchmark_id=benchmark_id).id
    token = new_study_token()
    update_study(engine=engine, study_id=main, public_link=True, link_token=token, quota_per_annotator=2,
                 completion_code="DONE123", screenout_code="OUT456", mode="ranking")
    update_study(engine=engine, study_id=first, mode="pick")
    uid = participant(engine, token, "p1")
    at = page("pages/annotate.py", uid, "annotator").run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    assert any("Order all 4 responses" in m.value for m in at.markdown)  # the main run's mode, not the pilot's
    with session_scope(engine) as s:
        assert {lease.study_id for lease in s.execute(select(Lease)).scalars()} == {main}
    for letter in "BAD":  # the last place fills itself
        button(at, letter).click().run()
    radio(at, "How natural").set_value(4).run()
    button(at, "Submit").click().run()
    assert not at.exception
    with session_scope(engine) as s:
        assert [lab.study_id for lab in s.execute(select(Label)).scalars()] == [main]
        assert {lease.study_id for lease in s.execute(select(Lease)).scalars()} <= {main}
    button(at, "Back").click().run()
    assert any("You are correcting a label" in i.value for i in at.info)  # Back finds the main run's label


def test_the_consent_screens_guidelines_name_the_studys_own_questions(app_env, benchmark_id):
    """A study that asks no naturalness must not tell participants to rate it before they start."""
    from rmgap_annot.assignment import update_study
    from rmgap_annot.questions import PRESETS, dumps

    engine = app_env
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=2)
    update_study(engine=engine, study_id=sid, questions_json=dumps(PRESETS["prb-human-check"]))
    uid = participant(engine, token, "p9")
    at = page("pages/annotate.py", uid, "annotator").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Is the response factually correct?" in text
    assert "How natural is the request?" not in text


def test_the_study_page_assigns_lab_annotators_to_the_chosen_study(app_env, benchmark_id):
    from rmgap_annot.accounts import create_user
    from rmgap_annot.assignment import create_study
    from rmgap_annot.studies import study_for_user

    engine = app_env
    alice = create_user(engine=engine, name="alice", role="annotator")
    rid = create_user(engine=engine, name="rita", role="researcher", password="correct horse")
    main = create_study(engine=engine, name="main-run", benchmark_id=benchmark_id)
    at = page("pages/study.py", rid, "researcher")
    at.session_state["study_id"] = main.id  # the study picker's remembered choice
    at.run()
    assert not at.exception
    at.multiselect(key="study_assign_who").set_value(["alice"])
    next(b for b in at.button if b.label == "Assign").click().run()
    assert not at.exception
    assert any("now label this study" in s.value for s in at.success)
    assert study_for_user(engine=engine, user_id=alice) == main.id
