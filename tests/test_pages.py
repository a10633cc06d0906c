"""The pages' logic through streamlit.testing.v1.AppTest (no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from rmgap_annot.accounts import create_invite, create_user
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


def test_annotate_submit_back_and_finish(app_env, benchmark_id):
    engine = app_env
    update_study(engine=engine, benchmark_id=benchmark_id, quota_per_annotator=2)
    uid = create_user(engine=engine, name="ann", role="annotator")
    at = app(uid).run()
    assert not at.exception
    assert [r.label for r in at.radio][0] == "Which response fits the user's request best?"
    assert at.radio[0].options == ["Response A", "Response B", "Response C", "Response D", "Can't decide"]
    # Submitting without answering is refused with a message; nothing stored.
    next(b for b in at.button if b.label == "Submit").click().run()
    assert at.error and not labels(engine)
    at.radio[0].set_value("B")
    at.radio[2].set_value(4)
    next(b for b in at.button if b.label == "Submit").click().run()
    first = labels(engine)
    assert len(first) == 1 and first[0].naturalness == 4
    assert first[0].choice_key == json.loads(first[0].displayed_order_json)[1]
    # Can't decide needs a reason.
    at.radio[0].set_value("none")
    at.radio[2].set_value(2)
    next(b for b in at.button if b.label == "Submit").click().run()
    assert any("say why" in e.value for e in at.error)
    at.radio[1].set_value("prompt_unclear")
    next(b for b in at.button if b.label == "Submit").click().run()
    assert len(labels(engine)) == 2
    assert any("All done" in s.value for s in at.success)
    # Back re-opens the latest label, pre-filled; a change replaces it.
    next(b for b in at.button if b.label == "Back").click().run()
    assert at.radio[0].value == "none" and at.radio[1].value == "prompt_unclear"
    at.radio[0].set_value("C")
    next(b for b in at.button if b.label == "Submit").click().run()
    after = labels(engine)
    assert len(after) == 2 and after[1].revisions == 1 and after[1].reason is None
    assert after[1].choice_key == json.loads(after[1].displayed_order_json)[2]


def test_ranking_mode(app_env, benchmark_id):
    engine = app_env
    update_study(engine=engine, benchmark_id=benchmark_id, mode="ranking")
    uid = create_user(engine=engine, name="ann", role="annotator")
    at = app(uid).run()
    at.multiselect[0].set_value(["D", "A"])
    at.radio[1].set_value(5)
    next(b for b in at.button if b.label == "Submit").click().run()
    assert any("all four" in e.value for e in at.error) and not labels(engine)
    at.multiselect[0].set_value(["D", "A", "C", "B"])
    next(b for b in at.button if b.label == "Submit").click().run()
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
