"""Every setting in one place, read from the environment.

The database URL is resolved in one order everywhere (CLI, app, tests):
an explicit ``--db URL`` beats ``RMGAP_ANNOT_DB``, which beats the embedded
SQLite default under ``db/``. Any SQLAlchemy URL works, PostgreSQL included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///db/rmgap_annot.sqlite"
DOMAINS: tuple[str, ...] = ("Chat", "Writing", "Reasoning", "Safety")


@dataclass(frozen=True)
class Settings:
    db_url: str = DEFAULT_DB_URL
    exports_dir: Path = field(default_factory=lambda: Path("exports"))
    # SQLite waits this long for a competing writer before giving up; long
    # enough that an annotator never sees "database is locked" under load.
    busy_timeout_ms: int = 30_000


def resolve_db_url(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    return os.environ.get("RMGAP_ANNOT_DB") or DEFAULT_DB_URL


def get_settings(db_url: str | None = None) -> Settings:
    return Settings(
        db_url=resolve_db_url(db_url),
        exports_dir=Path(os.environ.get("RMGAP_ANNOT_EXPORTS", "exports")),
    )
