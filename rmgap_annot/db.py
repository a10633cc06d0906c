"""The engine, sessions, SQLite pragmas and migrations.

One engine per URL for the whole process (the app caches it across users);
a short session per action. On SQLite every connection gets WAL (readers
never block the writer), a long busy_timeout (writers queue instead of
failing with "database is locked") and foreign keys. Write transactions
start with ``BEGIN IMMEDIATE`` so a read-then-write (claim an item, count
labels then insert) cannot interleave with another writer.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy_timeout alone queues writers there
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from rmgap_annot.settings import get_settings

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # Let SQLAlchemy's "begin" event decide how transactions start,
        # instead of pysqlite's implicit BEGIN (which is DEFERRED).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        if conn.get_execution_options().get("sqlite_immediate"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (resolved through settings)."""
    settings = get_settings(url)
    key = settings.db_url
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            path = _sqlite_file(key)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs: dict = {}
            if is_sqlite(key):
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": settings.busy_timeout_ms / 1000}
            else:
                kwargs["pool_pre_ping"] = True
            engine = create_engine(key, **kwargs)
            if is_sqlite(key):
                _install_sqlite_hooks(engine, settings.busy_timeout_ms)
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, and before copying a database file)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


_held = threading.local()


@contextmanager
def _sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    """Queue SQLite writers on an OS file lock before ``BEGIN IMMEDIATE``.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so under many
    concurrent writers an unlucky one keeps losing until busy_timeout expires
    and it sees "database is locked" (measured: 50 annotator processes). A
    blocking ``flock`` wakes the next writer the moment the lock is free, and
    the kernel drops it if its holder dies. Re-entrant per thread, so a nested
    write scope behaves exactly as without the lock.
    """
    path = _sqlite_file(str(engine.url)) if fcntl is not None else None
    if path is None:
        yield
        return
    lock_path = f"{path}-writelock"
    held = getattr(_held, "paths", None)
    if held is None:
        held = _held.paths = set()
    if lock_path in held:
        yield
        return
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        held.add(lock_path)
        try:
            yield
        finally:
            held.discard(lock_path)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A short session: committed on success, rolled back on any error.

    ``write=True`` takes SQLite's write lock at BEGIN (``BEGIN IMMEDIATE``),
    which is what makes claim-and-write atomic; on PostgreSQL it is a plain
    transaction and callers lock rows with ``SELECT ... FOR UPDATE``.
    """
    bind = engine.execution_options(sqlite_immediate=True) if write else engine
    with _sqlite_writer_turn(engine) if write else nullcontext():
        session = Session(bind=bind, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(url: str | None = None, *, revision: str = "head") -> str:
    """Create or upgrade the database in place; never drops data.

    Returns the revision the database is at afterwards.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = get_engine(url)
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    migrate(engine, lambda: command.upgrade(cfg, revision), cfg)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() or ""


def migrate(engine: Engine, step, cfg) -> None:  # noqa: ANN001
    """Run one Alembic command in one transaction on ``engine``.

    On SQLite, rebuilding a table that others reference (migration 0006
    rebuilds ``study``) is only possible with foreign keys off: SQLite's own
    procedure turns them off outside the transaction, rebuilds, and checks
    every reference with ``PRAGMA foreign_key_check`` before committing.
    """
    from sqlalchemy.exc import IntegrityError

    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                step()
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise IntegrityError("PRAGMA foreign_key_check", None, Exception(f"broken references: {broken[:5]}"))
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""
