"""Entry point: log in (password or personal invite link), then the pages a role may see.

Annotators see only Annotate and Guidelines; researchers see the study
pages. The menu is convenience only: every researcher page re-checks the
role against the database (``require_researcher``).
"""

from __future__ import annotations

import streamlit as st

from pages.common import current_user_id, engine, log_in, log_out
from rmgap_annot.accounts import authenticate, redeem_invite
from rmgap_annot.sso import sso_enabled, sso_options, user_for_identity

st.set_page_config(page_title="rmgap-annot", layout="wide")


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


def _sso_login() -> None:
    """Optional OIDC sign-in (only when secrets.toml has an [auth] section).

    The provider says who someone is; the database says what they may do.
    """
    if not st.user.is_logged_in:
        st.button("Log in with SSO", on_click=st.login)
        return
    result = user_for_identity(
        engine=engine(), email=st.user.get("email"), email_verified=st.user.get("email_verified"), options=sso_options(st.secrets)
    )
    if result.ok:
        log_in(user_id=result.user_id, name=result.name, role=result.role)
        st.rerun()
    st.error(result.message)
    st.button("Sign out of SSO", on_click=st.logout)


def login_page() -> None:
    st.title("rmgap-annot")
    st.caption("Human validation of the RMGAP reward-model benchmark.")
    if msg := st.session_state.pop("login_error", None):
        st.error(msg)
    if sso_enabled(st.secrets):
        _sso_login()
        st.divider()
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
        _page("pages/account.py", "Account", ":material/person:"),
    ]
    analysis = [
        _page("pages/results.py", "Results", ":material/monitoring:"),
        _page("pages/reward_models.py", "Reward models", ":material/smart_toy:"),
        _page("pages/export.py", "Export", ":material/download:"),
    ]
    return {"Study": study, "Analysis": analysis}


def annotator_pages() -> list[st.Page]:
    return [
        _page("pages/annotate.py", "Annotate", ":material/edit_note:", default=True),
        _page("pages/guidelines.py", "Guidelines", ":material/menu_book:"),
        _page("pages/account.py", "Account", ":material/person:"),
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
