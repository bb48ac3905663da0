"""messages.ticket_id nullable: auto-replies and bounces are recorded without opening a ticket

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_EMAIL = sa.text("channel = 'email'")


def upgrade() -> None:
    # the partial index is dropped and made again: SQLite's table copy in batch mode would lose its WHERE
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_email_message_id', postgresql_where=_EMAIL, sqlite_where=_EMAIL)
        batch_op.alter_column('ticket_id', existing_type=_ID, nullable=True)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_email_message_id', ['channel_message_id'], unique=False,
                              postgresql_where=_EMAIL, sqlite_where=_EMAIL)


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE ticket_id IS NULL")
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_email_message_id', postgresql_where=_EMAIL, sqlite_where=_EMAIL)
        batch_op.alter_column('ticket_id', existing_type=_ID, nullable=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_email_message_id', ['channel_message_id'], unique=False,
                              postgresql_where=_EMAIL, sqlite_where=_EMAIL)
