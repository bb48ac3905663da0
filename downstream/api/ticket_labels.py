"""An operator relabels a ticket: its type, category or urgency change, its SLA follows the new
urgency, a `ticket.reclassified` event goes to the outbox, and the correction is kept as training
data for the message whose labels the ticket carried, all in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from classifiers.corrections import CorrectionError, store_correction
from downstream.api.ticket_changes import TicketConflict, locked_ticket, write_event
from pipeline.config import SlaConfig
from pipeline.stages.ticketing import sla_due
from pipeline.store.schema import messages, tickets


def relabel(conn: Connection, number: str, by: str, now: datetime, sla: SlaConfig, *, type: str | None = None,
            category: str | None = None, urgency: str | None = None) -> tuple[dict[str, Any], str | None]:
    """Apply the labels given (the others stay); returns (ticket, event id), or (ticket, None) when
    nothing changed. A category needs a complaint; leaving complaint drops the category.
    Raises TicketNotFound, TicketConflict or CorrectionError (a label outside the label set)."""
    ticket = locked_ticket(conn, number)
    if ticket["status"] == "merged":
        raise TicketConflict(f"ticket {number} was merged into another: relabel that one")
    new_type = type or ticket["type"]
    new_category = category if category is not None else (ticket["category"] if new_type == "complaint" else None)
    if new_type != "complaint":
        if category is not None:
            raise CorrectionError(f"category {category!r} given for a {new_type}: only complaints have a category")
        new_category = None
    new_urgency = urgency or ticket["urgency"]
    after = {"type": new_type, "category": new_category, "urgency": new_urgency}
    changes = {k: [ticket[k], v] for k, v in after.items() if ticket[k] != v}
    message_id = conn.execute(select(messages.c.id).where(messages.c.ticket_id == ticket["id"])
                              .order_by(messages.c.received_at.desc(), messages.c.id.desc()).limit(1)).scalar()
    if not changes:
        return ticket, None
    if message_id is not None:  # the correction is checked (and may refuse) before anything is written
        store_correction(conn, message_id, new_type, new_category, new_urgency, by, now)
    values = after | {"updated_at": now}
    if "urgency" in changes:
        values["sla_due_at"] = sla_due(ticket["created_at"], new_urgency, sla)
        changes["sla_due_at"] = [ticket["sla_due_at"].isoformat(), values["sla_due_at"].isoformat()]
    conn.execute(update(tickets).where(tickets.c.id == ticket["id"]).values(values))
    ticket |= values
    return ticket, write_event(conn, ticket, "ticket.reclassified", changes, now)
