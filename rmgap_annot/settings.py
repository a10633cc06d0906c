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


def arrivals_per_minute() -> tuple[int, int]:
    """New crowd participants allowed per minute (per study link, per client address).

    ``RMGAP_ANNOT_ARRIVALS_PER_MINUTE`` and ``RMGAP_ANNOT_ARRIVALS_PER_IP``
    raise them for a large launch, or for a lab whose pool shares one
    address behind NAT; a value that is not a positive whole number keeps the default.
    """
    def read(name: str, default: int) -> int:
        value = os.environ.get(name, "")
        return int(value) if value.isdigit() and int(value) > 0 else default

    return read("RMGAP_ANNOT_ARRIVALS_PER_MINUTE", 120), read("RMGAP_ANNOT_ARRIVALS_PER_IP", 20)
