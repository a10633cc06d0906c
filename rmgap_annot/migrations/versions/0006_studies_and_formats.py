"""studies and formats: several studies per benchmark, labels per study, any benchmark's items, crowd tables

Two changes under everything, made together:

* A benchmark may have several studies (a pilot and the main run); labels,
  leases, drafts and skips belong to a study, so one person may label an item
  in two studies, and the label counters (the triggers of 0002) count per
  study. Every existing label, draft and skip moves to its benchmark's study
  (there was one per benchmark), created here where a benchmark had none.
* Items of other benchmarks (RMB, RewardBench 1/2, Personalized RewardBench,
  plain pairs) carry a conversation, a profile, a category path, several
  correct keys, a resampling group and hidden metadata; a benchmark records
  its format and its files.

The crowd tables (members with their pseudonyms, check items and their
answers, the audit log) are new and start empty, except that everyone who
already labelled becomes a member of that study, numbered in order of their
first label.

SQLite cannot drop a constraint in place: ``study``, ``label``, ``lease``,
``draft`` and ``skip`` are rebuilt (``db.init_db`` runs migrations with
foreign keys off and checks them afterwards, SQLite's documented procedure),
and the label-counter triggers, which a rebuild drops, are created again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime
STR = sqlmodel.sql.sqltypes.AutoString

SQLITE_TRIGGERS = (
    """CREATE TRIGGER trg_label_count_ins AFTER INSERT ON label BEGIN
         UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id AND study_id = NEW.study_id; END""",
    """CREATE TRIGGER trg_label_count_del AFTER DELETE ON label BEGIN
         UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id AND study_id = OLD.study_id; END""",
    """CREATE TRIGGER trg_label_count_upd AFTER UPDATE OF item_id, study_id ON label
         WHEN NEW.item_id <> OLD.item_id OR NEW.study_id <> OLD.study_id BEGIN
         UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id AND study_id = OLD.study_id;
         UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id AND study_id = NEW.study_id; END""",
)
SQLITE_TRIGGER_NAMES = ("trg_label_count_ins", "trg_label_count_del", "trg_label_count_upd")
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION rmgap_label_count() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id AND study_id = OLD.study_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id AND study_id = NEW.study_id;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql
"""
PG_TRIGGER = """CREATE TRIGGER trg_label_count AFTER INSERT OR DELETE OR UPDATE OF item_id, study_id ON label
  FOR EACH ROW EXECUTE FUNCTION rmgap_label_count()"""
# The 0002 versions, for the downgrade.
OLD_PG_FUNCTION = PG_FUNCTION.replace(" AND study_id = OLD.study_id", "").replace(" AND study_id = NEW.study_id", "")
OLD_SQLITE_TRIGGERS = (
    """CREATE TRIGGER trg_label_count_ins AFTER INSERT ON label BEGIN
         UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id; END""",
    """CREATE TRIGGER trg_label_count_del AFTER DELETE ON label BEGIN
         UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id; END""",
    """CREATE TRIGGER trg_label_count_upd AFTER UPDATE OF item_id ON label WHEN NEW.item_id <> OLD.item_id BEGIN
         UPDATE studyitem SET n_labels = n_labels - 1 WHERE item_id = OLD.item_id;
         UPDATE studyitem SET n_labels = n_labels + 1 WHERE item_id = NEW.item_id; END""",
)
PER_STUDY = ("label", "lease", "draft", "skip")
STUDY_OF_ITEM = "(SELECT study.id FROM study JOIN item ON item.benchmark_id = study.benchmark_id WHERE item.id = {t}.item_id)"


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def _drop_triggers() -> None:
    if _sqlite():
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_label_count ON label")


def _create_triggers(old: bool = False) -> None:
    if _sqlite():
        for stmt in OLD_SQLITE_TRIGGERS if old else SQLITE_TRIGGERS:
            op.execute(stmt)
    else:
        op.execute(OLD_PG_FUNCTION if old else PG_FUNCTION)
        op.execute(PG_TRIGGER.replace("item_id, study_id", "item_id") if old else PG_TRIGGER)


