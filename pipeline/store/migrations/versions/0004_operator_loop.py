"""operator loop: label corrections, shadow disagreements, classifier control

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'classifier_control',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('active_version', sa.String(length=64), nullable=True),
        sa.Column('shadow_version', sa.String(length=64), nullable=True),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_classifier_control')),
    )
    op.create_table(
        'shadow_disagreements',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('message_id', _ID, nullable=True),
        sa.Column('delivery_key', sa.Text(), nullable=False),
        sa.Column('active_version', sa.String(length=64), nullable=True),
        sa.Column('candidate_version', sa.String(length=64), nullable=False),
        sa.Column('active_labels', sa.JSON(), nullable=False),
        sa.Column('candidate_labels', sa.JSON(), nullable=False),
        sa.Column('fields', sa.String(length=40), nullable=False),
        sa.Column('active_confidence', sa.Float(), nullable=True),
        sa.Column('candidate_confidence', sa.Float(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_disagreements')),
    )
    op.create_index('uq_shadow_disagreements_delivery_key_candidate_version', 'shadow_disagreements',
                    ['delivery_key', 'candidate_version'], unique=True)
    op.create_index('ix_shadow_disagreements_created_at', 'shadow_disagreements', ['created_at'])
    op.create_table(
        'label_corrections',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('message_id', _ID, nullable=True),
        sa.Column('ticket_id', _ID, nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=32), nullable=True),
        sa.Column('urgency', sa.String(length=16), nullable=True),
        sa.Column('previous', sa.JSON(), nullable=False),
        sa.Column('corrected_by', sa.String(length=100), nullable=False),
        sa.Column('corrected_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_label_corrections')),
    )
    op.create_index(op.f('ix_label_corrections_message_id'), 'label_corrections', ['message_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_label_corrections_message_id'), table_name='label_corrections')
    op.drop_table('label_corrections')
    op.drop_index('ix_shadow_disagreements_created_at', table_name='shadow_disagreements')
    op.drop_index('uq_shadow_disagreements_delivery_key_candidate_version', table_name='shadow_disagreements')
    op.drop_table('shadow_disagreements')
    op.drop_table('classifier_control')
