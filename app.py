"""Page script: log in (password, personal invite link or SSO), then the pages a role may see.

Started through ``server.py`` (``streamlit run server.py``), whose routes
hold the login in an HttpOnly cookie; every rerun here looks that session up
in the database (``resolve_session``), so a refresh keeps the login and a
logout, disable, revoke or password change ends it at once. Annotators see
only Annotate and Guidelines; researchers see the study pages. The menu is
convenience only: every researcher page re-checks the role against the
database (``require_researcher``).
"""

from __future__ import annotations

import streamlit as st

from pages.common import current_user_id, engine, log_in, log_out, run_guarded, session_token
from rmgap_annot import sessions
from rmgap_annot.accounts import authenticate
from rmgap_annot.crowd.arrival import REFUSALS
from rmgap_annot.sso import sso_enabled, sso_options, user_for_identity

st.set_page_config(page_title="rmgap-annot", layout="wide")
# Every run first checks the database (there, current, the same file as at
# start); otherwise the page says what to do and nothing else runs.
if not run_guarded(engine):
    st.stop()


def _resolve_session() -> None:
    """Who this browser is, from its cookie's server-side session (every rerun).

    Nothing but this puts a user into session state, so a session ended
    anywhere (logout in another tab, disable, revoke, password change) logs
    this browser out on its next click.
    """
    token = session_token()
    who = sessions.resolve_session(engine=engine(), token=token) if token else None
    if who is not None:
        log_in(user_id=who.user_id, name=who.name, role=who.role)
        st.session_state["session_bound"] = True
    elif token or st.session_state.get("session_bound"):
        log_out()


def _go(url: str) -> None:
    """Send the browser to one of server.py's routes, replacing the current history entry."""
    st.html(f"<script>window.location.replace({url!r});</script>", unsafe_allow_javascript=True)
    st.stop()


def _hand_over(user_id: int, via: str) -> None:
    """Give the browser a one-use ticket to trade for its HttpOnly session cookie.

    The ticket travels in a POST body (never a URL), then the page reloads
    in place and the new websocket carries the cookie.
    """
    ticket = sessions.issue_ticket(engine=engine(), user_id=user_id, via=via)
    st.html(
        "<script>fetch('/auth/session', {method: 'POST', credentials: 'same-origin', "
        "headers: {'Content-Type': 'application/x-www-form-urlencoded'}, "
        f"body: 'ticket=' + {ticket!r}}}).finally(() => window.location.replace(window.location.pathname));</script>",
        unsafe_allow_javascript=True,
    )
    st.info("Logging in...")
    st.stop()


def _invite_login() -> None:
    """An old-style ``?invite=TOKEN`` that reached the script (server.py redirects these
    before they get here): send it to the route that trades it for a cookie."""
    token = st.query_params.get("invite")
    if token and current_user_id() is None:
        from urllib.parse import urlencode

        _go("/auth/invite?" + urlencode({"token": token}))


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
        _hand_over(result.user_id, "sso")
    st.error(result.message)
    st.button("Sign out of SSO", on_click=st.logout)


def login_page() -> None:
    st.title("rmgap-annot")
    st.caption("Human validation of the RMGAP reward-model benchmark.")
    if not sessions.ROUTES_MOUNTED:
        st.warning("Logging in needs the app's own routes: start it with `streamlit run server.py`.")
    if st.query_params.get("login") == "invite-refused":
        st.error("This invite link is invalid, expired or revoked, or the account is disabled. "
                 "Ask your researcher for a new one.")
    if (refused := st.query_params.get("crowd")) in REFUSALS:  # a study link the server refused (server.py)
        st.error(REFUSALS[refused])
        st.stop()
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
            _hand_over(result.user_id, "password")
        else:
            st.error(result.message)


def _page(path: str, title: str, icon: str, **kwargs) -> st.Page:  # noqa: ANN003
    return st.Page(path, title=title, icon=icon, **kwargs)


def researcher_pages() -> dict[str, list[st.Page]]:
    study = [
        _page("pages/home.py", "Home", ":material/home:", default=True),
        _page("pages/study.py", "Study", ":material/tune:"),
        _page("pages/team.py", "Team", ":material/group:"),
        _page("pages/quality.py", "Quality", ":material/fact_check:"),
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


run_guarded(_resolve_session)
run_guarded(_invite_login)
if current_user_id() is None:
    nav = st.navigation([st.Page(login_page, title="Log in", icon=":material/login:")], position="hidden")
else:
    with st.sidebar:
        st.write(f"Logged in as **{st.session_state.get('user_name', '')}** ({st.session_state.get('role', '')})")
        if st.button("Log out"):
            # Ended in the database first: the cookie is cleared by the route,
            # but a copy of it is already worthless.
            sessions.end_session(engine=engine(), token=session_token())
            log_out()
            _go("/auth/logout")
    nav = st.navigation(researcher_pages() if st.session_state.get("role") == "researcher" else annotator_pages())
# No traceback reaches a browser: an error id on the page, the traceback in the server log.
run_guarded(nav.run)
