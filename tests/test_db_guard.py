"""A database file deleted or replaced under a running app stops label writes; a missing or old schema is refused."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import submit_label
from rmgap_annot.assignment import next_item
from rmgap_annot.db import get_engine, init_db, session_scope
from rmgap_annot.db_guard import DatabaseUnavailable, ensure_ready
from rmgap_annot.models import Label


def _label(engine, uid, bid):  # noqa: ANN001, ANN202
    item = next_item(engine=engine, user_id=uid, benchmark_id=bid)
    return submit_label(engine=engine, user_id=uid, item_id=item, choice_key=None, reason="prompt_unclear", naturalness=3)


def _path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


def test_a_deleted_database_file_stops_label_writes(engine, db_url, benchmark_id):
    uid = create_user(engine=engine, name="ann", role="annotator")
    ensure_ready(engine)  # the app's first page run
    _label(engine, uid, benchmark_id)
    item = next_item(engine=engine, user_id=uid, benchmark_id=benchmark_id)
    # Any browser session can make Streamlit clear its caches: the check must not forget.
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_path(db_url)}{suffix}").unlink(missing_ok=True)
    # The engine's open connections would still write into the unlinked file.
    with pytest.raises(DatabaseUnavailable, match="deleted or moved.*NOT saved"):
        submit_label(engine=engine, user_id=uid, item_id=item, choice_key=None, reason="prompt_unclear", naturalness=3)
    with pytest.raises(DatabaseUnavailable, match="deleted or moved"):
        ensure_ready(engine)
    assert not _path(db_url).exists()  # the check never recreates the file


def test_a_replaced_database_file_stops_label_writes(engine, db_url, benchmark_id, tmp_path):
    uid = create_user(engine=engine, name="ann", role="annotator")
    ensure_ready(engine)
    _label(engine, uid, benchmark_id)
    other = tmp_path / "other.sqlite"
    init_db(f"sqlite:///{other}")
    shutil.move(other, _path(db_url))  # e.g. a backup restored with mv while the app runs
    with pytest.raises(DatabaseUnavailable, match="replaced by another file"):
        _label(engine, uid, benchmark_id)
    with sqlite3.connect(_path(db_url)) as conn:
        assert conn.execute("SELECT count(*) FROM label").fetchone() == (0,)


def test_the_app_refuses_a_missing_file_or_a_schema_behind(tmp_path):
    missing = tmp_path / "none.sqlite"
    with pytest.raises(DatabaseUnavailable, match=r"There is no database at .*rmgap-annot init"):
        ensure_ready(get_engine(f"sqlite:///{missing}"))
    assert not missing.exists()
    old = f"sqlite:///{tmp_path / 'old.sqlite'}"
    init_db(old, revision="0001")
    with pytest.raises(DatabaseUnavailable, match=r"revision 0001.*rmgap-annot init"):
        ensure_ready(get_engine(old))
    init_db(old)  # what the message says to do; the running app then works without a restart
    ensure_ready(get_engine(old))


def test_labels_keep_flowing_while_the_file_stays(engine, benchmark_id):
    uid = create_user(engine=engine, name="ann", role="annotator")
    ensure_ready(engine)
    for _ in range(3):
        _label(engine, uid, benchmark_id)
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Label)).scalar_one() == 3


@pytest.mark.postgres
def test_a_postgresql_database_dropped_and_created_again_stops_label_writes(pg_server, pg_url, small_file):
    """The engine's pool reconnects to a database of the same name: without the OID check, labels went there."""
    from sqlalchemy.engine import make_url

    from rmgap_annot.formats.rmgap import import_benchmark

    def fill() -> tuple[int, int]:
        init_db(pg_url)
        eng = get_engine(pg_url)
        bid = import_benchmark(engine=eng, path=small_file, name="small").benchmark_id
        return create_user(engine=eng, name="ann", role="annotator"), bid

    engine = get_engine(pg_url)
    uid, bid = fill()
    ensure_ready(engine)
    _label(engine, uid, bid)
    name = make_url(pg_url).database
    pg_server._admin_exec(f'DROP DATABASE "{name}" WITH (FORCE)')  # noqa: SLF001 - the operator's mistake
    pg_server._admin_exec(f'CREATE DATABASE "{name}"')  # noqa: SLF001
    assert fill() == (uid, bid)  # the same ids again: only the database's identity tells them apart
    with pytest.raises(DatabaseUnavailable, match="dropped and created again"):
        _label(engine, uid, bid)
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Label)).scalar_one() == 0


@pytest.mark.postgres
def test_an_unreachable_postgresql_database_gives_a_plain_message(pg_url):
    from sqlalchemy.engine import make_url

    missing = make_url(pg_url).set(database="rmgap_no_such_db").render_as_string(hide_password=False)
    with pytest.raises(DatabaseUnavailable, match="cannot be reached") as info:
        ensure_ready(get_engine(missing))
    assert "rmgap_no_such_db" not in str(info.value)
