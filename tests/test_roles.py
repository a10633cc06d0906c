"""Roles are enforced on the server: every researcher page refuses annotators and strangers.

Hiding a menu entry is not access control: these tests open each researcher
page directly (as someone typing its URL would) with an annotator's session,
with no session, with a disabled researcher, and with a forged role in the
session state (the page must ask the database, not trust the session).

Every test that touches a database runs on SQLite and on PostgreSQL
(``db_url`` is ``backend_url`` here): the pages read ``RMGAP_ANNOT_DB``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from rmgap_annot.accounts import AccessDenied, create_user, require_role, set_active

ROOT = Path(__file__).resolve().parent.parent
RESEARCHER_PAGES = [p for p in ("home", "study", "team", "export") if (ROOT / "pages" / f"{p}.py").exists()]


@pytest.fixture
def db_url(backend_url: str) -> str:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_url


@pytest.fixture
def accounts(engine, db_url, monkeypatch):
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()  # the pages' cached engine must be this test's database
    yield {
        "annotator": create_user(engine=engine, name="ann", role="annotator"),
        "researcher": create_user(engine=engine, name="res", role="researcher"),
    }
    st.cache_resource.clear()


def _open(page: str, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=30)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _refused(at: AppTest) -> bool:
    texts = [e.value for e in at.error]
    return any("log in" in t.lower() or "researchers only" in t.lower() for t in texts)


def test_require_role(engine):
    ann = create_user(engine=engine, name="ann", role="annotator")
    res = create_user(engine=engine, name="res", role="researcher")
    require_role(engine=engine, user_id=res)
    require_role(engine=engine, user_id=ann, role="annotator")
    for uid in (ann, None, 999_999):
        with pytest.raises(AccessDenied):
            require_role(engine=engine, user_id=uid)
    set_active(engine=engine, user_id=res, active=False)
    with pytest.raises(AccessDenied):
        require_role(engine=engine, user_id=res)


def test_there_are_researcher_pages_to_check():
    assert RESEARCHER_PAGES, "no researcher pages found under pages/"


@pytest.mark.parametrize("page", RESEARCHER_PAGES)
def test_annotator_opening_a_researcher_page_is_refused(accounts, benchmark_id, page):
    at = _open(page, user_id=accounts["annotator"], role="annotator", user_name="ann")
    assert not at.exception, at.exception
    assert _refused(at)
    # Nothing of the page beyond the refusal: no forms, inputs or tables.
    assert not at.button and not at.text_input and not at.number_input and not at.dataframe


@pytest.mark.parametrize("page", RESEARCHER_PAGES)
def test_forged_role_in_session_state_is_refused(accounts, benchmark_id, page):
    at = _open(page, user_id=accounts["annotator"], role="researcher", user_name="ann")
    assert _refused(at)


@pytest.mark.parametrize("page", RESEARCHER_PAGES)
def test_no_login_is_refused(accounts, benchmark_id, page):
    at = _open(page)
    assert not at.exception, at.exception
    assert _refused(at)


@pytest.mark.parametrize("page", RESEARCHER_PAGES)
def test_researcher_is_let_in(accounts, benchmark_id, page):
    # Let in only if the page found the researcher in the database RMGAP_ANNOT_DB
    # names (on PostgreSQL a stale cached engine would point at a dropped database).
    at = _open(page, user_id=accounts["researcher"], role="researcher", user_name="res", benchmark_id=benchmark_id)
    assert not at.exception, at.exception
    assert not _refused(at)


def test_disabled_researcher_is_refused(accounts, benchmark_id, engine):
    set_active(engine=engine, user_id=accounts["researcher"], active=False)
    page = RESEARCHER_PAGES[0]
    at = _open(page, user_id=accounts["researcher"], role="researcher", user_name="res")
    assert _refused(at)
