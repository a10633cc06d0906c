"""The database layer, the benchmark import, accounts and concurrent labelling on PostgreSQL.

Runs against ``RMGAP_ANNOT_TEST_PG`` or a throwaway cluster (tests/pg.py);
skips with the reason when neither is possible. The ``pg_server`` and
``pg_url`` fixtures live in conftest.py, shared with the tests that run on
both backends (``backend_url``). ``make test`` installs
PostgreSQL when missing and root, so CI runs these.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from rmgap_annot.accounts import (
    AccessDenied,
    MAX_FAILED_LOGINS,
    authenticate,
    create_invite,
    create_user,
    redeem_invite,
    require_role,
    revoke_invites,
)
from rmgap_annot.formats.rmgap import BenchmarkFileError, import_benchmark
from rmgap_annot.cli import app
from rmgap_annot.db import current_revision, get_engine, head_revision, init_db, session_scope
from rmgap_annot.models import Item, Label, Record, Response, User
from rmgap_annot.sso import user_for_identity
from rmgap_annot.synthetic import make_record
from test_fuzz_imports import TRICKY, _assert_file_line_errors, _parent, _paths

pytestmark = pytest.mark.postgres
LOAD = Path(__file__).resolve().parent.parent / "bench" / "load.py"


@pytest.fixture
def pg_engine(pg_url):
    init_db(pg_url)
    return get_engine(pg_url)


def _counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return tuple(s.execute(select(func.count()).select_from(m)).scalar_one() for m in (Record, Response, Item))


def test_migrations_reach_head_and_are_idempotent(pg_url):
    assert init_db(pg_url) == head_revision()
    assert init_db(pg_url) == head_revision()
    assert current_revision(pg_url) == head_revision()
    with get_engine(pg_url).connect() as conn:
        assert conn.dialect.name == "postgresql"
        assert conn.execute(text('SELECT count(*) FROM "user"')).scalar_one() == 0


def test_cli_init_import_status_on_postgres(pg_url, small_file):
    runner = CliRunner()
    assert runner.invoke(app, ["--db", pg_url, "init"], catch_exceptions=False).exit_code == 0
    imported = runner.invoke(app, ["--db", pg_url, "import-benchmark", str(small_file)], catch_exceptions=False)
    assert imported.exit_code == 0, imported.output
    status = runner.invoke(app, ["--db", pg_url, "status"], catch_exceptions=False)
    assert "postgresql" in status.output and "items:" in status.output
    backup = runner.invoke(app, ["--db", pg_url, "backup", "--out", "x.sqlite"])
    assert backup.exit_code == 2 and "pg_dump" in backup.output


def test_benchmark_import_is_atomic_and_idempotent(pg_engine, small_file, small_records, tmp_path):
    first = import_benchmark(engine=pg_engine, path=small_file)
    assert first.created
    n = len(small_records)
    assert _counts(pg_engine) == (n, 4 * n, 12 * n)
    again = import_benchmark(engine=pg_engine, path=small_file)
    assert not again.created and again.benchmark_id == first.benchmark_id
    bad = tmp_path / "bad.jsonl"
    broken = dict(small_records[0], id="other")
    del broken["responses"]
    bad.write_text(json.dumps(small_records[1] | {"id": "fine"}) + "\n" + json.dumps(broken) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkFileError) as exc:
        import_benchmark(engine=pg_engine, path=bad)
    assert f"{bad}:2: responses" in str(exc.value)
    assert _counts(pg_engine) == (n, 4 * n, 12 * n)


def test_tricky_values_import_or_fail_cleanly_on_postgres(pg_engine, tmp_path):
    """PostgreSQL is stricter than SQLite (no NUL in text, 64-bit integers): still no crash."""
    base = make_record("tricky", "Safety", random.Random(3), long_text=False)
    src = tmp_path / "tricky.jsonl"
    before = None
    for path in _paths(base)[::3]:
        for value in TRICKY:
            record = json.loads(json.dumps(base))
            _parent(record, path)[path[-1]] = value
            src.write_text(json.dumps(record) + "\n", encoding="utf-8")
            before = _counts(pg_engine)
            try:
                import_benchmark(engine=pg_engine, path=src)
            except BenchmarkFileError as exc:
                _assert_file_line_errors(exc, src)
                assert _counts(pg_engine) == before


def test_accounts_on_postgres(pg_engine):
    uid = create_user(engine=pg_engine, name="ann", role="annotator", password="long enough pw")
    rid = create_user(engine=pg_engine, name="res", role="researcher", password="long enough pw")
    assert authenticate(engine=pg_engine, name="ann", password="long enough pw").user_id == uid
    for _ in range(MAX_FAILED_LOGINS):
        assert not authenticate(engine=pg_engine, name="ann", password="wrong password").ok
    locked = authenticate(engine=pg_engine, name="ann", password="long enough pw")
    assert not locked.ok and "locked" in locked.message  # worded as for any failure: no enumeration
    token = create_invite(engine=pg_engine, user_id=uid)
    assert redeem_invite(engine=pg_engine, token=token).ok
    revoke_invites(engine=pg_engine, user_id=uid)
    assert not redeem_invite(engine=pg_engine, token=token).ok
    require_role(engine=pg_engine, user_id=rid)
    with pytest.raises(AccessDenied):
        require_role(engine=pg_engine, user_id=uid)
    assert user_for_identity(engine=pg_engine, email="RES", email_verified=True).ok is False
    with session_scope(pg_engine) as s:
        assert s.get(User, uid).password_hash.startswith("$argon2id$")


def test_failed_write_rolls_back_on_postgres(pg_engine):
    with pytest.raises(RuntimeError):
        with session_scope(pg_engine, write=True) as s:
            s.add(User(name="ghost", role="annotator"))
            s.flush()
            raise RuntimeError("boom")
    with session_scope(pg_engine) as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0


def test_concurrent_annotators_on_postgres(pg_url):
    proc = subprocess.run(
        [sys.executable, str(LOAD), "--json", "--annotators", "6", "--items", "10", "--db-url", pg_url],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["first_error"] is None, r["first_error"]
    assert r["failures"] == 0
    assert (r["acknowledged_but_missing"], r["duplicate_annotator_item"], r["items_over_target"]) == (0, 0, 0)
    assert r["labels"] == 60
    with session_scope(get_engine(pg_url)) as s:
        assert s.execute(select(func.count()).select_from(Label)).scalar_one() == 60


def test_annotators_arriving_together_after_an_import_share_one_study_row(pg_engine, small_file):
    """Was: IntegrityError ... INSERT INTO study for all but one annotator arriving after an import."""
    import threading

    from rmgap_annot.assignment import _study_for_update, get_study
    from rmgap_annot.models import Study

    bid = import_benchmark(engine=pg_engine, path=small_file, name="s").benchmark_id
    # Imports now create the study; a benchmark without one (written by a script) still must not race.
    with session_scope(pg_engine, write=True) as s:
        s.execute(text("DELETE FROM studyitem"))
        s.execute(text("DELETE FROM study"))
    outcome: list[object] = []
    with session_scope(pg_engine, write=True) as first:
        _study_for_update(first, bid)  # the first annotator's transaction made the row, not yet committed

        def second() -> None:
            try:
                outcome.append(get_study(engine=pg_engine, benchmark_id=bid).id)
            except Exception as exc:  # noqa: BLE001 - the failure under test
                outcome.append(exc)

        t = threading.Thread(target=second)
        t.start()
        t.join(timeout=1.0)
        assert t.is_alive()  # it waits for the first transaction instead of inserting beside it
    t.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], int), outcome
    with session_scope(pg_engine) as s:
        assert s.execute(select(func.count()).select_from(Study)).scalar_one() == 1


def test_a_database_filled_by_the_previous_release_upgrades_on_postgres(pg_url, tmp_path):
    """The release-0005 database (tests/data), copied row by row into PostgreSQL at revision
    0005, upgrades to head with every label kept and the counters per study."""
    import gzip

    from sqlalchemy import Boolean, MetaData, create_engine

    old = tmp_path / "old.sqlite"
    old.write_bytes(gzip.decompress((Path(__file__).parent / "data" / "release-0005.sqlite.gz").read_bytes()))
    init_db(pg_url, revision="0005")
    pg = get_engine(pg_url)
    src = create_engine(f"sqlite:///{old}")
    src_meta, dst_meta = MetaData(), MetaData()
    src_meta.reflect(src)
    dst_meta.reflect(pg)
    with src.connect() as s_conn, pg.begin() as d_conn:
        for table in dst_meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = [dict(r._mapping) for r in s_conn.execute(src_meta.tables[table.name].select())]
            for row in rows:
                for col in table.columns:
                    if isinstance(col.type, Boolean) and row.get(col.name) is not None:
                        row[col.name] = bool(row[col.name])
            if rows:
                d_conn.execute(table.insert(), rows)
                if "id" in table.columns:
                    d_conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                                        f"(SELECT max(id) FROM \"{table.name}\"))"))
    with pg.connect() as conn:
        labels_before = conn.execute(text("SELECT user_id, item_id, choice_key FROM label ORDER BY id")).all()
    assert len(labels_before) == 217
    assert init_db(pg_url) == head_revision()
    with pg.connect() as conn:
        assert conn.execute(text("SELECT user_id, item_id, choice_key FROM label ORDER BY id")).all() == labels_before
        assert conn.execute(text("SELECT sum(n_labels) FROM studyitem")).scalar_one() == 217
        assert conn.execute(text("SELECT count(*) FROM draft WHERE study_id IS NOT NULL")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM studymember")).scalar_one() == 4
    from rmgap_annot.annotation import submit_label
    from rmgap_annot.assignment import create_study

    user_id, item_id, choice = labels_before[0]
    second = create_study(engine=pg, name="main-run", benchmark_id=1)
    submit_label(engine=pg, user_id=user_id, item_id=item_id, choice_key=choice, naturalness=4, study_id=second.id)
    with pg.connect() as conn:
        per_study = dict(conn.execute(text("SELECT study_id, n_labels FROM studyitem WHERE item_id = :i"), {"i": item_id}).all())
    assert per_study[second.id] == 1
