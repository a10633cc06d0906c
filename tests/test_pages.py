"""The pages' logic through streamlit.testing.v1.AppTest (no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from rmgap_annot.accounts import create_invite, create_user
from rmgap_annot.annotation import confirm_guidelines
from rmgap_annot.assignment import get_study, update_study
from rmgap_annot.db import session_scope
from rmgap_annot.models import Label

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30


@pytest.fixture
def app_env(monkeypatch, db_url, engine, benchmark_id):
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.chdir(ROOT)
    return engine


def app(user_id: int | None = None, role: str = "annotator", name: str = "ann") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if user_id is not None:
        at.session_state["user_id"] = user_id
        at.session_state["user_name"] = name
        at.session_state["role"] = role
    return at


def page(path: str, user_id: int, role: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    at.session_state["user_id"] = user_id
    at.session_state["role"] = role
    return at


def labels(engine) -> list[Label]:
    with session_scope(engine) as s:
        return list(s.execute(select(Label).order_by(Label.id)).scalars())


def _html(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def test_password_login_hands_the_browser_a_one_use_ticket(app_env):
    """The script cannot set the HttpOnly cookie: it gives its browser a ticket for
    server.py's /auth/session (the whole round trip runs in tests/e2e/test_sessions.py)."""
    from rmgap_annot.models import LoginTicket

    uid = create_user(engine=app_env, name="alice", role="annotator", password="correct horse")
    at = app().run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    at.text_input[0].input("alice")
    at.text_input[1].input("wrong password")
    at.button[0].click().run()
    assert any("wrong password" in e.value for e in at.error)
    assert "/auth/session" not in _html(at)
    at.text_input[1].input("correct horse")
    at.button[0].click().run()
    assert not at.exception
    assert "/auth/session" in _html(at)
    assert "user_id" not in at.session_state  # logged in only once the cookie comes back
    with session_scope(app_env) as s:
        assert [t.user_id for t in s.execute(select(LoginTicket)).scalars()] == [uid]


def test_an_invite_link_reaching_the_script_is_sent_to_the_exchange_route(app_env):
    uid = create_user(engine=app_env, name="bob", role="annotator")
    token = create_invite(engine=app_env, user_id=uid)
    at = app()
    at.query_params["invite"] = token
    at.run()
    assert f"/auth/invite?token={token}" in _html(at)
    assert "user_id" not in at.session_state
    bad = app()
    bad.query_params["login"] = "invite-refused"
    bad.run()
    assert any("invalid" in e.value for e in bad.error)


def test_team_page_disables_and_enables_an_account(app_env):
    from rmgap_annot.accounts import user_id_by_name
    from rmgap_annot.models import User
    from rmgap_annot.sessions import resolve_session, start_session

    rid = create_user(engine=app_env, name="res", role="researcher")
    ann = create_user(engine=app_env, name="ann", role="annotator")
    token = start_session(engine=app_env, user_id=ann, via="password")
    team = page("pages/team.py", rid, "researcher").run()
    person = next(sb for sb in team.selectbox if sb.label == "Person")
    person.set_value("ann").run()
    next(b for b in team.button if b.label == "Disable account").click().run()
    assert not team.exception
    with session_scope(app_env) as s:
        assert s.get(User, ann).active is False
    assert resolve_session(engine=app_env, token=token) is None
    next(b for b in team.button if b.label == "Enable account").click().run()
    with session_scope(app_env) as s:
        assert s.get(User, user_id_by_name(engine=app_env, name="ann")).active is True


def test_a_disabled_users_open_session_sees_no_page(app_env):
    from rmgap_annot.accounts import set_active

    uid = create_user(engine=app_env, name="ann", role="annotator")
    set_active(engine=app_env, user_id=uid, active=False)
    for path in ("pages/annotate.py", "pages/guidelines.py"):
        at = page(path, uid, "annotator").run()
        assert any("disabled" in e.value for e in at.error), path
        assert not any(b.label == "Submit" for b in at.button)


def button(at: AppTest, prefix: str):  # noqa: ANN201
    return next(b for b in at.button if b.label.startswith(prefix))


def radio(at: AppTest, words: str):  # noqa: ANN201
    return next(r for r in at.radio if words in r.label)


def annotator(engine, benchmark_id: int) -> int:
    uid = create_user(engine=engine, name="ann", role="annotator")
    confirm_guidelines(engine=engine, user_id=uid, benchmark_id=benchmark_id)
    return uid


