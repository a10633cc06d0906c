"""Entry point: log in (password or personal invite link), then the pages a role may see.

Annotators see only Annotate and Guidelines; researchers see the study
pages. The menu is convenience only: every researcher page re-checks the
role against the database (``require_researcher``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.common import current_user_id, engine, log_in, log_out
from rmgap_annot.accounts import authenticate, redeem_invite

st.set_page_config(page_title="rmgap-annot", layout="wide")
HERE = Path(__file__).parent


def _invite_login() -> None:
    """A personal link logs its owner in; it stays in the URL so a refresh keeps working."""
    token = st.query_params.get("invite")
    if not token or current_user_id() is not None:
        return
    result = redeem_invite(engine=engine(), token=token)
    if result.ok:
        log_in(user_id=result.user_id, name=result.name, role=result.role)
    else:
        st.session_state["login_error"] = result.message


def login_page() -> None:
    st.title("rmgap-annot")
    st.caption("Human validation of the RMGAP reward-model benchmark.")
    if msg := st.session_state.pop("login_error", None):
        st.error(msg)
    with st.form("login"):
        name = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        result = authenticate(engine=engine(), name=name, password=password)
        if result.ok:
            log_in(user_id=result.user_id, name=result.name, role=result.role)
            st.rerun()
        else:
            st.error(result.message)


def _page(path: str, title: str, icon: str, **kwargs) -> st.Page:  # noqa: ANN003
    return st.Page(path, title=title, icon=icon, **kwargs)


def researcher_pages() -> dict[str, list[st.Page]]:
    study = [
        _page("pages/home.py", "Home", ":material/home:", default=True),
        _page("pages/study.py", "Study", ":material/tune:"),
        _page("pages/team.py", "Team", ":material/group:"),
        _page("pages/guidelines.py", "Guidelines", ":material/menu_book:"),
    ]
    # Pages from other features appear once their files exist.
    analysis = [
        _page(f"pages/{name}.py", title, icon)
        for name, title, icon in (
            ("results", "Results", ":material/monitoring:"),
            ("reward_models", "Reward models", ":material/smart_toy:"),
            ("export", "Export", ":material/download:"),
        )
        if (HERE / "pages" / f"{name}.py").exists()
    ]
    return {"Study": study, "Analysis": analysis} if analysis else {"Study": study}


def annotator_pages() -> list[st.Page]:
    return [
        _page("pages/annotate.py", "Annotate", ":material/edit_note:", default=True),
        _page("pages/guidelines.py", "Guidelines", ":material/menu_book:"),
    ]


_invite_login()
if current_user_id() is None:
    nav = st.navigation([st.Page(login_page, title="Log in", icon=":material/login:")], position="hidden")
else:
    with st.sidebar:
        st.write(f"Logged in as **{st.session_state.get('user_name', '')}** ({st.session_state.get('role', '')})")
        if st.button("Log out"):
            log_out()
            st.query_params.clear()
            st.rerun()
    nav = st.navigation(researcher_pages() if st.session_state.get("role") == "researcher" else annotator_pages())
nav.run()
