"""Deduplicate before anything is written, in layers, each outcome with its reason and score:

1. delivery: the same channel message again (same delivery key) is dropped;
2. content: the same text from the same customer within the window joins that ticket;
3. thread: an email reply or a message in the same conversation joins the thread's open ticket;
4. open ticket: any other message from a customer with an open ticket joins it.
Otherwise the message opens a new ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pipeline.stages import WorkItem

Outcome = Literal["new", "delivery_duplicate", "content_duplicate", "thread", "open_ticket"]


@dataclass(frozen=True, slots=True)
class DedupDecision:
    outcome: Outcome
    ticket_ref: object | None
    reason: str
    score: float

    @property
    def stores_message(self) -> bool:
        return self.outcome != "delivery_duplicate"


@dataclass(slots=True)
class DedupState:
    """What the store knows about a batch's customers, updated as the batch is decided.
    Ticket refs are opaque: a database id for stored tickets, a placeholder for new ones."""

    known_delivery_keys: set[str] = field(default_factory=set)
    open_ticket_by_customer: dict[int, object] = field(default_factory=dict)
    ticket_by_thread_ref: dict[str, object] = field(default_factory=dict)
    recent_content: dict[tuple[int, str], tuple[object, datetime]] = field(default_factory=dict)


def thread_refs(item: WorkItem) -> list[str]:
    env = item.envelope
    if env.channel == "email":
        return [r for r in (env.in_reply_to, *env.references) if r]
    return [f"{env.channel}:{env.account}:{env.conversation_id}"] if env.conversation_id else []


class DedupStage:
    name = "dedup"

    def __init__(self, window: timedelta) -> None:
        self.window = window

    def decide(self, item: WorkItem, customer_id: int, state: DedupState) -> DedupDecision:
        env = item.envelope
        if env.delivery_key in state.known_delivery_keys:
            return DedupDecision("delivery_duplicate", None, f"delivery key {env.delivery_key} already stored", 1.0)
        open_ticket = state.open_ticket_by_customer.get(customer_id)
        seen = state.recent_content.get((customer_id, item.content_hash))
        if seen is not None and seen[0] == open_ticket and abs(env.received_at - seen[1]) <= self.window:
            return DedupDecision("content_duplicate", seen[0],
                                 f"same text from this customer within {self.window}", 1.0)
        for ref in thread_refs(item):
            ticket = state.ticket_by_thread_ref.get(ref)
            if ticket is not None and ticket == open_ticket:
                return DedupDecision("thread", ticket, f"continues thread {ref}", 1.0)
        if open_ticket is not None:
            return DedupDecision("open_ticket", open_ticket, "customer has an open ticket", 1.0)
        return DedupDecision("new", None, "no earlier message matched", 0.0)

    def record(self, item: WorkItem, customer_id: int, ticket_ref: object, state: DedupState) -> None:
        """Make later messages of the same batch see this one."""
        env = item.envelope
        state.known_delivery_keys.add(env.delivery_key)
        state.open_ticket_by_customer[customer_id] = ticket_ref
        state.recent_content[(customer_id, item.content_hash)] = (ticket_ref, env.received_at)
        if env.channel == "email":
            state.ticket_by_thread_ref[env.message_id] = ticket_ref
        for ref in thread_refs(item):
            state.ticket_by_thread_ref.setdefault(ref, ticket_ref)
