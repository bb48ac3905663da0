"""REST API tokens and roles; indexes for the ticket list (urgency rank, times, full-text search)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'

# Must stay identical to pipeline.store.api_schema.URGENCY_RANK_SQL: PostgreSQL matches index expressions verbatim.
_RANK = ("CASE urgency WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 "
         "WHEN 'low' THEN 3 ELSE 4 END")
_OPEN = "status IN ('open', 'pending')"
# PostgreSQL only: SQLite (embedded mode, small stores) sorts without them, and its reflection cannot read
# expression indexes, so schema comparisons there would warn. Not in the table metadata for the same reason.
_INDEXES = {
    # the default order (most urgent, then the earliest SLA due time), for any status, one status, the open queue
    "ix_tickets_rank_sla": f"tickets (({_RANK}), sla_due_at, id)",
    "ix_tickets_status_rank_sla": f"tickets (status, ({_RANK}), sla_due_at, id)",
    "ix_tickets_queue_rank_sla": f"tickets (({_RANK}), sla_due_at, id) WHERE {_OPEN}",
    "ix_tickets_created_at_id": "tickets (created_at, id)",
    "ix_tickets_updated_at_id": "tickets (updated_at, id)",
    "ix_messages_search_vector": "messages USING gin (search_vector)",
}
# Full-text search (q) in what customers wrote: a message's subject and text, any language ('simple').
# Stored, not only indexed: checking a ticket's messages while walking the queue order then reads the
# vector instead of parsing the text again (which cost a second for a word in 1 % of 1,000,000 tickets).
_SEARCH_VECTOR = ("ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
                  "(to_tsvector('simple', coalesce(subject, '') || ' ' || text)) STORED")


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index('uq_api_tokens_token_hash', ['token_hash'], unique=True)
        batch_op.create_index('uq_api_tokens_name_active', ['name'], unique=True,
                              postgresql_where=sa.text('revoked_at IS NULL'),
                              sqlite_where=sa.text('revoked_at IS NULL'))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_SEARCH_VECTOR)
        for name, definition in _INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {definition}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in _INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index('uq_api_tokens_name_active', sqlite_where=sa.text('revoked_at IS NULL'),
                            postgresql_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index('uq_api_tokens_token_hash')
    op.drop_table('api_tokens')
