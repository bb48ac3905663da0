"""Deliveries in the store: recorded as pending when an event is read, claimed by a dispatcher
(a lease, so two dispatchers never send the same one), then marked delivered, retried later, or
dead. Only the head of each (subscription, ticket) queue is ever claimed: order per ticket."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from downstream.webhooks.config import RetryPolicy
from downstream.webhooks.subscriptions import Subscription
from downstream.webhooks.tables import DEAD, DELIVERED, PENDING, webhook_deliveries, webhook_events
from pipeline.envelope import utcnow, uuid5

_NAMESPACE = uuid.UUID("5d1c0f0e-7a43-4f7e-b1d4-3c5e0a9b2f61")
_ERROR_CHARS = 500
d = webhook_deliveries


def delivery_id(subscription_id: int, event_id: str) -> str:
    """Stable: the same event for the same subscription always has the same delivery id."""
    return uuid5(_NAMESPACE, f"{subscription_id}:{event_id}")


@dataclass(frozen=True)
class StreamEvent:
    """A ticket event as read from the stream: the fields the filter needs, and the body verbatim."""

    event_id: str
    type: str
    ticket_number: str
    urgency: str | None
    occurred_at: datetime
    body: str

    @classmethod
    def parse(cls, raw: bytes | str) -> StreamEvent:
        body = raw.decode() if isinstance(raw, bytes) else raw
        data = json.loads(body)
        try:
            ticket = data["ticket"]
            return cls(str(data["event_id"]), str(data["type"]), str(ticket["number"]), ticket.get("urgency"),
                       datetime.fromisoformat(data["occurred_at"]), body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a ticket event: {exc!r}") from None


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    delivery_id: str
    event_id: str
    event_type: str
    ticket_number: str
    attempts: int
    first_attempt_at: datetime | None
    body: str

    def occurred_at(self) -> datetime | None:
        """When the ticket changed, read from the event body (for the delivery latency)."""
        try:
            occurred_at = datetime.fromisoformat(json.loads(self.body)["occurred_at"])
        except (KeyError, TypeError, ValueError):
            return None
        return occurred_at if occurred_at.tzinfo is not None else None


def _insert_ignoring_duplicates(conn: Connection, table: Any, key: str) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[key])


def record_events(conn: Connection, events: Sequence[StreamEvent], subscriptions: Iterable[Subscription]) -> set[int]:
    """Record a pending delivery of each event for every matching subscription, inside the caller's
    transaction; events already recorded are skipped. Returns the subscriptions that got new ones.
    A subscription receives the events of changes that happened after it was created."""
    subscriptions = list(subscriptions)
    now = utcnow()
    event_rows: dict[str, dict[str, Any]] = {}
    delivery_rows: list[dict[str, Any]] = []
    for event in events:
        for sub in subscriptions:
            if not sub.matches(event.type, event.urgency) or event.occurred_at < sub.created_at:
                continue
            event_rows.setdefault(event.event_id, {"event_id": event.event_id, "ticket_number": event.ticket_number,
                                                   "type": event.type, "body": event.body, "received_at": now})
            delivery_rows.append({"delivery_id": delivery_id(sub.id, event.event_id), "subscription_id": sub.id,
                                  "event_id": event.event_id, "ticket_number": event.ticket_number,
                                  "status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now})
    if not delivery_rows:
        return set()
    conn.execute(_insert_ignoring_duplicates(conn, webhook_events, "event_id"), list(event_rows.values()))
    statement = _insert_ignoring_duplicates(conn, d, "delivery_id").returning(d.c.subscription_id)
    # one row at a time keeps ids in stream order, which is the order per ticket
    touched: set[int] = set()
    for row in delivery_rows:
        touched.update(conn.execute(statement, row).scalars())
    return touched


def _lease(conn: Connection, ids: Sequence[int], now: datetime, lease_s: float) -> list[ClaimedDelivery]:
    """Take the lease on those still pending and free (another dispatcher may have got there first)."""
    free = or_(d.c.lease_until.is_(None), d.c.lease_until < now)
    won = conn.execute(update(d).where(d.c.id.in_(ids), d.c.status == PENDING, free)
                       .values(lease_until=now + timedelta(seconds=lease_s)).returning(d.c.id)).scalars().all()
    if not won:
        return []
    rows = conn.execute(select(d.c.id, d.c.delivery_id, d.c.event_id, d.c.ticket_number, d.c.attempts,
                               d.c.first_attempt_at, webhook_events.c.type, webhook_events.c.body)
                        .join(webhook_events, webhook_events.c.event_id == d.c.event_id)
                        .where(d.c.id.in_(won)).order_by(d.c.id))
    return [ClaimedDelivery(r.id, r.delivery_id, r.event_id, r.type, r.ticket_number, r.attempts,
                            r.first_attempt_at, r.body) for r in rows]


def claim_due(engine: Engine, subscription_id: int, limit: int, lease_s: float,
              now: datetime | None = None) -> list[ClaimedDelivery]:
    """Claim up to `limit` due deliveries, each the oldest pending one of its ticket."""
    now = now or utcnow()
    heads = (select(func.min(d.c.id)).where(d.c.subscription_id == subscription_id, d.c.status == PENDING)
             .group_by(d.c.ticket_number))
    free = or_(d.c.lease_until.is_(None), d.c.lease_until < now)
    with engine.begin() as conn:
        due = conn.execute(select(d.c.id).where(d.c.id.in_(heads), d.c.next_attempt_at <= now, free)
                           .order_by(d.c.id).limit(limit)).scalars().all()
        return _lease(conn, due, now, lease_s) if due else []


def record_delivered(conn: Connection, claimed: ClaimedDelivery, status: int, now: datetime | None = None,
                     retry_waiting_now: bool = False, claim_next_s: float | None = None) -> ClaimedDelivery | None:
    """Record the success, in the caller's transaction. With `retry_waiting_now` (the receiver was
    failing and is back), the subscription's deliveries waiting for a retry are made due now instead
    of at their backoff time. With `claim_next_s`, the ticket's next delivery is claimed for that long
    and returned if it is due, so a ticket's backlog goes out without a round through the scheduler."""
    now = now or utcnow()
    subscription_id = conn.execute(update(d).where(d.c.id == claimed.id).values(
        status=DELIVERED, attempts=claimed.attempts + 1, last_status=status, last_error=None, lease_until=None,
        first_attempt_at=claimed.first_attempt_at or now, last_attempt_at=now, delivered_at=now)
        .returning(d.c.subscription_id)).scalar_one()
    if retry_waiting_now:
        conn.execute(update(d).where(d.c.subscription_id == subscription_id, d.c.status == PENDING,
                                     d.c.attempts > 0, d.c.next_attempt_at > now).values(next_attempt_at=now))
    if claim_next_s is None:
        return None
    following = conn.execute(select(d.c.id, d.c.next_attempt_at).where(
        d.c.subscription_id == subscription_id, d.c.ticket_number == claimed.ticket_number,
        d.c.status == PENDING).order_by(d.c.id).limit(1)).one_or_none()
    if following is None or following.next_attempt_at > now:
        return None
    claimed_next = _lease(conn, [following.id], now, claim_next_s)
    return claimed_next[0] if claimed_next else None


