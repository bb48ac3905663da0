"""Webhook tables, on the store's shared `metadata` (migrations 0006 and 0008 create the same tables).

A delivery is one event for one subscription; its `delivery_id` is stable (subscription + event),
so the unique constraint makes a re-read event harmless and receivers can drop repeats by it.
Pending deliveries of one subscription and ticket go out in `id` order, one at a time.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from pipeline.store.schema import Id, UtcDateTime, metadata

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"

webhook_subscriptions = Table(
    "webhook_subscriptions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("secret", String(200), nullable=False),  # kept in clear: every delivery is signed with it
    Column("event_types", JSON, nullable=False),  # [] = every type
    Column("urgencies", JSON, nullable=False),  # [] = every urgency
    Column("description", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # the name of the API token that created it; NULL: created by `intake webhooks add`, managed by admins
    Column("owner", Text, index=True),
)

# Each event's body once, as it came from the stream: every subscription is sent the same bytes.
webhook_events = Table(
    "webhook_events", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("ticket_number", String(32), nullable=False),
    Column("type", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column("subscription_id", Id, ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("event_id", String(64), ForeignKey("webhook_events.event_id"), nullable=False, index=True),
    Column("ticket_number", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime()),  # claimed by a dispatcher until then
    Column("first_attempt_at", UtcDateTime()),
    Column("last_attempt_at", UtcDateTime()),
    Column("last_status", Integer),  # HTTP status of the last attempt, NULL when none came back
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime()),
    Column("dead_at", UtcDateTime()),
    Index("ix_webhook_deliveries_subscription_id_status_ticket_number_id",
          "subscription_id", "status", "ticket_number", "id"),
)
