"""Create a ticket or append to the customer's open one; emit the ticket events for the outbox.

Works on plain row dicts so the store can write them in one transaction. A ticket's urgency
only rises; a repeat contact (third message, or the same or nearly the same text again) raises it
one level.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from classifiers.labels import URGENCIES
from pipeline.config import SlaConfig
from pipeline.events import EVENT_VERSION, TicketSnapshot, event_id
from pipeline.stages import WorkItem
from pipeline.stages.dedup import DedupDecision

_TIMES = ("sla_due_at", "created_at", "updated_at")
_REPEATS = ("content_duplicate", "near_duplicate")  # the same complaint again: a repeat contact
_TYPE_RANK = {"complaint": 4, "inquiry": 3, "suggestion": 2, "praise": 1, "spam": 0}


def sla_due(opened: datetime, urgency: str, sla: SlaConfig) -> datetime:
    return opened + timedelta(hours=getattr(sla, urgency))


class TicketStage:
    name = "ticket"

    def __init__(self, sla: SlaConfig) -> None:
        self.sla = sla

    def open_ticket(self, item: WorkItem, customer_id: int, now: datetime) -> dict[str, Any]:
        labels, env = item.labels, item.envelope
        assert labels is not None and item.language is not None
        return {
            "number": None, "customer_id": customer_id, "status": "open", "type": labels.type,
            "category": labels.category, "urgency": labels.urgency, "language": item.language.lang,
            "channel": env.channel, "subject": (env.subject or item.classify_text[:120]) or None,
            "message_count": 1, "repeat_count": 0, "sla_due_at": sla_due(now, labels.urgency, self.sla),
            "created_at": now, "updated_at": now,
        }

    def append(self, ticket: dict[str, Any], item: WorkItem, decision: DedupDecision,
               now: datetime) -> dict[str, list[str | None]]:
        """Update `ticket` in place for one more message; return what changed that matters.
        An auto-reply changes nothing: not the count, the time, the urgency, nor the status."""
        labels = item.labels
        assert labels is not None
        if not decision.changes_ticket:
            return {}
        before = {k: ticket[k] for k in ("type", "category", "urgency")}
        ticket["message_count"] += 1
        ticket["updated_at"] = now
        repeat = decision.outcome in _REPEATS or ticket["message_count"] >= 3
        if decision.outcome in _REPEATS:
            ticket["repeat_count"] += 1
        if _TYPE_RANK[labels.type] > _TYPE_RANK[ticket["type"]]:
            ticket["type"], ticket["category"] = labels.type, labels.category
        elif ticket["type"] == "complaint" and ticket["category"] in (None, "other") and labels.category:
            ticket["category"] = labels.category
        level = max(URGENCIES.index(ticket["urgency"]), URGENCIES.index(labels.urgency))
        if repeat and ticket["type"] == "complaint" and level < 2:
            level += 1
            why = "the same text again" if decision.outcome in _REPEATS else f"message {ticket['message_count']}"
            item.ticket_notes.append(f"signal repeat_contact: ticket urgency {URGENCIES[level]} ({why} on this "
                                     f"complaint ticket)")
        if URGENCIES[level] != ticket["urgency"]:
            ticket["urgency"] = URGENCIES[level]
            ticket["sla_due_at"] = min(ticket["sla_due_at"], sla_due(ticket["created_at"], ticket["urgency"],
                                                                    self.sla))
        return {k: [v, ticket[k]] for k, v in before.items() if v != ticket[k]}

    def events(self, ticket: dict[str, Any], item: WorkItem, decision: DedupDecision,
               changes: dict[str, list[str | None]], now: datetime) -> list[dict[str, Any]]:
        """Ticket events as JSON-ready dicts following `pipeline.events.TicketEvent` (schemas/ticket-event.v1.json).
        Built by hand: this runs for every message, and a model round-trip would cost more than the rest."""
        labels, env = item.labels, item.envelope
        assert labels is not None and item.language is not None
        if not decision.changes_ticket:
            return []  # an auto-reply wakes nobody: subscribers would take it for the customer answering
        message = {
            "envelope_id": env.envelope_id, "channel": env.channel, "account": env.account,
            "message_id": env.message_id, "received_at": env.received_at.isoformat(),
            "language": item.language.lang, "type": labels.type, "category": labels.category,
            "urgency": labels.urgency, "dedup_outcome": decision.outcome,
            "reasons": [*labels.reasons, *item.ticket_notes]}
        snap = {k: (ticket[k].isoformat() if k in _TIMES else ticket[k]) for k in TicketSnapshot.model_fields}
        occurred = now.isoformat()
        cause = env.envelope_id

        def event(kind: str, name: str, **extra: Any) -> dict[str, Any]:
            return {"version": EVENT_VERSION, "event_id": event_id(cause, kind), "type": name,
                    "occurred_at": occurred, "ticket": snap, "message": None, "changes": {}} | extra

        if decision.outcome == "new":
            return [event("created", "ticket.created", message=message)]
        out = [event("appended", "ticket.message_appended", message=message)]
        if changes:
            out.append(event("reclassified", "ticket.reclassified", changes=changes))
        return out