def test_annotate_submit_back_and_finish(app_env, benchmark_id):
    engine = app_env
    update_study(engine=engine, benchmark_id=benchmark_id, quota_per_annotator=2)
    uid = annotator(engine, benchmark_id)
    at = app(uid).run()
    assert not at.exception
    assert "Which response fits the user's request best?" in at.radio[0].label
    assert at.radio[0].options == ["A [A]", "B [B]", "C [C]", "D [D]", "Can't decide [X]"]
    # Submitting without answering is refused with a message; nothing stored.
    button(at, "Submit").click().run()
    assert at.error and not labels(engine)
    radio(at, "fits the user's").set_value("B").run()
    radio(at, "How natural").set_value(4).run()
    button(at, "Submit").click().run()
    first = labels(engine)
    assert len(first) == 1 and first[0].naturalness == 4
    assert first[0].choice_key == json.loads(first[0].displayed_order_json)[1]
    # Can't decide needs a reason.
    radio(at, "fits the user's").set_value("X").run()
    radio(at, "How natural").set_value(2).run()
    button(at, "Submit").click().run()
    assert any("can't decide" in e.value for e in at.error)
    radio(at, "Why can't you decide").set_value("prompt_unclear").run()
    button(at, "Submit").click().run()
    assert len(labels(engine)) == 2
    assert any("All done" in s.value for s in at.success)
    # Back re-opens the latest label, pre-filled; a change replaces it.
    button(at, "Back").click().run()
    assert radio(at, "fits the user's").value == "X" and radio(at, "Why can't").value == "prompt_unclear"
    radio(at, "fits the user's").set_value("C").run()
    button(at, "Submit").click().run()
    after = labels(engine)
    assert len(after) == 2 and after[1].revisions == 1 and after[1].reason is None
    assert after[1].choice_key == json.loads(after[1].displayed_order_json)[2]


def test_ranking_mode(app_env, benchmark_id):
    engine = app_env
    update_study(engine=engine, benchmark_id=benchmark_id, mode="ranking")
    uid = annotator(engine, benchmark_id)
    at = app(uid).run()
    button(at, "D").click().run()
    button(at, "A").click().run()
    radio(at, "How natural").set_value(5).run()
    button(at, "Submit").click().run()
    assert any("Rank all 4" in e.value for e in at.error) and not labels(engine)
    button(at, "C").click().run()  # the last place (B) fills itself
    button(at, "Submit").click().run()
    (lab,) = labels(engine)
    order = json.loads(lab.displayed_order_json)
    assert json.loads(lab.ranking_json) == [order[3], order[0], order[2], order[1]]
    assert lab.choice_key == order[3]


def test_annotators_cannot_open_researcher_pages(app_env):
    uid = create_user(engine=app_env, name="ann", role="annotator")
    for path in ("pages/home.py", "pages/study.py", "pages/team.py"):
        at = page(path, uid, "researcher").run()  # a forged role in the session does not help
        assert any("researchers only" in e.value for e in at.error), path


def test_researcher_pages_render_and_save(app_env, benchmark_id):
    engine = app_env
    rid = create_user(engine=engine, name="res", role="researcher")
    create_user(engine=engine, name="ann", role="annotator")
    home = page("pages/home.py", rid, "researcher").run()
    assert not home.exception and any("small" in s.value for s in home.subheader)

    study = page("pages/study.py", rid, "researcher").run()
    assert not study.exception
    study.number_input[0].set_value(2)
    study.radio[1].set_value("ranking")
    next(b for b in study.button if b.label == "Save settings").click().run()
    s = get_study(engine=engine, benchmark_id=benchmark_id)
    assert (s.labels_per_item, s.mode) == (2, "ranking")

    team = page("pages/team.py", rid, "researcher").run()
    assert not team.exception
    team.text_input[0].input("newbie")
    next(b for b in team.button if b.label == "Add").click().run()
    assert any("newbie" in x.value for x in team.success)
    next(b for b in team.button if b.label == "Create invite link").click().run()
    assert "?invite=" in team.code[0].value

    guide = page("pages/guidelines.py", rid, "researcher").run()
    guide.text_area[0].set_value("# Be careful\nRead twice.")
    next(b for b in guide.button if b.label == "Save guidelines").click().run()
    assert get_study(engine=engine, benchmark_id=benchmark_id).guidelines_md.startswith("# Be careful")
    reader = page("pages/guidelines.py", create_user(engine=engine, name="ann2", role="annotator"), "annotator").run()
    assert any("Read twice." in m.value for m in reader.markdown) and not reader.text_area


