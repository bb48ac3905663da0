"""One ticket as an operator reads it: the ticket, its messages oldest first with their senders,
labels and reasons, and its recent history from the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from pipeline.store.schema import messages, ticket_events, tickets

MAX_MESSAGES = 1000
HISTORY = 50


def _sender(envelope: dict[str, Any]) -> str:
    sender = envelope.get("sender") or {}
    name, ident = sender.get("name"), sender.get("handle") or sender.get("id", "")
    return f"{name} <{ident}>" if name else str(ident)


def ticket_detail(conn: Connection, number: str) -> dict[str, Any] | None:
    ticket = conn.execute(select(tickets).where(tickets.c.number == number)).mappings().first()
    if ticket is None:
        return None
    rows = conn.execute(select(messages).where(messages.c.ticket_id == ticket["id"])
                        .order_by(messages.c.received_at, messages.c.id).limit(MAX_MESSAGES)).mappings()
    shown = [dict(r) | {"sender": _sender(r["envelope"] or {}),
                        "label_reasons": list((r["reasons"] or {}).get("labels", []))} for r in rows]
    history = conn.execute(select(ticket_events.c.type, ticket_events.c.occurred_at, ticket_events.c.payload)
                           .where(ticket_events.c.ticket_id == ticket["id"])
                           .order_by(ticket_events.c.id.desc()).limit(HISTORY)).mappings()
    return dict(ticket) | {"messages": shown, "history": [
        {"type": h["type"], "occurred_at": h["occurred_at"], "changes": (h["payload"] or {}).get("changes") or {}}
        for h in history]}
