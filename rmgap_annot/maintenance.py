"""Backups and integrity checks for the SQLite database.

A backup must be consistent while annotators keep writing, so it never copies
the file with ``cp`` (which can catch a half-applied WAL). It uses SQLite's
online backup API in a single step: that step reads one snapshot inside a
read transaction, which WAL lets run beside writers without blocking them and
without the restart-on-change that a paged backup suffers under steady writes.
The copy is written next to its destination, checked, and only then renamed
into place, so a failed backup never leaves a half-written file behind.
PostgreSQL has its own tool for this (``pg_dump``).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from rmgap_annot.tempfiles import clean_stale, temp_path


class BackupError(ValueError):
    """A backup that cannot be made as asked; nothing was written."""


@dataclass(frozen=True)
class BackupResult:
    source: Path
    out: Path
    bytes: int
    integrity: str


def sqlite_path(url: str) -> Path:
    """The database file behind a SQLite URL; a clear error for anything else."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        raise BackupError(
            "This database is PostgreSQL: back it up with pg_dump, e.g. "
            "`pg_dump --format=custom --file=rmgap.dump DBNAME` (restore with pg_restore)."
        )
    if backend != "sqlite":
        raise BackupError(f"backup supports SQLite files only, not {backend}")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(parsed.database)


def integrity_check(path: str | Path) -> str:
    """``PRAGMA integrity_check`` of a SQLite file: 'ok', or SQLite's list of problems."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "\n".join(str(r[0]) for r in rows)


def backup_sqlite(*, url: str, out: str | Path, overwrite: bool = False) -> BackupResult:
    """Copy a live SQLite database to ``out`` consistently, then verify the copy."""
    source = sqlite_path(url)
    out = Path(out)
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    if out.exists() and not overwrite:
        raise BackupError(f"{out} already exists (pass --force to replace it)")
    if out.exists() and out.resolve() == source.resolve():
        raise BackupError("the backup must not overwrite the database itself")
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)  # copies of a backup killed before it could clean up
    tmp = temp_path(out, "partial")
    src = sqlite3.connect(str(source), timeout=30)
    try:
        # Writers wait at most this long for the short moments the backup needs.
        src.execute("PRAGMA busy_timeout=30000")
        dst = sqlite3.connect(str(tmp))
        try:
            src.backup(dst)  # pages=-1: one step, one consistent snapshot
            # A standalone copy: fold the WAL in, so the file alone is the backup.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    integrity = integrity_check(tmp)
    if integrity != "ok":
        tmp.unlink(missing_ok=True)
        raise BackupError(f"the copy failed SQLite's integrity check: {integrity[:500]}")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    return BackupResult(source=source, out=out, bytes=out.stat().st_size, integrity=integrity)
