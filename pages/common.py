"""What every page shares: the checked engine, the error guard, the logged-in user, role gates.

Session state holds ids only (never ORM objects): ``user_id``, ``user_name``,
``role`` and ``benchmark_id``. Researcher pages call ``require_researcher()``
first: an annotator who opens such a page's URL gets a refusal, because the
check runs on the server against the database, not in the menu.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st

from rmgap_annot.accounts import AccessDenied, require_active, require_role
from rmgap_annot.catalog import list_benchmarks
from rmgap_annot.db import get_engine
from rmgap_annot.db_guard import DatabaseUnavailable, ensure_ready, require_existing_file
from rmgap_annot.errors import message_for, report_unexpected
from rmgap_annot.settings import resolve_db_url

try:
    # Streamlit's legacy multipage mode (a folder named pages/ next to the
    # entry script) is on until st.navigation first runs in the process: the
    # first request after a restart to a URL such as /home runs pages/home.py
    # without app.py (no guard, no database check; every file of pages/ in
    # the menu). Any page importing this module ends that mode for the
    # process, so at most that one run skips app.py (the page's own login and
    # role checks still run).
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
except (ImportError, AttributeError):  # a later Streamlit without the legacy mode
    pass


def engine():  # noqa: ANN201
    """The process-wide engine (``db.get_engine``), once the database is checked.

    The app never creates or migrates a database (``rmgap-annot init`` does):
    a missing file, a schema behind, or a file deleted or replaced since the
    app started stops the page with what to do. The check keeps its state in
    ``rmgap_annot.db_guard``, never in ``st.cache_*``, which any session can
    clear. Resolved per call, so tests that point RMGAP_ANNOT_DB elsewhere in
    one process never get a stale engine.
    """
    url = resolve_db_url()
    try:
        require_existing_file(url)
        eng = get_engine(url)
        ensure_ready(eng)
    except DatabaseUnavailable as exc:
        st.error(exc.public)
        st.stop()
    return eng


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
    chosen = _remembered_select("Benchmark", rows, "benchmark_id", key=key,
                                format_func=lambda b: f"{b.name} ({b.n_records} {'records' if b.format == 'rmgap' else b.format + ' entries'})")
    return chosen.id


def _remembered_select(label: str, rows: list, remembered: str, *, key: str, format_func):  # noqa: ANN001, ANN202
    """A selectbox over rows with ``.id`` that opens on the one chosen last (session state ``remembered``),
    else the newest, and remembers the choice for the other pages."""
    ids = [r.id for r in rows]
    current = st.session_state.get(remembered)
    chosen = st.selectbox(label, rows, index=ids.index(current) if current in ids else len(ids) - 1, key=key,
                          format_func=format_func)
    st.session_state[remembered] = chosen.id
    return chosen


def mark_simulated(benchmark_id: int) -> None:
    """On a page whose numbers come from a benchmark's labels: say so when simulated annotators (the
    demo's ``sim-...`` crowd) gave some of them, so they are never read as people's
    (rmgap_annot.demo.simulated_note). Another benchmark's simulated labels are not this one's."""
    from rmgap_annot.demo import labellers_of, simulated_note

    if note := simulated_note(labellers_of(engine=engine(), benchmark_id=benchmark_id)):
        st.warning(note)


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


def run_guarded(step: Callable[[], object]) -> bool:
    """Run a page (or a login step) so that no one sees a traceback.

    A database that is gone, replaced or behind shows what to do; anything
    else unexpected shows a short error id, and the traceback goes to the
    server log under the same id. Streamlit's own st.stop/st.rerun are not
    ``Exception``s and pass through. Returns whether ``step`` finished.
    """
    try:
        step()
    except DatabaseUnavailable as exc:
        st.error(exc.public)
    except Exception as exc:  # noqa: BLE001 - the whole point: nothing unexpected reaches the browser raw
        st.error(message_for(report_unexpected(exc)))
    else:
        return True
    return False


def choose_study(*, key: str = "study_picker") -> int | None:
    """A study selector for the researcher pages (several per benchmark; remembers the choice)."""
    from rmgap_annot.studies import list_studies

    rows = list_studies(engine=engine())
    if not rows:
        st.info("No study yet. Import a benchmark with `rmgap-annot import-benchmark FILE` (it gets one study).")
        return None
    chosen = _remembered_select("Study", rows, "study_id", key=key,
                                format_func=lambda s: f"{s.name} ({s.benchmark}: {s.labels:,} labels, {s.members} people)")
    st.session_state["benchmark_id"] = chosen.benchmark_id
    return chosen.id


def choose_label_scope(benchmark_id: int, *, key: str) -> tuple[int, ...] | None:
    """Whose labels a researcher page counts: one study of the benchmark, or all pooled (None), as ``--study``.

    Drawn only when the benchmark has several studies.
    """
    from rmgap_annot.studies import list_studies

    rows = list_studies(engine=engine(), benchmark_id=benchmark_id)
    if len(rows) < 2:
        return None
    scope = st.selectbox("Labels from", [None, *rows], key=key,
                         format_func=lambda s: "all studies, pooled (each study's people are coders of their own)"
                         if s is None else f"study {s.name} ({s.labels:,} labels, {s.members} people)")
    return None if scope is None else (scope.id,)
