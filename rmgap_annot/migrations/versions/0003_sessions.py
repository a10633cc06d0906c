"""sessions: server-side login sessions and one-use login tickets

A browser's login lives in ``authsession`` (token hash, sliding idle
expiry), so a refresh keeps it and logout, disable, revoke or a password
change end it at once. ``loginticket`` carries a login from the page script
to the cookie-setting route.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authsession",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("authsession", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authsession_token_hash"), ["token_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_authsession_user_id"), ["user_id"], unique=False)
    op.create_table(
        "loginticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ticket_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("loginticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loginticket_ticket_hash"), ["ticket_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_loginticket_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("loginticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loginticket_user_id"))
        batch_op.drop_index(batch_op.f("ix_loginticket_ticket_hash"))
    op.drop_table("loginticket")
    with op.batch_alter_table("authsession", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authsession_user_id"))
        batch_op.drop_index(batch_op.f("ix_authsession_token_hash"))
    op.drop_table("authsession")
