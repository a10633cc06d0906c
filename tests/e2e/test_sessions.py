"""Server-side sessions in real Chromium: F5 keeps a login, logout and disable end it,
Back logs nobody in, an invite token never stays in the address bar."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rmgap_annot.accounts import create_invite, create_user, set_active, user_id_by_name
from rmgap_annot.assignment import update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.models import Label
from rmgap_annot.sessions import count_sessions
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import WAIT_MS, log_in, pass_guidelines_gate, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "alice-password-1"
ANNOTATE = "The user's request"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 2, "Writing": 1, "Reasoning": 1, "Safety": 1}, seed=4, long_text=False)
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="e2e").benchmark_id
        update_study(engine=engine, benchmark_id=bid, quota_per_annotator=10)
        for name in ("alice", "carol", "dave", "erin"):
            create_user(engine=engine, name=name, role="annotator", password=PASSWORD)
        create_user(engine=engine, name="bob", role="annotator")

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def logged_in(page) -> bool:  # noqa: ANN001
    settle(page)
    return page.get_by_role("button", name="Log out").count() == 1


def on_login_page(page) -> None:  # noqa: ANN001
    page.get_by_role("textbox", name="Username").wait_for(timeout=WAIT_MS)
    settle(page)
    assert not logged_in(page)


def test_f5_keeps_a_password_user_logged_in_and_the_cookie_is_out_of_the_scripts_reach(server, browser):
    context = browser.new_context()
    page = context.new_page()
    log_in(page, server.url, "alice", PASSWORD)
    cookie = next(c for c in context.cookies() if c["name"] == "rmgap_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "rmgap_session" not in page.evaluate("document.cookie")
    page.reload()
    pass_guidelines_gate(page)
    assert logged_in(page)
    context.close()


def test_an_invite_link_logs_in_keeps_its_token_out_of_the_history_and_survives_f5(server, browser):
    engine = get_engine(server.db_url)
    token = create_invite(engine=engine, user_id=user_id_by_name(engine=engine, name="bob"))
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "?invite=" + token)
    pass_guidelines_gate(page)
    assert token not in page.url
    # The history holds the new tab's blank page and the clean address, nothing between.
    assert page.evaluate("history.length") == 2
    page.go_back()
    assert page.url == "about:blank"
    page.go_forward()
    pass_guidelines_gate(page)
    assert token not in page.url
    page.reload()
    pass_guidelines_gate(page)
    assert logged_in(page)
    assert token not in page.url
    context.close()


def test_after_logout_back_logs_nobody_in(server, browser):
    engine = get_engine(server.db_url)
    bob = user_id_by_name(engine=engine, name="bob")
    token = create_invite(engine=engine, user_id=bob)
    bobs_before = count_sessions(engine=engine, user_id=bob)  # other tests' browsers
    for how in ("password", "invite"):
        context = browser.new_context()
        page = context.new_page()
        if how == "password":
            log_in(page, server.url, "carol", PASSWORD)
        else:
            page.goto(server.url + "?invite=" + token)
            pass_guidelines_gate(page)
            settle(page)
        # A second page, so Back has a logged-in entry of the app to return to.
        page.get_by_role("link", name="Guidelines").click()
        page.wait_for_url("**/guidelines")
        settle(page)
        page.get_by_role("button", name="Log out").click()
        on_login_page(page)
        page.go_back()
        page.wait_for_load_state()
        assert page.url.startswith(server.url)
        on_login_page(page)
        page.reload()
        on_login_page(page)
        context.close()
    assert count_sessions(engine=engine, user_id=user_id_by_name(engine=engine, name="carol")) == 0
    assert count_sessions(engine=engine, user_id=bob) == bobs_before


def test_a_disabled_users_open_browser_stores_nothing_more(server, browser):
    engine = get_engine(server.db_url)
    context = browser.new_context()
    page = context.new_page()
    log_in(page, server.url, "dave", PASSWORD)
    uid = user_id_by_name(engine=engine, name="dave")
    set_active(engine=engine, user_id=uid, active=False)
    settle(page)
    # Every answer is saved as a draft at once, so the first click already meets the check.
    page.locator(".st-key-rmgap-answer").get_by_text("A [A]", exact=True).click()
    on_login_page(page)
    page.keyboard.press("4")
    page.keyboard.press("Enter")
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Label).where(Label.user_id == uid)).scalar_one() == 0
    context.close()


def test_changing_ones_password_on_the_account_page_logs_out_the_other_browser(server, browser):
    here_ctx, there_ctx = browser.new_context(), browser.new_context()
    here, there = here_ctx.new_page(), there_ctx.new_page()
    log_in(here, server.url, "erin", PASSWORD)
    log_in(there, server.url, "erin", PASSWORD)
    here.get_by_role("link", name="Account").click()
    here.get_by_role("textbox", name="Current password").fill(PASSWORD)
    here.get_by_role("textbox", name="New password", exact=True).fill("erin's new passphrase")
    here.get_by_role("textbox", name="New password again").fill("erin's new passphrase")
    here.get_by_role("button", name="Change password").click()
    here.get_by_text("Password changed", exact=False).wait_for(timeout=WAIT_MS)
    there.reload()
    on_login_page(there)
    here.reload()
    here.get_by_text("Change your password").wait_for(timeout=WAIT_MS)
    assert logged_in(here)
    here_ctx.close()
    there_ctx.close()
