"""Shared fixtures: real SQLite files under tmp_path, real RMGAP-shaped files.

Tests build what they need from these few helpers; nothing is mocked.

PostgreSQL: ``pg_server`` (one per session: ``RMGAP_ANNOT_TEST_PG`` or a
throwaway cluster, see tests/pg.py; skips with the reason when neither is
possible) and ``pg_url`` (a fresh database per test). ``backend_url`` runs a
test once on a SQLite file and once on PostgreSQL (that param is marked
``postgres``); a module that overrides ``db_url`` with it gets ``engine``,
``benchmark_id`` and ``cli`` on both backends.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import dispose_engines, get_engine, init_db
from rmgap_annot.synthetic import make_record, make_records, write_jsonl


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test may touch the developer's db/ or exports/."""
    monkeypatch.setenv("RMGAP_ANNOT_DB", f"sqlite:///{tmp_path / 'default.sqlite'}")
    monkeypatch.setenv("RMGAP_ANNOT_EXPORTS", str(tmp_path / "exports"))
    yield
    dispose_engines()


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.sqlite'}"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return _sqlite_url(tmp_path)


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL server for the session, or a skip saying why there is none."""
    import pg

    try:
        with pg.pg_server() as server:
            yield server
    except pg.PgUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server (dropped afterwards)."""
    with pg_server.fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request, tmp_path: Path) -> str:
    """The test's database URL, once per backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str):
    init_db(db_url)
    return get_engine(db_url)


@pytest.fixture
def small_records() -> list[dict]:
    """Eight short records, two per domain."""
    return make_records({"Chat": 2, "Writing": 2, "Reasoning": 2, "Safety": 2}, seed=1, long_text=False)


@pytest.fixture
def small_file(tmp_path: Path, small_records: list[dict]) -> Path:
    return write_jsonl(tmp_path / "small.jsonl", small_records)


@pytest.fixture
def benchmark_id(engine, small_file: Path) -> int:
    """A database holding the eight small records (96 items)."""
    return import_benchmark(engine=engine, path=small_file, name="small").benchmark_id


@pytest.fixture
def record_factory():
    def make(record_id: str = "r1", domain: str = "Chat", seed: int = 0) -> dict:
        return make_record(record_id, domain, random.Random(seed), long_text=False)

    return make


@pytest.fixture
def cli(db_url: str):
    """Run the real CLI (in-process) against the test database, created as `rmgap-annot init` would.

    Only ``init`` and ``seed-demo`` create a database; the other commands refuse a missing SQLite file.
    """
    from rmgap_annot.cli import app

    init_db(db_url)
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, ["--db", db_url, *args], input=input, catch_exceptions=False)

    return run
