"""One customer across channels: strong evidence links identities automatically, weaker evidence
becomes a suggestion for operators, and every merge can be undone.

Strong evidence is a verified handle carried by a message: the phone number a Telegram user shares
as their own contact (`metadata["phone"]` with `phone_owner=sender`), a phone call's caller number,
an email's From address (the sender identity itself). When it names an identity another customer
already holds, the two customers are merged (automatically, recorded like an operator's merge).

A merge moves the source customer's identities, tickets and messages to the target. If both have an
open ticket, the older one stays open and absorbs the newer: its messages move over, its counts are
added, the repeat count rises by one (the customer asked twice through two identities) and the newer
ticket gets status `merged`. Every ticket a merge changes gets a `ticket.merged` event (the absorbed
one with its status change), every ticket an un-merge changes a `ticket.unmerged` event. Un-merge puts back exactly what
the merge moved (recorded in `customer_merges.details`); messages that arrived while merged stay
where they were handled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from pipeline.envelope import Envelope
from pipeline.events import EventType, MergeSummary, outbox_row, ticket_event
from pipeline.store.schema import (
    OPEN_STATUSES,
    customer_identities,
    customer_merges,
    customers,
    dedup_bands,
    dedup_sketches,
    identity_suggestions,
    messages,
    ticket_events,
    tickets,
)

MERGED = "merged"
_TIMES = ("sla_due_at", "created_at", "updated_at")
_URGENCY = ("low", "normal", "high", "critical")


class IdentityError(Exception):
    """A merge or un-merge that cannot be done as asked; the message says why."""


def strong_evidence(env: Envelope) -> list[tuple[str, str]]:
    """Verified identities a message proves its sender holds, besides the sender identity itself."""
    found = []
    phone = env.metadata.get("phone")
    if phone and env.metadata.get("phone_owner") == "sender" and len(phone) > 4:
        found.append(("phone", phone.strip().lower()))
    email = env.metadata.get("verified_email")
    if email and "@" in email:
        found.append(("email", email.strip().lower()))
    return [(k, v) for k, v in found if f"{k}:{v}" != env.sender.key]


@dataclass(frozen=True, slots=True)
class MergeResult:
    merge_id: int
    source: int
    target: int
    kept_ticket: int | None
    merged_ticket: int | None


def link_evidence(conn: Connection, envelopes: Sequence[Envelope], customer_of: dict[str, int],
                  now: datetime) -> list[MergeResult]:
    """Record strong evidence as verified identities; merge customers it shows are one.
    Updates `customer_of` (sender key -> customer) in place."""
    merges = []
    for env in envelopes:
        for kind, value in strong_evidence(env):
            mine = customer_of[env.sender.key]
            holder = conn.execute(select(customer_identities.c.customer_id).where(and_(
                customer_identities.c.kind == kind, customer_identities.c.value == value))).scalar()
            if holder is None:
                conn.execute(insert(customer_identities).values(customer_id=mine, kind=kind, value=value,
                                                                verified=True, created_at=now))
                continue
            if holder == mine:
                continue
            source, target = max(mine, holder), min(mine, holder)  # the newer customer joins the older
            why = f"{kind} {value} shared by {env.sender.key} is held by customer {holder}"
            merges.append(merge(conn, source, target, now, reason=why, automatic=True))
            for key, cid in customer_of.items():
                if cid == source:
                    customer_of[key] = target
    return merges


def _open_ticket(conn: Connection, customer_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(tickets).where(and_(tickets.c.customer_id == customer_id,
                                                  tickets.c.status.in_(OPEN_STATUSES)))
                       .with_for_update()).mappings().first()
    return dict(row) if row else None


def _merge_events(conn: Connection, kind: EventType, ticket_ids: set[int | None], summary: MergeSummary,
                  status_before: dict[int, str], cause: str, now: datetime) -> None:
    """One `ticket.merged` / `ticket.unmerged` event per ticket the (un-)merge changed, as it is now."""
    ids = sorted(t for t in ticket_ids if t is not None)
    if not ids:
        return
    rows = conn.execute(select(tickets).where(tickets.c.id.in_(ids)).order_by(tickets.c.id)).mappings()
    for ticket in rows:
        before = status_before.get(ticket["id"])
        changes = {"status": [before, ticket["status"]]} if before and before != ticket["status"] else {}
        event = ticket_event(kind, ticket, cause, now, changes=changes, merge=summary)
        conn.execute(insert(ticket_events).values(outbox_row(event, ticket["id"], now)))


def _number(conn: Connection, ticket_id: int | None) -> str | None:
    if ticket_id is None:
        return None
    return conn.execute(select(tickets.c.number).where(tickets.c.id == ticket_id)).scalar()


def _move_messages(conn: Connection, ids: list[int], ticket_id: int | None = None,
                   customer_id: int | None = None) -> None:
    if not ids:
        return
    values: dict[str, Any] = {}
    if ticket_id is not None:
        values["ticket_id"] = ticket_id
    if customer_id is not None:
        values["customer_id"] = customer_id
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        conn.execute(update(messages).where(messages.c.id.in_(chunk)).values(values))
        conn.execute(update(dedup_sketches).where(dedup_sketches.c.message_id.in_(chunk)).values(values))
        if customer_id is not None:
            conn.execute(update(dedup_bands).where(dedup_bands.c.message_id.in_(chunk))
                         .values(customer_id=customer_id))


def merge(conn: Connection, source: int, target: int, now: datetime, reason: str,
          automatic: bool = False) -> MergeResult:
    """Merge customer `source` into `target` in the caller's transaction (see the module docstring)."""
    if source == target:
        raise IdentityError("a customer cannot be merged into itself")
    rows = {r.id: r for r in conn.execute(select(customers).where(customers.c.id.in_([source, target]))
                                          .with_for_update())}
    for cid in (source, target):
        if cid not in rows:
            raise IdentityError(f"customer {cid} does not exist")
        if rows[cid].merged_into_id is not None:
            raise IdentityError(f"customer {cid} is already merged into {rows[cid].merged_into_id}")
    merge_id = conn.execute(insert(customer_merges).values(
        source_customer_id=source, target_customer_id=target, automatic=automatic, reason=reason, details={},
        created_at=now).returning(customer_merges.c.id)).scalar_one()
    cause = f"merge:{merge_id}"
    details: dict[str, Any] = {"kept_ticket": None, "merged_ticket": None}
    s_open, t_open = _open_ticket(conn, source), _open_ticket(conn, target)
    if s_open and t_open:
        kept, gone = (s_open, t_open) if s_open["created_at"] < t_open["created_at"] else (t_open, s_open)
        moved = list(conn.execute(select(messages.c.id).where(messages.c.ticket_id == gone["id"])).scalars())
        details |= {"kept_ticket": kept["id"], "merged_ticket": gone["id"], "moved_messages": moved,
                    "merged_status": gone["status"],
                    "kept_before": {k: (kept[k].isoformat() if k in _TIMES else kept[k])
                                    for k in ("message_count", "repeat_count", "urgency", "sla_due_at")}}
        gone["status"], gone["updated_at"] = MERGED, now
        conn.execute(update(tickets).where(tickets.c.id == gone["id"]).values(status=MERGED, updated_at=now))
        _move_messages(conn, moved, ticket_id=kept["id"])
        urgency = max(kept["urgency"], gone["urgency"], key=_URGENCY.index)
        conn.execute(update(tickets).where(tickets.c.id == kept["id"]).values(
            message_count=kept["message_count"] + gone["message_count"],
            repeat_count=kept["repeat_count"] + gone["repeat_count"] + 1, urgency=urgency,
            sla_due_at=min(kept["sla_due_at"], gone["sla_due_at"]), updated_at=now))
    details["identities"] = list(conn.execute(select(customer_identities.c.id).where(
        customer_identities.c.customer_id == source)).scalars())
    details["tickets"] = list(conn.execute(select(tickets.c.id).where(tickets.c.customer_id == source)).scalars())
    details["messages"] = list(conn.execute(select(messages.c.id).where(messages.c.customer_id == source)).scalars())
    conn.execute(update(customer_identities).where(customer_identities.c.customer_id == source)
                 .values(customer_id=target))
    conn.execute(update(tickets).where(tickets.c.customer_id == source).values(customer_id=target))
    _move_messages(conn, details["messages"], customer_id=target)
    conn.execute(update(customers).where(customers.c.id == source).values(merged_into_id=target))
    a, b = sorted((source, target))
    conn.execute(update(identity_suggestions).where(and_(
        identity_suggestions.c.customer_a == a, identity_suggestions.c.customer_b == b,
        identity_suggestions.c.status == "open")).values(status=MERGED, resolved_at=now))
    conn.execute(update(customer_merges).where(customer_merges.c.id == merge_id).values(details=details))
    summary = MergeSummary(merge_id=merge_id, source_customer_id=source, target_customer_id=target,
                           kept_ticket=_number(conn, details["kept_ticket"]),
                           merged_ticket=_number(conn, details["merged_ticket"]))
    merged_before = {details["merged_ticket"]: details["merged_status"]} if details["merged_ticket"] else {}
    _merge_events(conn, "ticket.merged", {*details["tickets"], details["kept_ticket"]}, summary, merged_before,
                  cause, now)
    return MergeResult(merge_id, source, target, details["kept_ticket"], details["merged_ticket"])


