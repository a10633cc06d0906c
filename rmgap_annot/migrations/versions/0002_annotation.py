"""annotation: a label counter (kept by triggers), domain and record on study items

Assignment needs each study item's number of labels on every request; with
~40,000 labels counting them costs more than the whole latency budget. The
counter is maintained by triggers, so label writers that do not go through
``annotation.submit_label`` (imports, scripts) keep it right too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    """CREATE TRIGGER trg_label_count_ins AFTER INSERT ON label BEGIN
         UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id; END""",
    """CREATE TRIGGER trg_label_count_del AFTER DELETE ON label BEGIN
         UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id; END""",
    """CREATE TRIGGER trg_label_count_upd AFTER UPDATE OF item_id ON label WHEN NEW.item_id <> OLD.item_id BEGIN
         UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id;
         UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id; END""",
)
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION rmgap_label_count() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql
"""
PG_TRIGGER = """CREATE TRIGGER trg_label_count AFTER INSERT OR DELETE OR UPDATE OF item_id ON label
  FOR EACH ROW EXECUTE FUNCTION rmgap_label_count()"""


def upgrade() -> None:
    op.add_column("studyitem", sa.Column("n_labels", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("studyitem", sa.Column("domain", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""))
    op.add_column("studyitem", sa.Column("record_pk", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_studyitem_study_fill", "studyitem", ["study_id", "domain", "n_labels"], unique=False)
    op.execute("UPDATE studyitem SET n_labels = (SELECT count(*) FROM label WHERE label.item_id = studyitem.item_id)")
    op.execute("UPDATE studyitem SET domain = (SELECT item.domain FROM item WHERE item.id = studyitem.item_id),"
               " record_pk = (SELECT item.record_pk FROM item WHERE item.id = studyitem.item_id)")
    if op.get_context().dialect.name == "sqlite":
        for stmt in SQLITE_TRIGGERS:
            op.execute(stmt)
    else:
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for name in ("trg_label_count_ins", "trg_label_count_del", "trg_label_count_upd"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_label_count ON label")
        op.execute("DROP FUNCTION IF EXISTS rmgap_label_count()")
    op.drop_index("ix_studyitem_study_fill", table_name="studyitem")
    with op.batch_alter_table("studyitem") as batch:
        batch.drop_column("record_pk")
        batch.drop_column("domain")
        batch.drop_column("n_labels")
