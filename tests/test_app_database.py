"""The app never creates or migrates a database: a missing file or a schema behind shows what to do.

Through the real app.py with AppTest. (Error ids instead of tracebacks are
checked in Chromium, tests/e2e/test_failures.py: AppTest reruns a page of
``pages/`` without app.py, so it cannot see app.py's guard.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streamlit.testing.v1 import AppTest

from rmgap_annot.db import dispose_engines, init_db

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30


def test_the_app_never_creates_a_missing_database(monkeypatch, tmp_path):
    missing = tmp_path / "sub" / "none.sqlite"
    monkeypatch.setenv("RMGAP_ANNOT_DB", f"sqlite:///{missing}")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("There is no database yet" in e.value and "rmgap-annot init" in e.value for e in at.error), [e.value for e in at.error]
    assert not [e.value for e in at.error if str(tmp_path) in e.value]  # the login page is public: no server path
    assert not missing.exists() and not missing.parent.exists()


def test_the_app_never_migrates_a_schema_that_is_behind(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    init_db(url, revision="0001")
    dispose_engines()
    monkeypatch.setenv("RMGAP_ANNOT_DB", url)
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert any("schema revision 0001" in e.value and "rmgap-annot init" in e.value for e in at.error), [e.value for e in at.error]
    with sqlite3.connect(tmp_path / "old.sqlite") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
