"""Deduplicate before anything is written, in layers, each outcome with its reason and score:

1. delivery: the same channel message again (same delivery key) is dropped;
2. content: the same text from the same customer within the window joins that ticket;
3. near: nearly the same text (re-cased, trimmed, forwarded with quotes, sent again through another
   of the customer's linked identities) within the window joins that ticket (`pipeline.dedup.sketch`);
4. thread: an email reply or a message in the same conversation joins the thread's open ticket;
5. open ticket: any other message from a customer with an open ticket joins it.
Otherwise the message opens a new ticket. Content and near duplicates count as repeat contacts.
"Customer" means the customer after identity linking (`pipeline.identity`), so one person's email
and Telegram messages meet here.

Auto-replies, bounces and looping mail (`metadata["auto_reply"]`, set by the email parser) are
recorded but never open, reopen or change a ticket: they attach to the open ticket their thread
(our ticket number in the subject, In-Reply-To/References) or their sender points to, else to none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pipeline.dedup.sketch import MIN_SHINGLES, NearSketch, Sketch, compare
from pipeline.stages import WorkItem

Outcome = Literal["new", "delivery_duplicate", "content_duplicate", "near_duplicate", "thread", "open_ticket",
                  "auto_reply"]
NEAR_JACCARD = 0.6
NEAR_CONTAINMENT = 0.8


@dataclass(frozen=True, slots=True)
class DedupDecision:
    outcome: Outcome
    ticket_ref: object | None
    reason: str
    score: float

    @property
    def stores_message(self) -> bool:
        return self.outcome != "delivery_duplicate"

    @property
    def changes_ticket(self) -> bool:
        """False for auto-replies: the message is stored (with its ticket, if any) and the ticket left as it was."""
        return self.outcome not in ("delivery_duplicate", "auto_reply")


@dataclass(slots=True)
class DedupState:
    """What the store knows about a batch's customers, updated as the batch is decided.
    Ticket refs are opaque: a database id for stored tickets, a placeholder for new ones."""

    known_delivery_keys: set[str] = field(default_factory=set)
    open_ticket_by_customer: dict[int, object] = field(default_factory=dict)
    ticket_by_thread_ref: dict[str, object] = field(default_factory=dict)
    recent_content: dict[tuple[int, str], tuple[object, datetime]] = field(default_factory=dict)
    ticket_by_number: dict[str, object] = field(default_factory=dict)  # open tickets named in subjects
    open_tickets: set[object] = field(default_factory=set)  # open tickets among the thread and number lookups
    sketches: dict[str, Sketch] = field(default_factory=dict)  # by delivery key, for this batch's items
    recent_sketches: dict[int, list[tuple[object, datetime, Sketch]]] = field(default_factory=dict)


def thread_refs(item: WorkItem) -> list[str]:
    env = item.envelope
    if env.channel == "email":
        return [r for r in (env.in_reply_to, *env.references) if r]
    return [f"{env.channel}:{env.account}:{env.conversation_id}"] if env.conversation_id else []


class SketchStage:
    """Per-message part of dedup, run with the other CPU stages: the sketches and band keys the store
    would otherwise compute in its own process (about 0.1 ms per message)."""

    name = "sketch"

    def __call__(self, item: WorkItem) -> None:
        env = item.envelope
        if "auto_reply" not in env.metadata:  # never sketched: they neither open nor repeat a ticket
            item.near = NearSketch.of(item.classify_text, item.text if env.channel == "email" else item.classify_text)


class DedupStage:
    name = "dedup"

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self.hours = f"{window.total_seconds() / 3600:g} h"

    def decide(self, item: WorkItem, customer_id: int, state: DedupState) -> DedupDecision:
        env = item.envelope
        if env.delivery_key in state.known_delivery_keys:
            return DedupDecision("delivery_duplicate", None, f"delivery key {env.delivery_key} already stored", 1.0)
        open_ticket = state.open_ticket_by_customer.get(customer_id)
        if "auto_reply" in env.metadata:
            return self._auto_reply(item, open_ticket, state)
        seen = state.recent_content.get((customer_id, item.content_hash))
        if seen is not None and seen[0] == open_ticket and abs(env.received_at - seen[1]) <= self.window:
            return DedupDecision("content_duplicate", seen[0],
                                 f"same text from this customer within {self.hours}", 1.0)
        near = self._near(item, customer_id, open_ticket, state)
        if near is not None:
            return near
        number = env.metadata.get("ticket_number")
        if number and open_ticket is not None and state.ticket_by_number.get(number) == open_ticket:
            return DedupDecision("thread", open_ticket, f"ticket number {number} in the subject", 1.0)
        for ref in thread_refs(item):
            ticket = state.ticket_by_thread_ref.get(ref)
            if ticket is not None and ticket == open_ticket:
                return DedupDecision("thread", ticket, f"continues thread {ref}", 1.0)
        if open_ticket is not None:
            return DedupDecision("open_ticket", open_ticket, "customer has an open ticket", 1.0)
        return DedupDecision("new", None, "no earlier message matched", 0.0)

    def _near(self, item: WorkItem, customer_id: int, open_ticket: object | None,
              state: DedupState) -> DedupDecision | None:
        mine = state.sketches.get(item.envelope.delivery_key)
        if open_ticket is None or mine is None or mine.size < MIN_SHINGLES:
            return None
        best = None
        for ticket, received, other in state.recent_sketches.get(customer_id, ()):
            if ticket != open_ticket or abs(item.envelope.received_at - received) > self.window:
                continue
            if other.size < MIN_SHINGLES:
                continue
            sim = compare(mine, other)
            if (sim.jaccard >= NEAR_JACCARD or sim.containment >= NEAR_CONTAINMENT) and (
                    best is None or sim.score > best.score):
                best = sim
        if best is None:
            return None
        return DedupDecision("near_duplicate", open_ticket,
                             f"nearly the same text from this customer within {self.hours} ({best.reason})",
                             round(best.score, 4))

    @staticmethod
    def _auto_reply(item: WorkItem, open_ticket: object | None, state: DedupState) -> DedupDecision:
        env = item.envelope
        why = f"auto-reply ({env.metadata['auto_reply']}: {env.metadata.get('auto_reply_reason', '?')})"
        number = env.metadata.get("ticket_number")
        candidates = [(state.ticket_by_number.get(number) if number else None, f"ticket number {number}")]
        candidates += [(state.ticket_by_thread_ref.get(ref), f"thread {ref}") for ref in thread_refs(item)]
        for ticket, where in candidates:
            if ticket is not None and (ticket in state.open_tickets or ticket == open_ticket):
                return DedupDecision("auto_reply", ticket, f"{why}; kept on the open ticket of {where}, unchanged", 1.0)
        if open_ticket is not None:
            return DedupDecision("auto_reply", open_ticket, f"{why}; kept on the sender's open ticket, unchanged", 1.0)
        return DedupDecision("auto_reply", None, f"{why}; no open ticket, none opened", 1.0)

    def record(self, item: WorkItem, customer_id: int, ticket_ref: object, state: DedupState) -> None:
        """Make later messages of the same batch see this one."""
        env = item.envelope
        state.known_delivery_keys.add(env.delivery_key)
        if "auto_reply" in env.metadata:  # it neither opens a ticket nor makes one the customer's
            if ticket_ref is not None and env.channel == "email":
                state.ticket_by_thread_ref[env.message_id] = ticket_ref
            return
        state.open_ticket_by_customer[customer_id] = ticket_ref
        state.recent_content[(customer_id, item.content_hash)] = (ticket_ref, env.received_at)
        mine = state.sketches.get(env.delivery_key)
        if mine is not None:
            state.recent_sketches.setdefault(customer_id, []).append((ticket_ref, env.received_at, mine))
        if env.channel == "email":
            state.ticket_by_thread_ref[env.message_id] = ticket_ref
        for ref in thread_refs(item):
            state.ticket_by_thread_ref.setdefault(ref, ticket_ref)
