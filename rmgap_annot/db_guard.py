"""Is the database the app is writing to still the one it started with?

A SQLite file deleted or replaced under a running app went unnoticed: its
open connections kept writing into the unlinked file, so labels were
acknowledged and then lost, and on the next start an empty database was
silently created in its place. So:

- Only ``rmgap-annot init`` and ``seed-demo`` create a database. The app and
  the other commands refuse a missing SQLite file (connecting to one would
  create it), and the app refuses a schema behind this version's migrations
  (``init`` upgrades it), so several app processes on one PostgreSQL database
  never race to migrate.
- The first check on an engine records the database's identity: a SQLite
  file's device and inode; a PostgreSQL database's OID (a database dropped
  and created again under the same name gets a new one, and the engine's
  pool would silently reconnect to it). Every later check (each page run,
  and inside each label write's transaction) compares: gone, or another
  database, and nothing more is accepted until the app is restarted on a
  database someone chose.

The identity lives in a module-level mapping, not in ``st.cache_*``: any
browser session can make Streamlit clear its caches, which would make the
check forget what it is guarding. One ``os.stat`` per check; the schema query
runs only until it succeeds once per engine. A file overwritten in place
(``cp backup.sqlite live.sqlite``) keeps its inode and is not detected; the
README's restore steps say to stop the app first.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from rmgap_annot.db import _sqlite_file, current_revision, head_revision

INIT_HINT = "run `rmgap-annot init`"


class DatabaseUnavailable(RuntimeError):
    """The database is missing, replaced, or not at this version's schema; the message says what to do.

    ``str(exc)`` is for the operator (the CLI prints it; it may name the
    file). ``public`` is what a page shows: the login page is open to
    anyone, so it never names a server path.
    """

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public if public is not None else message


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int


@dataclass
class _Guarded:
    path: Path | None
    identity: FileIdentity | None
    pg_oid: int | None = None
    schema_ok: bool = False


_PG_OID = text("SELECT oid FROM pg_database WHERE datname = current_database()")


def _is_postgres(engine: Engine) -> bool:
    return engine.url.get_backend_name() == "postgresql"


def _pg_oid(bind: Engine | Connection | Session) -> int:
    if isinstance(bind, Engine):
        try:
            with bind.connect() as conn:
                return int(conn.execute(_PG_OID).scalar_one())
        except OperationalError:
            # The driver's text can name hosts and users: the page gets a plain message.
            raise DatabaseUnavailable(
                "The database cannot be reached: is PostgreSQL running, and does the database exist? "
                f"Create it, then {INIT_HINT}."
            ) from None
    return int(bind.execute(_PG_OID).scalar_one())


_guarded: "weakref.WeakKeyDictionary[Engine, _Guarded]" = weakref.WeakKeyDictionary()
_seen_files: set[Path] = set()  # every SQLite file this process has guarded: a missing one was deleted, not never made
_lock = threading.Lock()


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _identity(path: Path) -> FileIdentity | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileIdentity(st.st_dev, st.st_ino)


_NOT_SAVED = ("If you just submitted an answer, it was NOT saved, and nothing more can be saved: "
              "tell your researcher ({fix}).")


def _gone(path: Path) -> DatabaseUnavailable:
    what = "has been deleted or moved while the app was running."
    rest = _NOT_SAVED.format(fix="they restore the database and restart the app")
    return DatabaseUnavailable(f"The database file {path} {what} {rest}", public=f"The database file {what} {rest}")


def _replaced(path: Path) -> DatabaseUnavailable:
    what = "has been replaced by another file while the app was running."
    rest = _NOT_SAVED.format(fix="they restart the app on the database they mean to use")
    return DatabaseUnavailable(f"The database file {path} {what} {rest}", public=f"The database file {what} {rest}")


def require_existing_file(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (connecting would create an empty one)."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        if path in _seen_files:
            raise _gone(path)
        fix = f"{INIT_HINT} to create it (or `rmgap-annot seed-demo` for the demo)."
        raise DatabaseUnavailable(f"There is no database at {path}: {fix}", public=f"There is no database yet: {fix}")


def _record(engine: Engine) -> _Guarded:
    with _lock:
        state = _guarded.get(engine)
        if state is None:
            path = _sqlite_file(_url(engine))
            if path is not None:
                require_existing_file(_url(engine))
            state = _Guarded(path=path, identity=_identity(path) if path is not None else None,
                             pg_oid=_pg_oid(engine) if _is_postgres(engine) else None)
            _guarded[engine] = state
            if path is not None:
                _seen_files.add(path)
        return state


def ensure_unchanged(engine: Engine, *, session: Session | None = None) -> None:
    """Raise when the engine's database is gone or is another one than at the first check.

    ``session``: run the PostgreSQL check on that transaction's connection
    (no second connection per label write).
    """
    state = _record(engine)
    if state.pg_oid is not None:
        if _pg_oid(session if session is not None else engine) != state.pg_oid:
            raise DatabaseUnavailable(
                "The database has been dropped and created again while the app was running. "
                + _NOT_SAVED.format(fix="they restart the app on the database they mean to use")
            )
        return
    if state.path is None:
        return
    now = _identity(state.path)
    if now is None:
        raise _gone(state.path)
    if now != state.identity:
        raise _replaced(state.path)


def ensure_ready(engine: Engine) -> None:
    """What the app checks on every page run: the file is the same, and the schema is this version's."""
    ensure_unchanged(engine)
    state = _guarded[engine]
    if state.schema_ok:
        return
    current, head = current_revision(_url(engine)), head_revision()
    if current is None:
        raise DatabaseUnavailable(f"The database has no rmgap-annot schema yet: {INIT_HINT}.")
    if current != head:
        raise DatabaseUnavailable(
            f"The database is at schema revision {current}, but this version of rmgap-annot needs {head}: "
            f"{INIT_HINT} to upgrade it (it never drops data), then restart the app."
        )
    state.schema_ok = True
