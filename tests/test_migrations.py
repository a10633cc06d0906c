"""Migrations: an empty file and an older database both reach the current schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from rmgap_annot import models  # noqa: F401
from rmgap_annot.benchmark import import_benchmark
from rmgap_annot.db import alembic_config, current_revision, get_engine, head_revision, init_db, session_scope
from rmgap_annot.models import Item, Record


def _schema_diff(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)


def test_empty_file_upgrades_to_a_schema_equal_to_the_models(db_url):
    assert init_db(db_url) == head_revision()
    assert _schema_diff(get_engine(db_url)) == []


def test_init_twice_is_harmless(db_url, small_file):
    init_db(db_url)
    engine = get_engine(db_url)
    import_benchmark(engine=engine, path=small_file)
    init_db(db_url)
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Item)).scalar_one() == 96


def test_upgrade_from_previous_revision_keeps_data(db_url, small_file):
    script = ScriptDirectory.from_config(alembic_config(db_url))
    head = script.get_revision(head_revision())
    previous = head.down_revision
    assert previous, "there must be an older revision to migrate from"
    # Build the database at the previous revision, with data in it.
    init_db(db_url, revision="0001")
    engine = get_engine(db_url)
    import_benchmark(engine=engine, path=small_file)
    init_db(db_url, revision=previous)
    assert current_revision(db_url) == previous
    with engine.connect() as conn:
        n_before = conn.execute(text("SELECT count(*) FROM record")).scalar_one()
    assert init_db(db_url) == head_revision()
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Record)).scalar_one() == n_before == 8
    assert _schema_diff(engine) == []


def test_every_revision_has_a_downgrade_path_to_its_parent():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revs = list(script.walk_revisions())
    assert len({r.revision for r in revs}) == len(revs)
    assert len(script.get_heads()) == 1
