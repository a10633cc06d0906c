"""exclusions and truth-inference fits: annotatorexclusion, truthfit

An excluded annotator's labels stay stored but count nowhere; the table
keeps every exclusion as history (including again stamps ``included_at``).
``truthfit`` caches Dawid-Skene / MACE fits per label fingerprint, because a
fit costs seconds and the report must not.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotatorexclusion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excluded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("included_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("annotatorexclusion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_annotatorexclusion_user_id"), ["user_id"], unique=False)
    op.create_table(
        "truthfit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("benchmark_id", sa.Integer(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("fitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["benchmark_id"], ["benchmark.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("benchmark_id", "method", "fingerprint", name="uq_truthfit_bench_method_fp"),
    )
    with op.batch_alter_table("truthfit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_truthfit_benchmark_id"), ["benchmark_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("truthfit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_truthfit_benchmark_id"))
    op.drop_table("truthfit")
    with op.batch_alter_table("annotatorexclusion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_annotatorexclusion_user_id"))
    op.drop_table("annotatorexclusion")
