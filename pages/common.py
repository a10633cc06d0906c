"""What every page shares: the cached engine, the logged-in user, role gates.

Session state holds ids only (never ORM objects): ``user_id``, ``user_name``,
``role`` and ``benchmark_id``. Researcher pages call ``require_researcher()``
first: an annotator who opens such a page's URL gets a refusal, because the
check runs on the server against the database, not in the menu.
"""

from __future__ import annotations

import streamlit as st

from rmgap_annot.accounts import AccessDenied, require_active, require_role
from rmgap_annot.catalog import list_benchmarks
from rmgap_annot.db import get_engine, init_db
from rmgap_annot.settings import resolve_db_url


@st.cache_resource(show_spinner=False)
def _engine_for(url: str):  # noqa: ANN202
    init_db(url)
    return get_engine(url)


def engine():  # noqa: ANN201
    """One engine for all sessions (thread-safe); schema upgraded once.

    Cached per URL, so tests that point RMGAP_ANNOT_DB elsewhere in one
    process never get a stale engine.
    """
    return _engine_for(resolve_db_url())


def current_user_id() -> int | None:
    return st.session_state.get("user_id")


def session_token() -> str | None:
    """This browser's session token, from the HttpOnly cookie server.py set
    (read on the websocket's opening request; the page's JavaScript never sees it)."""
    from rmgap_annot.sessions import COOKIE_NAME

    token = st.context.cookies.get(COOKIE_NAME)
    return token if isinstance(token, str) and token else None  # (no cookies at all under AppTest)


def require_researcher() -> int:
    """The researcher's user id, or stop the page with a refusal."""
    try:
        require_role(engine=engine(), user_id=current_user_id(), role="researcher")
    except AccessDenied as exc:
        st.error(str(exc))
        st.stop()
    return st.session_state["user_id"]


def choose_benchmark(*, key: str = "benchmark_picker") -> int | None:
    """A benchmark selector shared by the researcher pages (remembers the choice)."""
    rows = list_benchmarks(engine=engine())
    if not rows:
        st.info("No benchmark yet. Import one with `rmgap-annot import-benchmark FILE`.")
        return None
    ids = [b.id for b in rows]
    current = st.session_state.get("benchmark_id")
    index = ids.index(current) if current in ids else len(ids) - 1
    chosen = st.selectbox("Benchmark", rows, index=index, format_func=lambda b: f"{b.name} ({b.n_records} records)", key=key)
    st.session_state["benchmark_id"] = chosen.id
    return chosen.id


def log_in(*, user_id: int, name: str, role: str) -> None:
    """Remember who is logged in (ids and names only)."""
    st.session_state["user_id"] = user_id
    st.session_state["user_name"] = name
    st.session_state["role"] = role


def log_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def require_login() -> int:
    """The logged-in user's id, or stop the page (annotator pages).

    Asks the database every time: a disabled account's open browser sees
    nothing more.
    """
    uid = current_user_id()
    try:
        require_active(engine=engine(), user_id=uid)
    except AccessDenied as exc:
        st.error(str(exc))
        st.stop()
    return uid
