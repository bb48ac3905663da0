"""Ticket changes made through the API, each with its outbox event in the same transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from pipeline.events import EventType, outbox_row, ticket_event
from pipeline.store.schema import OPEN_STATUSES, ticket_events, tickets


class TicketNotFound(LookupError):
    pass


class TicketConflict(Exception):
    """The change contradicts the ticket's state (a merged ticket, a second open ticket); the message says why."""


def locked_ticket(conn: Connection, number: str) -> dict[str, Any]:
    row = conn.execute(select(tickets).where(tickets.c.number == number).with_for_update()).mappings().first()
    if row is None:
        raise TicketNotFound(number)
    return dict(row)


def write_event(conn: Connection, ticket: dict[str, Any], kind: EventType, changes: dict[str, list[str | None]],
                now: datetime) -> str:
    """Append one event about `ticket` (as it is now) to the outbox; its id is fixed by this request."""
    event = ticket_event(kind, ticket, f"api:{uuid.uuid4()}", now, changes=changes)
    conn.execute(insert(ticket_events).values(outbox_row(event, ticket["id"], now)))
    return str(event["event_id"])


def change_status(conn: Connection, number: str, status: str, now: datetime) -> tuple[dict[str, Any], str | None]:
    """Set the ticket's status and write `ticket.status_changed`; (ticket, None) when it already had it."""
    ticket = locked_ticket(conn, number)
    before = ticket["status"]
    if before == status:
        return ticket, None
    if before == "merged":
        raise TicketConflict(f"ticket {number} was merged into another: un-merge the customers to reopen it")
    if status in OPEN_STATUSES and before not in OPEN_STATUSES:
        other = conn.execute(select(tickets.c.number).where(and_(
            tickets.c.customer_id == ticket["customer_id"], tickets.c.status.in_(OPEN_STATUSES),
            tickets.c.id != ticket["id"]))).scalar()
        if other:
            raise TicketConflict(f"the customer already has open ticket {other}: one open ticket per customer")
    conn.execute(update(tickets).where(tickets.c.id == ticket["id"]).values(status=status, updated_at=now))
    ticket |= {"status": status, "updated_at": now}
    return ticket, write_event(conn, ticket, "ticket.status_changed", {"status": [before, status]}, now)
