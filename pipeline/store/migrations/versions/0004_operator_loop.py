"""operator loop: label corrections, shadow disagreements, classifier control

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0004'
down_revision = '0003'


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