def test_results_lists_flags_and_study_counts_late_labels(app_env, benchmark_id):
    from datetime import timedelta

    from sqlalchemy import update

    from rmgap_annot.annotation import flag_item, item_for_annotator, submit_label
    from rmgap_annot.assignment import next_item
    from rmgap_annot.models import Lease, utcnow

    engine = app_env
    rid = create_user(engine=engine, name="res", role="researcher")
    ann = annotator(engine, benchmark_id)
    item = next_item(engine=engine, user_id=ann, benchmark_id=benchmark_id)
    flag_item(engine=engine, user_id=ann, item_id=item, reason="offensive")
    results = page("pages/results.py", rid, "researcher").run()  # no labels yet: the flags show all the same
    assert not results.exception
    (exp,) = [e for e in results.expander if e.label.startswith("Flagged by annotators")]
    assert "1 flag(s) on 1 item(s)" in exp.label
    table = exp.dataframe[0].value
    assert list(table["reason"]) == ["Offensive"] and list(table["annotator"]) == ["ann"]

    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=1)
    other = next_item(engine=engine, user_id=ann, benchmark_id=benchmark_id)
    with session_scope(engine, write=True) as s:
        s.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    view = item_for_annotator(engine=engine, user_id=ann, item_id=other)
    submit_label(engine=engine, user_id=ann, item_id=other, choice_key=view.keys[0], naturalness=3)
    study = page("pages/study.py", rid, "researcher").run()
    assert any("1 late label" in c.value for c in study.caption)


def test_account_page_changes_the_own_password_after_checking_the_current_one(app_env):
    from rmgap_annot.accounts import authenticate

    uid = create_user(engine=app_env, name="alice", role="annotator", password="old-password-1")
    at = AppTest.from_file(str(ROOT / "pages/account.py"), default_timeout=TIMEOUT)
    at.session_state["user_id"] = uid
    at.session_state["user_name"] = "alice"
    at.run()
    current, new, again = at.text_input
    current.input("wrong-password")
    new.input("new-password-2")
    again.input("new-password-2")
    at.button[0].click().run()
    assert any("current password is wrong" in e.value for e in at.error)
    at.text_input[0].input("old-password-1")
    at.text_input[1].input("new-password-2")
    at.text_input[2].input("new-password-2")
    at.button[0].click().run()
    assert any("Password changed" in s.value for s in at.success)
    assert authenticate(engine=app_env, name="alice", password="new-password-2").ok
    assert not authenticate(engine=app_env, name="alice", password="old-password-1").ok


def test_team_page_says_which_annotators_are_simulated(app_env):
    from rmgap_annot.accounts import list_users
    from rmgap_annot.demo import seed_demo

    seed_demo(engine=app_env)
    rid = next(u.id for u in list_users(engine=app_env) if u.role == "researcher")
    team = page("pages/team.py", rid, "researcher").run()
    assert any("simulated" in w.value for w in team.warning)
    # every page whose numbers come from their labels says so too (Results: tests/test_results_page.py)
    for path in ("pages/export.py", "pages/reward_models.py"):
        at = page(path, rid, "researcher").run()
        assert not at.exception, (path, at.exception)
        assert any("simulated" in w.value and "sim-1" in w.value for w in at.warning), path


def test_a_mode_change_while_an_item_is_open_is_explained_and_the_pick_survives(app_env, benchmark_id):
    engine = app_env
    uid = annotator(engine, benchmark_id)
    at = app(uid).run()
    radio(at, "fits the user's").set_value("B").run()
    radio(at, "How natural").set_value(3).run()
    update_study(engine=engine, benchmark_id=benchmark_id, mode="ranking")
    at.run()
    assert any("switched this study to **ranking**" in w.value for w in at.warning)
    assert any("Your ranking: 1. B" in m.value for m in at.markdown)  # the pick is first place
    button(at, "A").click().run()
    button(at, "C").click().run()  # D fills the last place
    button(at, "Submit").click().run()
    (lab,) = labels(engine)
    order = json.loads(lab.displayed_order_json)
    assert json.loads(lab.ranking_json) == [order[1], order[0], order[2], order[3]] and lab.naturalness == 3


def test_guidelines_in_ranking_mode_add_the_ranking_paragraph(app_env, benchmark_id):
    update_study(engine=app_env, benchmark_id=benchmark_id, mode="ranking")
    uid = create_user(engine=app_env, name="ann", role="annotator")
    reader = page("pages/guidelines.py", uid, "annotator").run()
    assert any("Ranking mode" in m.value for m in reader.markdown)
    gate = app(uid).run()  # the gate before the first item shows the same text
    assert any("Ranking mode" in m.value for m in gate.markdown)
