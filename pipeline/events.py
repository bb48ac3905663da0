"""Ticket events: what downstream systems hear about every ticket change, in order per ticket.

Written to the outbox in the ticket's transaction, relayed to the ticket-events topic keyed by
ticket number. `event_id` is stable: a redelivered event carries the same id.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from pipeline.envelope import uuid5

EVENT_VERSION = 1
EventType = Literal["ticket.created", "ticket.message_appended", "ticket.reclassified",
                    "ticket.status_changed"]
_NAMESPACE = uuid.UUID("0b6f8e7c-2d7f-4c1e-9f55-1c2d3e4f5a6b")


class TicketSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    number: str
    customer_id: int
    status: str
    type: str
    category: str | None
    urgency: str
    language: str
    channel: str
    subject: str | None
    message_count: int
    repeat_count: int
    sla_due_at: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime


class MessageSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    envelope_id: str
    channel: str
    account: str
    message_id: str
    received_at: AwareDatetime
    language: str
    type: str
    category: str | None
    urgency: str
    dedup_outcome: str
    reasons: list[str]


class TicketEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = EVENT_VERSION
    event_id: str
    type: EventType
    occurred_at: AwareDatetime
    ticket: TicketSnapshot
    message: MessageSummary | None = None
    changes: dict[str, list[str | None]] = {}


def event_id(cause: str, kind: str) -> str:
    """Stable id: the same cause (a message's envelope id) always yields the same event id."""
    return uuid5(_NAMESPACE, f"{cause}:{kind}")