def _formats() -> None:
    op.add_column("benchmark", sa.Column("format", STR(), nullable=False, server_default="rmgap"))
    op.add_column("record", sa.Column("file_path", STR(), nullable=False, server_default=""))
    # Plain ADD COLUMN: item is referenced by most tables, a rebuild is not worth it.
    op.add_column("item", sa.Column("correct_keys_json", sa.Text(), nullable=True))
    op.add_column("item", sa.Column("context_json", sa.Text(), nullable=True))
    op.add_column("item", sa.Column("profile_json", sa.Text(), nullable=True))
    op.add_column("item", sa.Column("category_path", STR(), nullable=False, server_default=""))
    op.add_column("item", sa.Column("group_key", STR(), nullable=False, server_default=""))
    op.add_column("item", sa.Column("hidden_json", sa.Text(), nullable=True))
    op.execute("UPDATE item SET category_path = domain,"
               " group_key = (SELECT record.record_id FROM record WHERE record.id = item.record_pk)")
    op.create_table(
        "benchmarkfile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("benchmark_id", sa.Integer(), nullable=False),
        sa.Column("path", STR(), nullable=False),
        sa.Column("container", STR(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("schema_b64", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["benchmark_id"], ["benchmark.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("benchmark_id", "path", name="uq_benchmarkfile_bench_path"),
    )
    op.create_index(op.f("ix_benchmarkfile_benchmark_id"), "benchmarkfile", ["benchmark_id"], unique=False)


def _studies() -> None:
    # Every benchmark gets its study (the app used to create one on first use),
    # named after the benchmark, with every item in it and the counters seeded.
    op.add_column("study", sa.Column("name", STR(), nullable=True))
    op.execute(
        "INSERT INTO study (benchmark_id, labels_per_item, mode, sample_seed, one_item_per_record, lease_seconds,"
        " guidelines_md, updated_at) SELECT b.id, 3, 'pick', 0, " + ("1" if _sqlite() else "true") + ", 600, '',"
        " CURRENT_TIMESTAMP FROM benchmark b WHERE NOT EXISTS (SELECT 1 FROM study s WHERE s.benchmark_id = b.id)"
    )
    op.execute(
        "INSERT INTO studyitem (study_id, item_id, n_labels, domain, record_pk)"
        " SELECT s.id, i.id, (SELECT count(*) FROM label l WHERE l.item_id = i.id), i.domain, i.record_pk"
        " FROM item i JOIN study s ON s.benchmark_id = i.benchmark_id"
        " WHERE NOT EXISTS (SELECT 1 FROM studyitem si WHERE si.study_id = s.id)"
    )
    op.execute("UPDATE study SET name = (SELECT benchmark.name FROM benchmark WHERE benchmark.id = study.benchmark_id)")
    op.add_column("study", sa.Column("questions_json", sa.Text(), nullable=True))
    op.add_column("study", sa.Column("public_link", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("study", sa.Column("link_token", STR(), nullable=True))
    op.add_column("study", sa.Column("consent_md", sa.Text(), nullable=False, server_default=""))
    op.add_column("study", sa.Column("completion_code", STR(), nullable=True))
    op.add_column("study", sa.Column("screenout_code", STR(), nullable=True))
    op.add_column("study", sa.Column("check_rate", sa.Float(), nullable=False, server_default="0"))
    op.add_column("study", sa.Column("check_fail_limit", sa.Integer(), nullable=True))
    op.add_column("study", sa.Column("check_action", STR(), nullable=False, server_default="screen-out"))
    op.add_column("study", sa.Column("qualification_items", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("study", sa.Column("qualification_pass", sa.Float(), nullable=True))
    op.add_column("study", sa.Column("created_at", UTC(), nullable=True))
    op.execute("UPDATE study SET created_at = updated_at")
    # The unnamed UNIQUE(benchmark_id) of 0001 gets a name to drop it by on SQLite;
    # PostgreSQL named it itself.
    with op.batch_alter_table("study", naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"}) as batch:
        batch.alter_column("name", existing_type=STR(), nullable=False)
        batch.alter_column("created_at", existing_type=UTC(), nullable=False)
        batch.drop_constraint("uq_study_benchmark_id" if _sqlite() else "study_benchmark_id_key", type_="unique")
        batch.create_index(batch.f("ix_study_benchmark_id"), ["benchmark_id"], unique=False)
        batch.create_index(batch.f("ix_study_name"), ["name"], unique=True)
        batch.create_index(batch.f("ix_study_link_token"), ["link_token"], unique=True)


def _per_study_rows() -> None:
    _drop_triggers()
    op.execute("DELETE FROM lease")  # a few minutes' holds: taken again on the next request
    op.add_column("label", sa.Column("ratings_json", sa.Text(), nullable=True))
    for table in PER_STUDY:
        op.add_column(table, sa.Column("study_id", sa.Integer(), nullable=True))
        op.execute(f"UPDATE {table} SET study_id = {STUDY_OF_ITEM.format(t=table)}")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("study_id", existing_type=sa.Integer(), nullable=False)
            batch.create_foreign_key(f"fk_{table}_study_id_study", "study", ["study_id"], ["id"])
            batch.create_index(batch.f(f"ix_{table}_study_id"), ["study_id"], unique=False)
            batch.drop_constraint(f"uq_{table}_user_item", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_study_user_item", ["study_id", "user_id", "item_id"])
    _create_triggers()


def _crowd() -> None:
    op.create_table(
        "studymember",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("pseudonym_no", sa.Integer(), nullable=False),
        sa.Column("platform", STR(), nullable=True),
        sa.Column("participant_id", STR(), nullable=True),
        sa.Column("platform_study_id", STR(), nullable=True),
        sa.Column("platform_session_id", STR(), nullable=True),
        sa.Column("joined_at", UTC(), nullable=False),
        sa.Column("consented_at", UTC(), nullable=True),
        sa.Column("declined_at", UTC(), nullable=True),
        sa.Column("qualified_at", UTC(), nullable=True),
        sa.Column("screened_out_at", UTC(), nullable=True),
        sa.Column("screened_out_reason", STR(), nullable=True),
        sa.Column("completed_at", UTC(), nullable=True),
        sa.Column("blocked_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "user_id", name="uq_studymember_study_user"),
        sa.UniqueConstraint("study_id", "pseudonym_no", name="uq_studymember_study_pseudonym"),
    )
    op.create_index(op.f("ix_studymember_study_id"), "studymember", ["study_id"], unique=False)
    op.create_index(op.f("ix_studymember_user_id"), "studymember", ["user_id"], unique=False)
    # Everyone who labelled is a member, numbered by their first label (ties by user id).
    op.execute(
        "INSERT INTO studymember (study_id, user_id, pseudonym_no, joined_at, consented_at)"
        " SELECT study_id, user_id, ROW_NUMBER() OVER (PARTITION BY study_id ORDER BY first_at, user_id), first_at, first_at"
        " FROM (SELECT study_id, user_id, min(first_submitted_at) AS first_at FROM label GROUP BY study_id, user_id) f"
    )
    op.create_table(
        "checkitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("kind", STR(), nullable=False),
        sa.Column("check_id", STR(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("context_json", sa.Text(), nullable=True),
        sa.Column("profile_json", sa.Text(), nullable=True),
        sa.Column("responses_json", sa.Text(), nullable=False),
        sa.Column("expected_json", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("file_hash", STR(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "kind", "check_id", name="uq_checkitem_study_kind_id"),
    )
    op.create_index(op.f("ix_checkitem_study_id"), "checkitem", ["study_id"], unique=False)
    op.create_table(
        "checklabel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("check_item_id", sa.Integer(), nullable=False),
        sa.Column("after_labels", sa.Integer(), nullable=False),
        sa.Column("choice_key", STR(), nullable=True),
        sa.Column("ranking_json", STR(), nullable=True),
        sa.Column("ratings_json", sa.Text(), nullable=True),
        sa.Column("displayed_order_json", STR(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("shown_at", UTC(), nullable=False),
        sa.Column("submitted_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["check_item_id"], ["checkitem.id"]),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "check_item_id", name="uq_checklabel_user_check"),
    )
    for col in ("check_item_id", "study_id", "user_id"):
        op.create_index(op.f(f"ix_checklabel_{col}"), "checklabel", [col], unique=False)
    op.create_table(
        "auditevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("actor", STR(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=True),
        sa.Column("action", STR(), nullable=False),
        sa.Column("target", STR(), nullable=False),
        sa.Column("detail_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_auditevent_at"), "auditevent", ["at"], unique=False)
    op.create_index(op.f("ix_auditevent_study_id"), "auditevent", ["study_id"], unique=False)


def upgrade() -> None:
    _formats()
    _studies()
    _per_study_rows()
    _crowd()


def downgrade() -> None:
    bind = op.get_bind()
    several = bind.execute(sa.text("SELECT benchmark_id FROM study GROUP BY benchmark_id HAVING count(*) > 1")).first()
    if several is not None:
        raise RuntimeError("cannot downgrade below 0006: a benchmark has several studies, and labels would be lost")
    op.drop_table("auditevent")
    op.drop_table("checklabel")
    op.drop_table("checkitem")
    op.drop_table("studymember")
    _drop_triggers()
    for table in PER_STUDY:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_study_user_item", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_user_item", ["user_id", "item_id"])
            batch.drop_index(batch.f(f"ix_{table}_study_id"))
            batch.drop_constraint(f"fk_{table}_study_id_study", type_="foreignkey")
            batch.drop_column("study_id")
            if table == "label":
                batch.drop_column("ratings_json")
    _create_triggers(old=True)
    with op.batch_alter_table("study") as batch:
        batch.drop_index(batch.f("ix_study_link_token"))
        batch.drop_index(batch.f("ix_study_name"))
        batch.drop_index(batch.f("ix_study_benchmark_id"))
        batch.create_unique_constraint("uq_study_benchmark_id", ["benchmark_id"])
        for col in ("created_at", "qualification_pass", "qualification_items", "check_action", "check_fail_limit",
                    "check_rate", "screenout_code", "completion_code", "consent_md", "link_token", "public_link",
                    "questions_json", "name"):
            batch.drop_column(col)
    op.drop_index(op.f("ix_benchmarkfile_benchmark_id"), table_name="benchmarkfile")
    op.drop_table("benchmarkfile")
    for col in ("hidden_json", "group_key", "category_path", "profile_json", "context_json", "correct_keys_json"):
        op.execute(f"ALTER TABLE item DROP COLUMN {col}")
    op.execute("ALTER TABLE record DROP COLUMN file_path")
    op.execute("ALTER TABLE benchmark DROP COLUMN format")
