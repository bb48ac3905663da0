"""Ticket events: what downstream systems hear about every ticket change, in order per ticket.

Written to the outbox in the ticket's transaction, relayed to the ticket-events topic keyed by
ticket number (docs/events.md). `event_id` is stable: the same cause always yields the same id.
Every event carries the ticket's full snapshot after the change, so a subscriber can mirror a
ticket from its latest event alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from pipeline.envelope import uuid5

EVENT_VERSION = 1
EventType = Literal["ticket.created", "ticket.message_appended", "ticket.reclassified",
                    "ticket.status_changed", "ticket.merged", "ticket.unmerged"]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
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


class MergeSummary(BaseModel):
    """The customer merge (or its undoing) behind a `ticket.merged` / `ticket.unmerged` event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    merge_id: int
    source_customer_id: int
    target_customer_id: int
    kept_ticket: str | None = None  # the open ticket that absorbed the other, when both had one
    merged_ticket: str | None = None  # the ticket absorbed (status `merged`), reopened by the un-merge


class TicketEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = EVENT_VERSION
    event_id: str
    type: EventType
    occurred_at: AwareDatetime
    ticket: TicketSnapshot
    message: MessageSummary | None = None
    changes: dict[str, list[str | None]] = {}
    merge: MergeSummary | None = None


def event_id(cause: str, kind: str) -> str:
    """Stable id: the same cause (a message's envelope id) always yields the same event id."""
    return uuid5(_NAMESPACE, f"{cause}:{kind}")


_TIMES = ("sla_due_at", "created_at", "updated_at")


def snapshot(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The `ticket` part of an event from a tickets row (JSON-ready)."""
    return {k: (ticket[k].isoformat() if k in _TIMES else ticket[k]) for k in TicketSnapshot.model_fields}


def ticket_event(kind: EventType, ticket: Mapping[str, Any], cause: str, now: datetime, *,
                 changes: Mapping[str, list[str | None]] | None = None,
                 merge: MergeSummary | None = None) -> dict[str, Any]:
    """A JSON-ready event for a change made outside the message path (status, relabel, merge).
    `cause` names the change (`status:<request id>`, `merge:<id>`...) and, with the ticket, fixes the id."""
    return {"version": EVENT_VERSION, "event_id": event_id(cause, f"{kind}:{ticket['id']}"), "type": kind,
            "occurred_at": now.isoformat(), "ticket": snapshot(ticket), "message": None,
            "changes": dict(changes or {}), "merge": merge.model_dump() if merge else None}


def outbox_row(event: Mapping[str, Any], ticket_id: int, now: datetime) -> dict[str, Any]:
    """The `ticket_events` row that carries `event`, to insert in the transaction making the change."""
    return {"event_id": event["event_id"], "ticket_id": ticket_id, "ticket_number": event["ticket"]["number"],
            "type": event["type"], "occurred_at": now, "payload": dict(event)}
