"""foundation schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('benchmark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('file_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source_path', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('n_records', sa.Integer(), nullable=False),
    sa.Column('imported_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('benchmark', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_benchmark_file_hash'), ['file_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_benchmark_name'), ['name'], unique=True)

    op.create_table('scorer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('family', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('spec', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('config_json', sa.Text(), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('n_truncated', sa.Integer(), nullable=False),
    sa.Column('n_unparseable', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scorer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scorer_name'), ['name'], unique=True)

    op.create_table('scoringjob',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scorer_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('spec', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('options_json', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_name'), ['name'], unique=True)

    op.create_table('invite',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invite_token_hash'), ['token_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_invite_user_id'), ['user_id'], unique=False)

    op.create_table('record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('benchmark_id', sa.Integer(), nullable=False),
    sa.Column('record_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('domain', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('style_json', sa.Text(), nullable=False),
    sa.Column('raw_json', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['benchmark_id'], ['benchmark.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('benchmark_id', 'record_id', name='uq_record_benchmark_recid')
    )
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_benchmark_id'), ['benchmark_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_record_domain'), ['domain'], unique=False)

    op.create_table('study',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('benchmark_id', sa.Integer(), nullable=False),
    sa.Column('labels_per_item', sa.Integer(), nullable=False),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('records_per_domain', sa.Integer(), nullable=True),
    sa.Column('sample_seed', sa.Integer(), nullable=False),
    sa.Column('quota_per_annotator', sa.Integer(), nullable=True),
    sa.Column('one_item_per_record', sa.Boolean(), nullable=False),
    sa.Column('lease_seconds', sa.Integer(), nullable=False),
    sa.Column('guidelines_md', sa.Text(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['benchmark_id'], ['benchmark.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('benchmark_id')
    )
    op.create_table('item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('benchmark_id', sa.Integer(), nullable=False),
    sa.Column('record_pk', sa.Integer(), nullable=False),
    sa.Column('domain', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('group', sa.Integer(), nullable=False),
    sa.Column('group_index', sa.Integer(), nullable=False),
    sa.Column('prompt_index', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('winner_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['benchmark_id'], ['benchmark.id'], ),
    sa.ForeignKeyConstraint(['record_pk'], ['record.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_pk', 'group_index', 'prompt_index', name='uq_item_record_group_prompt')
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index('ix_item_benchmark_domain', ['benchmark_id', 'domain'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_benchmark_id'), ['benchmark_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_record_pk'), ['record_pk'], unique=False)

    op.create_table('response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_pk', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['record_pk'], ['record.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_pk', 'key', name='uq_response_record_key')
    )
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_response_record_pk'), ['record_pk'], unique=False)

    op.create_table('label',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('choice_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('ranking_json', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('displayed_order_json', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('naturalness', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('flags_json', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('shown_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('first_submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revisions', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'item_id', name='uq_label_user_item')
    )
    with op.batch_alter_table('label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_label_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_submitted_at'), ['submitted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_user_id'), ['user_id'], unique=False)

    op.create_table('lease',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'item_id', name='uq_lease_user_item')
    )
    with op.batch_alter_table('lease', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lease_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lease_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lease_user_id'), ['user_id'], unique=False)

    op.create_table('score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scorer_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('response_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['scorer_id'], ['scorer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scorer_id', 'item_id', 'response_key', name='uq_score_scorer_item_key')
    )
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_score_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_score_scorer_id'), ['scorer_id'], unique=False)

    op.create_table('studyitem',
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], ),
    sa.PrimaryKeyConstraint('study_id', 'item_id')
    )
    with op.batch_alter_table('studyitem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_studyitem_item_id'), ['item_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('studyitem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_studyitem_item_id'))

    op.drop_table('studyitem')
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_score_scorer_id'))
        batch_op.drop_index(batch_op.f('ix_score_item_id'))

    op.drop_table('score')
    with op.batch_alter_table('lease', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lease_user_id'))
        batch_op.drop_index(batch_op.f('ix_lease_item_id'))
        batch_op.drop_index(batch_op.f('ix_lease_expires_at'))

    op.drop_table('lease')
    with op.batch_alter_table('label', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_label_user_id'))
        batch_op.drop_index(batch_op.f('ix_label_submitted_at'))
        batch_op.drop_index(batch_op.f('ix_label_item_id'))

    op.drop_table('label')
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_response_record_pk'))

    op.drop_table('response')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_record_pk'))
        batch_op.drop_index(batch_op.f('ix_item_benchmark_id'))
        batch_op.drop_index('ix_item_benchmark_domain')

    op.drop_table('item')
    op.drop_table('study')
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_domain'))
        batch_op.drop_index(batch_op.f('ix_record_benchmark_id'))

    op.drop_table('record')
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invite_user_id'))
        batch_op.drop_index(batch_op.f('ix_invite_token_hash'))

    op.drop_table('invite')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_name'))

    op.drop_table('user')
    op.drop_table('scoringjob')
    with op.batch_alter_table('scorer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scorer_name'))

    op.drop_table('scorer')
    with op.batch_alter_table('benchmark', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_benchmark_name'))
        batch_op.drop_index(batch_op.f('ix_benchmark_file_hash'))

    op.drop_table('benchmark')
