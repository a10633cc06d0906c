"""workbench: drafts, skips, flags, guidelines confirmations, annotator settings, late labels

The annotator's workbench keeps what a person did: a half-made answer lives
in ``draft`` until it is submitted; a label given after the lease ran out is
stored with ``late`` set instead of being dropped; skips and flags are their
own rows so assignment can pass over them and researchers can read them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _user_item_table(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "item_id", name=f"uq_{name}_user_item"),
    )
    with op.batch_alter_table(name) as batch:
        batch.create_index(batch.f(f"ix_{name}_item_id"), ["item_id"], unique=False)
        batch.create_index(batch.f(f"ix_{name}_user_id"), ["user_id"], unique=False)


def upgrade() -> None:
    # A plain ADD COLUMN, not batch mode: batch mode rebuilds the table on
    # SQLite and drops the label-counter triggers of migration 0002.
    op.add_column("label", sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))
    _user_item_table(
        "draft",
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    _user_item_table("skip", sa.Column("skipped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False))
    _user_item_table(
        "flag",
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("flagged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_table(
        "guidelinesconfirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "study_id", name="uq_guidelines_user_study"),
    )
    with op.batch_alter_table("guidelinesconfirmation") as batch:
        batch.create_index(batch.f("ix_guidelinesconfirmation_study_id"), ["study_id"], unique=False)
        batch.create_index(batch.f("ix_guidelinesconfirmation_user_id"), ["user_id"], unique=False)
    op.create_table(
        "annotatorsetting",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("keyboard_shortcuts", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("annotatorsetting")
    op.drop_table("guidelinesconfirmation")
    op.drop_table("flag")
    op.drop_table("skip")
    op.drop_table("draft")
    # DROP COLUMN in place (SQLite 3.35+), keeping the triggers on label.
    op.execute("ALTER TABLE label DROP COLUMN late")
