"""/v1/tickets: the queue (filters, full-text search, keyset pages), one ticket with its messages, status changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select

from downstream.api.auth import READERS, WRITERS, require_role
from downstream.api.schemas import (
    Message,
    Relabel,
    Relabelled,
    StatusChange,
    StatusChanged,
    Ticket,
    TicketDetail,
    TicketPage,
    TicketQuery,
)
from downstream.api.store import ReadConnection
from downstream.api.ticket_changes import TicketConflict, TicketNotFound, change_status
from downstream.api.ticket_labels import relabel
from downstream.api.ticket_queries import CursorError, TicketFilter, ticket_page
from downstream.api.tokens import Principal
from pipeline.envelope import utcnow
from pipeline.store.schema import messages, tickets

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])
MAX_MESSAGES = 1000


def _unprocessable(field: str, message: str) -> HTTPException:
    """422 in FastAPI's own shape, so clients read every validation error the same way."""
    return HTTPException(422, detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}])


@router.get("", response_model=TicketPage, dependencies=[Depends(require_role(*READERS))])
def list_tickets(conn: ReadConnection, query: Annotated[TicketQuery, Query()]) -> dict[str, Any]:
    """Tickets, most urgent first then by SLA due time (or newest created / updated first)."""
    for field, after, before in (("created_before", query.created_after, query.created_before),
                                 ("updated_before", query.updated_after, query.updated_before)):
        if after and before and before <= after:
            raise _unprocessable(field, f"{field} must be later than {field.replace('before', 'after')}")
    found = TicketFilter(**query.model_dump(exclude={"sort", "limit", "cursor", "q"}),
                         q=query.q.strip() if query.q else None)
    try:
        items, next_cursor = ticket_page(conn, found, query.sort, query.limit, query.cursor)
    except CursorError as exc:
        raise _unprocessable("cursor", str(exc)) from exc
    return {"items": items, "next_cursor": next_cursor}


def _label_reasons(ticket: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Reasons of the latest message labelled as the ticket is (its labels came from there), else the first's."""
    for row in reversed(rows):
        if row["type"] == ticket["type"] and row["category"] == ticket["category"]:
            return list(row["reasons"].get("labels", []))
    return list(rows[0]["reasons"].get("labels", [])) if rows else []


@router.get("/{number}", response_model=TicketDetail, dependencies=[Depends(require_role(*READERS))])
def get_ticket(conn: ReadConnection, number: str) -> dict[str, Any]:
    """One ticket with its messages (oldest first, up to 1,000) and the reasons for its labels."""
    ticket = conn.execute(select(tickets).where(tickets.c.number == number)).mappings().first()
    if ticket is None:
        raise HTTPException(404, detail=f"no ticket {number}")
    columns = [messages.c[name] for name in Message.model_fields]
    rows = [dict(r) for r in conn.execute(select(*columns).where(messages.c.ticket_id == ticket["id"])
                                          .order_by(messages.c.received_at, messages.c.id)
                                          .limit(MAX_MESSAGES)).mappings()]
    return dict(ticket) | {"messages": rows, "label_reasons": _label_reasons(dict(ticket), rows)}


@router.post("/{number}/status", response_model=StatusChanged)
def post_status(request: Request, number: str, change: StatusChange,
                _: Annotated[object, Depends(require_role(*WRITERS))]) -> dict[str, Any]:
    """Set the status; writes `ticket.status_changed` to the outbox in the same transaction."""
    now: datetime = utcnow()
    try:
        with request.app.state.engine.begin() as conn:
            ticket, event = change_status(conn, number, change.status, now)
    except TicketNotFound as exc:
        raise HTTPException(404, detail=f"no ticket {number}") from exc
    except TicketConflict as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    return {"ticket": Ticket.model_validate(ticket), "event_id": event, "changed": event is not None}


def _body_error(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}])


@router.post("/{number}/labels", response_model=Relabelled)
def post_labels(request: Request, number: str, body: Relabel,
                principal: Annotated[Principal, Depends(require_role(*WRITERS))]) -> dict[str, Any]:
    """Relabel the ticket (`downstream.api.ticket_labels.relabel`): labels, the SLA due time of a new urgency,
    a `ticket.reclassified` event and the correction as training data, in one transaction."""
    from classifiers.corrections import CorrectionError

    if body.type is None and body.category is None and body.urgency is None:
        raise _body_error("type", "give at least one of type, category, urgency")
    settings = request.app.state.settings
    try:
        with request.app.state.engine.begin() as conn:
            ticket, event = relabel(conn, number, principal.name, utcnow(), settings.pipeline.sla_hours,
                                    type=body.type, category=body.category, urgency=body.urgency)
    except TicketNotFound as exc:
        raise HTTPException(404, detail=f"no ticket {number}") from exc
    except TicketConflict as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except CorrectionError as exc:
        raise _body_error("category" if "category" in str(exc) else "type", str(exc)) from exc
    return {"ticket": Ticket.model_validate(ticket), "event_id": event}