def unmerge(conn: Connection, merge_id: int, now: datetime) -> MergeResult:
    """Undo one merge: identities, tickets and messages go back to the source customer, an absorbed
    ticket reopens with its messages, the surviving ticket's counts, urgency and due time return."""
    row = conn.execute(select(customer_merges).where(customer_merges.c.id == merge_id)
                       .with_for_update()).mappings().first()
    if row is None:
        raise IdentityError(f"merge {merge_id} does not exist")
    if row["undone_at"] is not None:
        raise IdentityError(f"merge {merge_id} was already undone")
    source, target, details = row["source_customer_id"], row["target_customer_id"], row["details"]
    later = conn.execute(select(customers.c.merged_into_id).where(customers.c.id == target)).scalar()
    if later is not None:
        raise IdentityError(f"customer {target} has since been merged into {later}: undo that merge first")
    cause = f"unmerge:{merge_id}"
    conn.execute(update(customer_identities).where(and_(customer_identities.c.id.in_(details["identities"]),
                                                        customer_identities.c.customer_id == target))
                 .values(customer_id=source))
    if details["tickets"]:
        conn.execute(update(tickets).where(tickets.c.id.in_(details["tickets"])).values(customer_id=source))
    _move_messages(conn, details["messages"], customer_id=source)
    gone_id, kept_id = details.get("merged_ticket"), details.get("kept_ticket")
    if gone_id is not None:
        kept = conn.execute(select(tickets).where(tickets.c.id == kept_id).with_for_update()).mappings().one()
        gone = dict(conn.execute(select(tickets).where(tickets.c.id == gone_id)).mappings().one())
        added = gone["message_count"]
        restore = dict(details["kept_before"])
        restore["sla_due_at"] = datetime.fromisoformat(restore["sla_due_at"])
        restore["message_count"] = max(1, kept["message_count"] - added)
        restore["repeat_count"] = max(0, kept["repeat_count"] - gone["repeat_count"] - 1)
        conn.execute(update(tickets).where(tickets.c.id == kept_id).values(**restore, updated_at=now))
        _move_messages(conn, details["moved_messages"], ticket_id=gone_id)
        owner = gone["customer_id"]
        if gone["status"] == MERGED and _open_ticket(conn, owner) is None:
            gone["status"], gone["updated_at"] = details["merged_status"], now
            conn.execute(update(tickets).where(tickets.c.id == gone_id).values(status=gone["status"],
                                                                               updated_at=now))
    conn.execute(update(customers).where(customers.c.id == source).values(merged_into_id=None))
    conn.execute(update(customer_merges).where(customer_merges.c.id == merge_id).values(undone_at=now))
    summary = MergeSummary(merge_id=merge_id, source_customer_id=source, target_customer_id=target,
                           kept_ticket=_number(conn, kept_id), merged_ticket=_number(conn, gone_id))
    _merge_events(conn, "ticket.unmerged", {*details["tickets"], kept_id, gone_id}, summary,
                  {gone_id: MERGED} if gone_id is not None else {}, cause, now)
    return MergeResult(merge_id, source, target, kept_id, gone_id)


