"""Table definitions (SQLAlchemy Core). Migrations in `migrations/` create the same tables.

Unique constraints make redelivery harmless: one message per delivery key, one identity per
(kind, value), one open ticket per customer, one outbox row per event id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

OPEN_STATUSES = ("open", "pending")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_open = text("status IN ('open', 'pending')")
_email = text("channel = 'email'")
Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

customers = Table(
    "customers", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("display_name", String(200)),
    Column("vip", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("merged_into_id", Id),  # while merged into another customer (no foreign key: SQLite would copy the table)
)

customer_identities = Table(
    "customer_identities", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("value", String(320), nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("uq_customer_identities_value_kind", "value", "kind", unique=True),
)

tickets = Table(
    "tickets", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("number", String(32), unique=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("type", String(16), nullable=False),
    Column("category", String(32)),
    Column("urgency", String(16), nullable=False),
    Column("language", String(8), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("subject", Text),
    Column("message_count", Integer, nullable=False, default=1),
    Column("repeat_count", Integer, nullable=False, default=0),
    Column("sla_due_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("uq_tickets_open_customer", "customer_id", unique=True,
          postgresql_where=_open, sqlite_where=_open),
    Index("ix_tickets_status_urgency_sla", "status", "urgency", "sla_due_at"),
)

messages = Table(
    "messages", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("envelope_id", String(36), nullable=False),  # uuid5 of delivery_key, so unique with it
    Column("delivery_key", Text, nullable=False, unique=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), index=True),  # NULL: an auto-reply that opened no ticket
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("account", String(200), nullable=False),
    Column("channel_message_id", Text, nullable=False),
    Column("conversation_id", Text),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("stored_at", UtcDateTime(), nullable=False),
    Column("subject", Text),
    Column("text", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("language_confidence", Float, nullable=False),
    Column("type", String(16), nullable=False),
    Column("type_confidence", Float, nullable=False),
    Column("category", String(32)),
    Column("urgency", String(16), nullable=False),
    Column("dedup_outcome", String(24), nullable=False),
    Column("dedup_reason", Text, nullable=False),
    Column("dedup_score", Float, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("envelope", JSON, nullable=False),
    Index("ix_messages_customer_content", "customer_id", "content_hash"),
    Index("ix_messages_email_message_id", "channel_message_id", postgresql_where=_email, sqlite_where=_email),
)

ticket_events = Table(
    "ticket_events", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("ticket_number", String(32), nullable=False),
    Column("type", String(40), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("published_at", UtcDateTime()),
    Index("ix_ticket_events_unpublished", "id", postgresql_where=text("published_at IS NULL"),
          sqlite_where=text("published_at IS NULL")),
)

# Near-duplicate sketches of stored messages (pipeline.dedup.sketch): compared against a customer's
# recent messages, found through (customer_id, received_at).
dedup_sketches = Table(
    "dedup_sketches", metadata,
    Column("message_id", Id, ForeignKey("messages.id"), primary_key=True, autoincrement=False),
    Column("customer_id", Id, nullable=False),
    Column("ticket_id", Id),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("sketch", LargeBinary, nullable=False),
    Index("ix_dedup_sketches_customer_received", "customer_id", "received_at"),
)

# LSH band keys of the same sketches, to find near duplicates from other customers within the
# window (identity suggestions): a lookup is a range scan of the primary key per band.
dedup_bands = Table(
    "dedup_bands", metadata,
    Column("band_key", BigInteger, primary_key=True, autoincrement=False),
    Column("received_at", UtcDateTime(), primary_key=True),
    Column("message_id", Id, primary_key=True, autoincrement=False),
    Column("customer_id", Id, nullable=False),
)

# Two customers who may be one person, offered to operators (customer_a < customer_b).
identity_suggestions = Table(
    "identity_suggestions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_a", Id, ForeignKey("customers.id"), nullable=False),
    Column("customer_b", Id, ForeignKey("customers.id"), nullable=False),
    Column("score", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # open, merged, dismissed
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
    Index("uq_identity_suggestions_customer_a_customer_b", "customer_a", "customer_b", unique=True),
)

# Every merge with what it moved, so un-merge can put it back.
customer_merges = Table(
    "customer_merges", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("target_customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("automatic", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("undone_at", UtcDateTime()),
)

connector_cursors = Table(
    "connector_cursors", metadata,
    Column("connector", String(100), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("stage", String(40), nullable=False),
    Column("error", Text, nullable=False),
    Column("error_class", String(100), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("source", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("reprocessed_at", UtcDateTime()),
)
