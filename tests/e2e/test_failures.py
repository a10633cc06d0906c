"""Failures as an annotator or researcher meets them in Chromium: an error id, never a traceback.

Real failures: a SQLite trigger that aborts label inserts (as a full disk
would), a corrupted row, and the database file deleted under the running
app. Every websocket frame the browser receives is recorded: no traceback,
server path or SQL may be in them, and the server log holds the traceback
under the id the page shows.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import ROOT, WAIT_MS, log_in, pick_and_submit, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "long-enough-password"
# Streamlit itself sends every session the main script's path (app.py) in its
# NewSession message; a traceback would add the paths of the modules below.
LEAKS = (b"Traceback", str(ROOT / "rmgap_annot").encode(), str(ROOT / "pages").encode(), b'.py", line', b"site-packages",
         b"INSERT INTO", b"IntegrityError", b"simulated disk failure")


@pytest.fixture
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 1, "Writing": 1}, seed=5, long_text=False)
        import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="fail")
        create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
        create_user(engine=engine, name="res", role="researcher", password=PASSWORD)

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def db_file(server) -> Path:  # noqa: ANN001
    return Path(server.db_url.removeprefix("sqlite:///"))


def recorded(page) -> list[bytes]:  # noqa: ANN001
    frames: list[bytes] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: frames.append(p if isinstance(p, bytes) else p.encode())))
    return frames


def answer(page) -> None:  # noqa: ANN001
    pick_and_submit(page, "B", 4)


def shown_error_id(page, server) -> str:  # noqa: ANN001
    alert = page.get_by_text(re.compile(r"error id [0-9a-f]{8}")).first
    alert.wait_for(timeout=WAIT_MS)
    error_id = re.search(r"error id ([0-9a-f]{8})", alert.inner_text()).group(1)
    log = Path(server.log_path).read_text()
    assert f"error id {error_id}" in log and "Traceback" in log  # the researcher finds it on the server
    return error_id


def test_a_failing_label_write_then_a_deleted_database_file(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    frames = recorded(page)
    log_in(page, server.url, "ann", PASSWORD)
    page.get_by_text("0 of ", exact=False).first.wait_for(timeout=WAIT_MS)
    with sqlite3.connect(db_file(server)) as conn:
        conn.execute("CREATE TRIGGER fail_label BEFORE INSERT ON label BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END")
    answer(page)
    shown_error_id(page, server)
    settle(page)
    assert page.get_by_text("was not saved", exact=False).count() == 1
    assert page.get_by_text("0 of ", exact=False).count() == 1

    with sqlite3.connect(db_file(server)) as conn:
        conn.execute("DROP TRIGGER fail_label")
    answer(page)  # the form kept the answer; a second try is stored
    page.get_by_text("1 of ", exact=False).first.wait_for(timeout=WAIT_MS)
    settle(page)

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file(server)}{suffix}").unlink(missing_ok=True)
    settle(page)
    # The first answer already writes (a server-side draft), so it already meets the check.
    page.locator(".st-key-rmgap-answer").get_by_text("B [B]", exact=True).click()
    page.get_by_text("has been deleted or moved while the app was running", exact=False).first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.get_by_text("2 of ", exact=False).count() == 0  # not acknowledged
    page.reload()  # a fresh page run says the same; nothing recreates the file
    page.get_by_text("has been deleted or moved", exact=False).first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert not db_file(server).exists()
    assert page.get_by_text(str(db_file(server)), exact=False).count() == 0  # no server path on the page

    received = b"\n".join(frames)
    assert b"The user's request" in received  # the capture sees the page
    assert not [leak for leak in LEAKS if leak in received]
    page.close()


def test_a_failing_researcher_page_shows_an_error_id(server, browser):
    with sqlite3.connect(db_file(server)) as conn:  # a corrupted row: reading it raises in Python
        conn.execute("UPDATE benchmark SET imported_at = 'not a timestamp'")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    frames = recorded(page)
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("res")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    shown_error_id(page, server)
    settle(page)
    received = b"\n".join(frames)
    assert b"error id" in received
    assert not [leak for leak in (*LEAKS, b"not a timestamp", b"ValueError") if leak in received]
    page.close()


def test_after_a_restart_pages_run_through_app_py_guard(server, browser):
    """Streamlit's legacy pages/ mode runs a sub-page's file without app.py until st.navigation runs.

    The first request of a fresh server to /home is served that way (the
    page's own login check still refuses); from then on every page must run
    through app.py (its guard, its database check), even if nobody opened /.
    """
    first = browser.new_page(viewport={"width": 1400, "height": 1000})
    first.goto(server.url + "home")
    first.get_by_text("Please log in.").wait_for(timeout=WAIT_MS)
    later = browser.new_page(viewport={"width": 1400, "height": 1000})
    later.goto(server.url + "team")
    later.get_by_role("textbox", name="Username").wait_for(timeout=WAIT_MS)  # app.py's login page
    settle(later)
    assert later.get_by_text("reward models", exact=True).count() == 0  # no menu of every file in pages/
    first.close()
    later.close()
