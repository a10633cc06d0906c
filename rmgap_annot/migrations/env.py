"""Alembic environment: runs on the connection ``db.init_db`` hands over.

``render_as_batch`` lets later migrations alter columns on SQLite (which
cannot ALTER most things in place) by copying the table.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

from rmgap_annot import models  # noqa: F401  (registers the tables)
from sqlmodel import SQLModel

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    connectable = engine_from_config(config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as conn:
        _run(conn)
