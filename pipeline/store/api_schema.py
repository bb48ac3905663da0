"""Tables of the REST API (downstream/api), on the store's shared `metadata`; migration 0005 creates them.

The ticket-list indexes of that migration are expressions on `tickets` (urgency rank); their SQL lives
in `URGENCY_RANK_SQL`, which the queries use verbatim so PostgreSQL can match the index.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, text

from pipeline.store.schema import Id, UtcDateTime, metadata

ROLES = ("viewer", "operator", "admin", "subscriber")

# Most urgent first; an urgency the API does not know sorts last.
URGENCY_RANK_SQL = ("CASE urgency WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 "
                    "WHEN 'low' THEN 3 ELSE 4 END")
URGENCY_RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False),  # sha256 hex: the token itself is shown once, never stored
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
    Index("uq_api_tokens_token_hash", "token_hash", unique=True),
    Index("uq_api_tokens_name_active", "name", unique=True,
          postgresql_where=text("revoked_at IS NULL"), sqlite_where=text("revoked_at IS NULL")),
)
