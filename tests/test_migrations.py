"""Migrations: an empty file and an older database both reach the current schema."""

from __future__ import annotations

import gzip
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from rmgap_annot import models  # noqa: F401
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import alembic_config, current_revision, get_engine, head_revision, init_db, session_scope
from rmgap_annot.models import Item


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


RELEASE_0005 = Path(__file__).parent / "data" / "release-0005.sqlite.gz"


def test_upgrade_from_previous_revision_keeps_data(db_url, small_file):
    """A schema-only step back and forth: the previous revision upgrades to one equal to the models."""
    script = ScriptDirectory.from_config(alembic_config(db_url))
    previous = script.get_revision(head_revision()).down_revision
    assert previous, "there must be an older revision to migrate from"
    init_db(db_url, revision=previous)
    assert current_revision(db_url) == previous
    assert init_db(db_url) == head_revision()
    assert _schema_diff(get_engine(db_url)) == []


def test_a_database_filled_by_the_previous_release_upgrades_with_every_label_kept(tmp_path):
    """tests/data/release-0005.sqlite.gz was written by the 0005 release (seed-demo, a label,
    a draft, a skip, a flag): every row survives, counters count per study, and the
    same person can then label the same item again in a second study."""
    path = tmp_path / "old.sqlite"
    path.write_bytes(gzip.decompress(RELEASE_0005.read_bytes()))
    url = f"sqlite:///{path}"
    engine = get_engine(url)
    tables = ("label", "draft", "skip", "flag", "score", "item", "response", "guidelinesconfirmation")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0005"
        before = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
        labels_before = conn.execute(text("SELECT user_id, item_id, choice_key, naturalness FROM label ORDER BY id")).all()
    assert before["label"] == 217 and before["draft"] == 1
    assert init_db(url) == head_revision()
    assert _schema_diff(engine) == []
    with engine.connect() as conn:
        after = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
        assert after == before
        assert conn.execute(text("SELECT user_id, item_id, choice_key, naturalness FROM label ORDER BY id")).all() == labels_before
        (study_id, name), = conn.execute(text("SELECT id, name FROM study")).all()
        assert name == "sample"
        assert conn.execute(text("SELECT count(*) FROM label WHERE study_id = :s"), {"s": study_id}).scalar_one() == 217
        assert conn.execute(text("SELECT sum(n_labels) FROM studyitem")).scalar_one() == 217
        assert conn.execute(text("SELECT count(*) FROM draft WHERE study_id = :s"), {"s": study_id}).scalar_one() == 1
        members = conn.execute(text("SELECT pseudonym_no FROM studymember ORDER BY pseudonym_no")).scalars().all()
        assert members == [1, 2, 3, 4]  # everyone who labelled, numbered
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        user_id, item_id = conn.execute(text("SELECT user_id, item_id FROM label ORDER BY id LIMIT 1")).one()
    from rmgap_annot.annotation import submit_label
    from rmgap_annot.assignment import create_study

    pilot = create_study(engine=engine, name="main-run", benchmark_id=1)
    submit_label(engine=engine, user_id=user_id, item_id=item_id, choice_key=labels_before[0][2], naturalness=3,
                 study_id=pilot.id)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT study_id, n_labels FROM studyitem WHERE item_id = :i"), {"i": item_id}).all())
    assert counts[pilot.id] == 1 and counts[study_id] >= 1


def test_every_revision_has_a_downgrade_path_to_its_parent():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revs = list(script.walk_revisions())
    assert len({r.revision for r in revs}) == len(revs)
    assert len(script.get_heads()) == 1