def mark_delivered(engine: Engine, claimed: ClaimedDelivery, status: int, now: datetime | None = None,
                   retry_waiting_now: bool = False, claim_next_s: float | None = None) -> ClaimedDelivery | None:
    with engine.begin() as conn:
        return record_delivered(conn, claimed, status, now, retry_waiting_now, claim_next_s)


def release(engine: Engine, claimed: ClaimedDelivery) -> None:
    """Give a claimed delivery back unattempted (the worker is stopping)."""
    with engine.begin() as conn:
        conn.execute(update(d).where(d.c.id == claimed.id, d.c.status == PENDING).values(lease_until=None))


def record_failure(conn: Connection, claimed: ClaimedDelivery, status: int | None, error: str,
                   policy: RetryPolicy, now: datetime | None = None) -> bool:
    """Record a failed attempt in the caller's transaction: retry after the policy's delay, or
    dead-letter it. Returns True if dead."""
    now = now or utcnow()
    first = claimed.first_attempt_at or now
    attempts = claimed.attempts + 1
    dead = policy.gives_up(first, now)
    values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error[:_ERROR_CHARS],
                              "lease_until": None, "first_attempt_at": first, "last_attempt_at": now}
    if dead:
        values.update(status=DEAD, dead_at=now)
    else:
        values["next_attempt_at"] = now + timedelta(seconds=policy.delay_s(attempts))
    conn.execute(update(d).where(d.c.id == claimed.id, d.c.status == PENDING).values(**values))
    return dead


