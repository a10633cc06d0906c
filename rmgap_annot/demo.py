"""`make demo`'s seeding step: a database with the bundled sample and accounts.

Idempotent: the sample is imported by content hash and accounts are created
only when missing, so running it again reuses everything and loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from rmgap_annot.accounts import create_user, get_user_by_name, new_password
from rmgap_annot.benchmark import ImportResult, import_benchmark, sample_path
from rmgap_annot.db import init_db, session_scope

DEMO_ACCOUNTS = (("researcher", "researcher"), ("alice", "annotator"), ("bob", "annotator"), ("carol", "annotator"))


@dataclass
class SeedResult:
    benchmark: ImportResult
    new_accounts: list[tuple[str, str, str]]  # (name, role, one-time password)


def seed_demo(*, engine: Engine) -> SeedResult:
    init_db(engine.url.render_as_string(hide_password=False))
    result = import_benchmark(engine=engine, path=sample_path(), name="sample")
    created = []
    for name, role in DEMO_ACCOUNTS:
        with session_scope(engine) as session:
            exists = get_user_by_name(session=session, name=name) is not None
        if not exists:
            password = new_password()
            create_user(engine=engine, name=name, role=role, password=password)
            created.append((name, role, password))
    return SeedResult(result, created)
