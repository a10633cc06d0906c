"""Real Chromium against a real `streamlit run server.py` (the app with its login routes) on a temporary database.

Chromium is Debian's (`shutil.which("chromium")`), driven by Playwright for
Python; `playwright install` is never used. Without the binary these tests
skip. One app server and one browser per module keep the run short.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 15_000


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("chromium is not installed (make test installs it with apt-get when run as root)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`streamlit run server.py` in a subprocess, on a free port, with its own database."""

    def __init__(self, db_url: str, log_path: Path):
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "RMGAP_ANNOT_DB": db_url, "PYTHONPATH": str(ROOT)}
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "server.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.log_path = log_path
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"streamlit did not start in 60 s:\n{log_path.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def start_server(tmp_path_factory, prepare) -> AppServer:  # noqa: ANN001
    """Prepare a fresh database with ``prepare(engine)`` and serve the app on it."""
    from rmgap_annot.db import dispose_engines, get_engine, init_db

    folder = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{folder / 'app.sqlite'}"
    init_db(url)
    prepare(get_engine(url))
    dispose_engines()
    return AppServer(url, folder / "streamlit.log")


def settle(page) -> None:  # noqa: ANN001
    """Wait until a rerun has finished drawing.

    During a rerun Streamlit keeps the previous elements on screen, marked
    ``data-stale="true"``, and swaps them one by one; a click on a stale form
    lands on a widget that is about to be replaced and is lost. Settled means:
    no stale element and no running indicator, twice in a row 100 ms apart.
    (Polled from Python: ``wait_for_function`` takes a returned Promise as
    truthy without awaiting it.)
    """
    busy = """() => !!document.querySelector("[data-stale='true'], [data-testid='stStatusWidgetRunningIcon']")"""
    deadline = time.monotonic() + WAIT_MS / 1000
    quiet = 0
    while quiet < 2:  # noqa: PLR2004 - two quiet looks in a row
        if time.monotonic() > deadline:
            raise AssertionError("the app was still rerunning after the wait")
        quiet = 0 if page.evaluate(busy) else quiet + 1
        page.wait_for_timeout(100)


def log_in(page, url: str, name: str, password: str) -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    pass_guidelines_gate(page)


GATE_BUTTON = "I have read the guidelines: start"


def pass_guidelines_gate(page) -> None:  # noqa: ANN001
    """Wait for the annotate page; confirm the guidelines first if the gate asks (a new annotator's first item).

    The item's context is a request, or a conversation ending in the user's last message."""
    request = page.get_by_text("The user's request", exact=True).or_(page.locator(".st-key-rmgap-lastturn")).first
    request.or_(page.get_by_role("button", name=GATE_BUTTON)).first.wait_for(timeout=WAIT_MS)
    if not request.is_visible():
        settle(page)
        page.get_by_role("button", name=GATE_BUTTON).click()
        request.wait_for(timeout=WAIT_MS)
    settle(page)


def pick_and_submit(page, letter: str, naturalness: int) -> None:  # noqa: ANN001
    """Answer the open item in the workbench's answer panel (pick, naturalness) and press Submit."""
    from rmgap_annot.annotation import NATURALNESS  # noqa: PLC0415

    settle(page)
    panel = page.locator(".st-key-rmgap-answer")
    panel.get_by_text(f"{letter} [{letter}]", exact=True).click()
    settle(page)
    panel.get_by_text(f"[{naturalness}] {NATURALNESS[naturalness]}", exact=True).click()
    settle(page)
    assert panel.get_by_role("radio", name=f"{letter} [{letter}]").is_checked()
    panel.get_by_role("button", name="Submit").click()