def mark_failed(engine: Engine, claimed: ClaimedDelivery, status: int | None, error: str, policy: RetryPolicy,
                now: datetime | None = None) -> bool:
    with engine.begin() as conn:
        return record_failure(conn, claimed, status, error, policy, now)


def list_deliveries(engine: Engine, subscription_id: int | None = None, status: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; `status=DEAD` is a subscription's dead letters."""
    query = (select(d.c.id, d.c.delivery_id, d.c.subscription_id, d.c.event_id, d.c.ticket_number, d.c.status,
                    d.c.attempts, d.c.next_attempt_at, d.c.first_attempt_at, d.c.last_attempt_at, d.c.last_status,
                    d.c.last_error, d.c.created_at, d.c.delivered_at, d.c.dead_at,
                    webhook_events.c.type.label("event_type"))
             .join(webhook_events, webhook_events.c.event_id == d.c.event_id).order_by(d.c.id.desc()).limit(limit))
    if subscription_id is not None:
        query = query.where(d.c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(d.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def redeliver(engine: Engine, delivery_ids: Sequence[str] = (), subscription_id: int | None = None) -> int:
    """Queue deliveries again with a fresh retry budget: the given ones (dead or delivered), or every
    dead letter of a subscription. They keep their delivery id, so receivers can still drop repeats;
    a redelivered event can arrive after later events of its ticket. Returns how many were queued."""
    if not delivery_ids and subscription_id is None:
        return 0
    now = utcnow()
    query = update(d).where(d.c.status.in_((DEAD, DELIVERED)))
    if delivery_ids:
        query = query.where(d.c.delivery_id.in_(list(delivery_ids)))
    if subscription_id is not None:
        query = query.where(d.c.subscription_id == subscription_id)
        if not delivery_ids:
            query = query.where(d.c.status == DEAD)
    values = {"status": PENDING, "attempts": 0, "first_attempt_at": None, "next_attempt_at": now,
              "lease_until": None, "dead_at": None, "delivered_at": None}
    with engine.begin() as conn:
        return conn.execute(query.values(**values)).rowcount


def pending_by_subscription(engine: Engine, subscription_ids: Iterable[int]) -> dict[int, int]:
    """Pending deliveries per subscription, one index range each (a GROUP BY would read the delivered
    history too)."""
    query = select(func.count()).select_from(d).where(d.c.subscription_id == bindparam("sid"), d.c.status == PENDING)
    with engine.connect() as conn:
        return {sid: conn.execute(query, {"sid": sid}).scalar_one() for sid in subscription_ids}


def counts_by_status(engine: Engine, subscription_id: int | None = None) -> dict[str, int]:
    query = select(d.c.status, func.count()).group_by(d.c.status)
    if subscription_id is not None:
        query = query.where(d.c.subscription_id == subscription_id)
    with engine.connect() as conn:
        return {status: n for status, n in conn.execute(query).all()}
