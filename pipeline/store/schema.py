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