def suggest(conn: Connection, a: int, b: int, score: float, reason: str, now: datetime) -> bool:
    """Offer customers a and b to operators as maybe one person; False if already offered or decided."""
    a, b = sorted((a, b))
    exists = conn.execute(select(identity_suggestions.c.id).where(and_(
        identity_suggestions.c.customer_a == a, identity_suggestions.c.customer_b == b))).first()
    if exists:
        return False
    conn.execute(insert(identity_suggestions).values(customer_a=a, customer_b=b, score=round(score, 4),
                                                     reason=reason, status="open", created_at=now))
    return True


def customer_summary(conn: Connection, customer_id: int) -> dict[str, Any]:
    ident = conn.execute(select(customer_identities.c.kind, customer_identities.c.value,
                                customer_identities.c.verified)
                         .where(customer_identities.c.customer_id == customer_id).order_by(customer_identities.c.id))
    open_count = conn.execute(select(func.count()).select_from(tickets).where(and_(
        tickets.c.customer_id == customer_id, tickets.c.status.in_(OPEN_STATUSES)))).scalar()
    return {"customer_id": customer_id, "identities": [f"{k}:{v}" + ("" if ver else " (unverified)")
                                                       for k, v, ver in ident], "open_tickets": open_count}


def list_suggestions(conn: Connection, status: str | None = "open", limit: int = 100) -> list[dict[str, Any]]:
    query = select(identity_suggestions).order_by(identity_suggestions.c.score.desc(), identity_suggestions.c.id)
    if status:
        query = query.where(identity_suggestions.c.status == status)
    return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]


def list_merges(conn: Connection, customer_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(customer_merges.c.id, customer_merges.c.source_customer_id, customer_merges.c.target_customer_id,
                   customer_merges.c.automatic, customer_merges.c.reason, customer_merges.c.created_at,
                   customer_merges.c.undone_at).order_by(customer_merges.c.id.desc())
    if customer_id is not None:
        query = query.where(or_(customer_merges.c.source_customer_id == customer_id,
                                customer_merges.c.target_customer_id == customer_id))
    return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]


def dismiss(conn: Connection, suggestion_id: int, now: datetime) -> bool:
    done = conn.execute(update(identity_suggestions).where(and_(identity_suggestions.c.id == suggestion_id,
                                                                identity_suggestions.c.status == "open"))
                        .values(status="dismissed", resolved_at=now))
    return done.rowcount == 1
