"""webhook_subscriptions.owner: the name of the API token that created a subscription (NULL: admin-managed)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'


def upgrade() -> None:
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_webhook_subscriptions_owner'), ['owner'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_subscriptions_owner'))
        batch_op.drop_column('owner')
