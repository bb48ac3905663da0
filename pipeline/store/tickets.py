"""Dedup and ticket stages applied to a batch in one database transaction.

Reads what the batch needs in a few set-based queries, decides every message in order, then
writes customers, tickets, messages and outbox events together. Redelivered messages are found
by their delivery key and skipped; a concurrent writer trips a unique constraint and the caller
retries the batch, which then sees the other writer's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    any_,
    bindparam,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError

from pipeline.dedup.lookup import band_candidates, recent_sketches
from pipeline.dedup.sketch import MIN_SHINGLES, Sketch, band_keys, compare, sketch
from pipeline.envelope import utcnow
from pipeline.identity import link_evidence, strong_evidence, suggest
from pipeline.logs import message_log_context
from pipeline.stages import WorkItem
from pipeline.stages.dedup import DedupDecision, DedupStage, DedupState, thread_refs
from pipeline.stages.ticketing import TicketStage
from pipeline.store.schema import (
    OPEN_STATUSES,
    customer_identities,
    customers,
    dedup_bands,
    dedup_sketches,
    messages,
    ticket_events,
    tickets,
)

SUGGEST_MIN_SHINGLES = 8  # shorter texts ("where is my order?") are said alike by strangers
SUGGEST_SCORE = 0.8
SUGGEST_NAME_SCORE = 0.5  # the same display name and text this similar
# Other customers' messages compared per new message, at most: a template many customers send ("where
# is my order 123?") shares band keys with all of them, and comparing each would cost seconds a batch.
SUGGEST_CANDIDATES = 16

_MUTABLE = ("type", "category", "urgency", "message_count", "repeat_count", "sla_due_at", "updated_at")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    stored: int
    duplicates: int
    tickets_created: int
    events: int


def _in(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`: one parameter instead of hundreds."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the current transaction; on PostgreSQL with COPY, by far the cheapest way."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([orjson.dumps(row[c]).decode() if c in json_columns else row[c] for c in columns])
    except psycopg.Error as exc:  # raw DBAPI call: map it as SQLAlchemy maps its own (conflict, outage, ...)
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _same_content(conn: Connection, pairs: list[tuple[int, str]]) -> list[Any]:
    """Earlier messages with the same (customer, content hash), oldest first. On PostgreSQL the
    pairs are joined as one unnested array pair: `customer = ANY(..) AND hash = ANY(..)` would
    probe the index once per combination."""
    if not pairs:
        return []
    m = messages.c
    if conn.dialect.name == "postgresql":
        return list(conn.execute(text(
            "SELECT m.customer_id, m.content_hash, m.ticket_id, m.received_at FROM messages m "
            "JOIN unnest(CAST(:ids AS bigint[]), CAST(:hashes AS varchar[])) AS p(customer_id, content_hash) "
            "ON m.customer_id = p.customer_id AND m.content_hash = p.content_hash ORDER BY m.received_at"),
            {"ids": [c for c, _ in pairs], "hashes": [h for _, h in pairs]}).tuples())
    return list(conn.execute(select(m.customer_id, m.content_hash, m.ticket_id, m.received_at)
                             .where(tuple_(m.customer_id, m.content_hash).in_(pairs)).order_by(m.received_at)).tuples())


def _allocate_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """Ids for n new rows, so they can be inserted (with numbers derived from them) without RETURNING."""
    if conn.dialect.name == "postgresql":
        return list(conn.execute(text(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, :n)"),
            {"n": n}).scalars())
    start = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one() + 1
    return list(range(start, start + n))  # SQLite: one writer at a time holds the database lock


class _NewTicket:
    """Placeholder for a ticket created in this batch, until the insert gives it an id."""

    __slots__ = ("row",)

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row


class SqlTicketStore:
    def __init__(self, engine: Engine, dedup: DedupStage, ticketing: TicketStage, ticket_prefix: str) -> None:
        self.engine = engine
        self.dedup = dedup
        self.ticketing = ticketing
        self.prefix = ticket_prefix

    def apply(self, items: Sequence[WorkItem], now: datetime | None = None) -> BatchOutcome:
        now = now or utcnow()
        with self.engine.begin() as conn:
            return self._apply(conn, items, now)

    def _apply(self, conn: Connection, items: Sequence[WorkItem], now: datetime) -> BatchOutcome:
        for item in items:  # a retried batch (a conflict rolled it back) starts its ticket notes afresh
            item.ticket_notes.clear()
        customer_of = self._resolve_customers(conn, items, now)
        evidence = [item.envelope for item in items if strong_evidence(item.envelope)]
        if evidence:
            link_evidence(conn, evidence, customer_of, now)
        state = self._load_state(conn, items, customer_of)
        stored_tickets: dict[int, dict[str, Any]] = {}
        open_ids = sorted(set(state.open_ticket_by_customer.values()) | state.open_tickets)
        if open_ids:
            # FOR UPDATE: a concurrent writer for the same customer waits, then sees our counts
            query = select(tickets).where(_in(conn, tickets.c.id, open_ids)).order_by(tickets.c.id)
            for row in conn.execute(query.with_for_update()).mappings():
                stored_tickets[row["id"]] = dict(row)

        new_tickets: list[_NewTicket] = []
        touched: set[int] = set()
        message_rows: list[tuple[object, WorkItem, DedupDecision, int]] = []
        pending_events: list[tuple[object, dict[str, Any], WorkItem, DedupDecision, dict]] = []
        duplicates = 0
        for item in items:
            customer_id = customer_of[item.envelope.sender.key]
            with message_log_context(item, "dedup"):
                decision = self.dedup.decide(item, customer_id, state)
                log.debug("dedup: %s (%s)", decision.outcome, decision.reason)
            if not decision.stores_message:
                duplicates += 1
                continue
            if decision.outcome == "new":
                ref: object = _NewTicket(self.ticketing.open_ticket(item, customer_id, now))
                new_tickets.append(ref)  # type: ignore[arg-type]
                ticket, changes = ref.row, {}  # type: ignore[attr-defined]
            elif not decision.changes_ticket:  # an auto-reply: stored on its ticket (or none), which stays as it is
                self.dedup.record(item, customer_id, decision.ticket_ref, state)
                message_rows.append((decision.ticket_ref, item, decision, customer_id))
                continue
            else:
                ref = decision.ticket_ref
                ticket = ref.row if isinstance(ref, _NewTicket) else stored_tickets[ref]  # type: ignore[index]
                changes = self.ticketing.append(ticket, item, decision, now)
                if not isinstance(ref, _NewTicket):
                    touched.add(ref)  # type: ignore[arg-type]
            self.dedup.record(item, customer_id, ref, state)
            message_rows.append((ref, item, decision, customer_id))
            pending_events.append((ref, dict(ticket), item, decision, changes))

        self._insert_tickets(conn, new_tickets)

        def ticket_id(ref: object) -> int | None:
            return ref.row["id"] if isinstance(ref, _NewTicket) else ref  # type: ignore[return-value]

        if touched:
            conn.execute(
                update(tickets).where(tickets.c.id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in _MUTABLE}),
                [{f"b_{c}": stored_tickets[t][c] for c in _MUTABLE} | {"b_id": t} for t in sorted(touched)],
            )
        if message_rows:
            rows = [self._message_row(ticket_id(ref), item, decision, cid, now)
                    for ref, item, decision, cid in message_rows]
            for row, mid in zip(rows, _allocate_ids(conn, messages, len(rows)), strict=True):
                row["id"] = mid
            bulk_insert(conn, messages, rows)
            self._index_sketches(conn, rows, [(item, decision) for _, item, decision, _ in message_rows], state, now)
        events = []
        for ref, ticket_copy, item, decision, changes in pending_events:
            ticket_copy["number"] = ref.row["number"] if isinstance(ref, _NewTicket) else ticket_copy["number"]
            for event in self.ticketing.events(ticket_copy, item, decision, changes, now):
                events.append({"event_id": event["event_id"], "ticket_id": ticket_id(ref),
                               "ticket_number": ticket_copy["number"], "type": event["type"],
                               "occurred_at": now, "payload": event})
        if events:
            bulk_insert(conn, ticket_events, events)
        return BatchOutcome(len(message_rows), duplicates, len(new_tickets), len(events))

    def _resolve_customers(self, conn: Connection, items: Sequence[WorkItem], now: datetime) -> dict[str, int]:
        senders = {item.envelope.sender.key: item.envelope.sender for item in items}
        verified = {f"email:{e}" for item in items if (e := item.envelope.metadata.get("verified_email"))
                    and f"email:{e}" == item.envelope.sender.key}
        values = sorted({key.split(":", 1)[1] for key in senders})
        found: dict[str, int] = {}
        rows = conn.execute(select(customer_identities.c.kind, customer_identities.c.value,
                                   customer_identities.c.customer_id)
                            .where(_in(conn, customer_identities.c.value, values)))
        for kind, value, customer_id in rows:
            found[f"{kind}:{value}"] = customer_id
        missing = [key for key in senders if key not in found]
        if missing:
            ids = _allocate_ids(conn, customers, len(missing))
            bulk_insert(conn, customers, [{"id": cid, "display_name": senders[k].name, "vip": False,
                                              "created_at": now} for k, cid in zip(missing, ids, strict=True)])
            bulk_insert(conn, customer_identities, [
                {"customer_id": cid, "kind": senders[k].kind, "value": k.split(":", 1)[1],
                 "verified": senders[k].kind in ("phone", "telegram_user") or k in verified, "created_at": now}
                for k, cid in zip(missing, ids, strict=True)])
            found.update(zip(missing, ids, strict=True))
        known = sorted(k.split(":", 1)[1] for k in verified if k not in missing)
        if known:  # an address seen before, now verified by our receiving server (connectors.email_auth)
            i = customer_identities.c
            conn.execute(update(customer_identities).where(and_(
                i.kind == "email", _in(conn, i.value, known), i.verified.is_(False))).values(verified=True))
        return found

    def _load_state(self, conn: Connection, items: Sequence[WorkItem], customer_of: dict[str, int]) -> DedupState:
        state = DedupState()
        keys = [item.envelope.delivery_key for item in items]
        state.known_delivery_keys.update(
            conn.execute(select(messages.c.delivery_key).where(_in(conn, messages.c.delivery_key, keys))).scalars())
        customer_ids = sorted(set(customer_of.values()))
        rows = conn.execute(select(tickets.c.customer_id, tickets.c.id).where(
            and_(_in(conn, tickets.c.customer_id, customer_ids), tickets.c.status.in_(OPEN_STATUSES))))
        state.open_ticket_by_customer.update(dict(rows.tuples().all()))
        auto = any("auto_reply" in item.envelope.metadata for item in items)
        if not state.open_ticket_by_customer and not auto:
            self._sketch_items(items, state)
            return state  # nobody in this batch has an open ticket: nothing to join
        pairs = sorted({(customer_of[i.envelope.sender.key], i.content_hash) for i in items
                        if customer_of[i.envelope.sender.key] in state.open_ticket_by_customer})
        for customer_id, digest, ticket, received in _same_content(conn, pairs):
            state.recent_content[(customer_id, digest)] = (ticket, received)
        refs = sorted({ref for item in items if item.envelope.channel == "email" for ref in thread_refs(item)})
        if refs:
            rows = conn.execute(select(messages.c.channel_message_id, messages.c.ticket_id).where(
                and_(messages.c.channel == "email", _in(conn, messages.c.channel_message_id, refs))))
            state.ticket_by_thread_ref.update(dict(rows.tuples().all()))
        numbers = sorted({n for item in items if (n := item.envelope.metadata.get("ticket_number"))})
        if numbers:
            rows = conn.execute(select(tickets.c.number, tickets.c.id).where(
                and_(_in(conn, tickets.c.number, numbers), tickets.c.status.in_(OPEN_STATUSES))))
            state.ticket_by_number.update(dict(rows.tuples().all()))
            state.open_tickets.update(state.ticket_by_number.values())
        thread_tickets = sorted({t for t in state.ticket_by_thread_ref.values() if t is not None})
        if auto and thread_tickets:  # an auto-reply may join another customer's open thread (a bounce, say)
            state.open_tickets.update(conn.execute(select(tickets.c.id).where(
                and_(_in(conn, tickets.c.id, thread_tickets), tickets.c.status.in_(OPEN_STATUSES)))).scalars())
        self._load_conversations(conn, items, state)
        self._sketch_items(items, state)
        self._load_sketches(conn, items, customer_of, state)
        return state

    def _load_conversations(self, conn: Connection, items: Sequence[WorkItem], state: DedupState) -> None:
        """A chat conversation continues on the open ticket it was last seen on, within the window."""
        chats = [i.envelope for i in items if i.envelope.channel != "email" and i.envelope.conversation_id]
        open_ids = sorted(set(state.open_ticket_by_customer.values()))
        if not chats or not open_ids:
            return
        since = min(env.received_at for env in chats) - self.dedup.window
        m = messages.c
        rows = conn.execute(select(m.channel, m.account, m.conversation_id, m.ticket_id).where(and_(
            _in(conn, m.ticket_id, open_ids), _in(conn, m.conversation_id, sorted({e.conversation_id for e in chats})),
            m.received_at >= since)))
        for channel, account, conversation, ticket in rows:
            state.ticket_by_thread_ref.setdefault(f"{channel}:{account}:{conversation}", ticket)

    @staticmethod
    def _sketch_items(items: Sequence[WorkItem], state: DedupState) -> None:
        """Sketch what the customer said; an email that continues none of our threads (a forward from
        the customer's sent folder, say) is sketched whole, quotes included."""
        for item in items:
            env = item.envelope
            if "auto_reply" in env.metadata:
                continue
            whole = env.channel == "email" and not any(r in state.ticket_by_thread_ref for r in thread_refs(item))
            if item.near is not None:  # made by the stage worker
                state.sketches[env.delivery_key] = item.near.whole if whole else item.near.said
            else:
                state.sketches[env.delivery_key] = sketch(item.text if whole else item.classify_text)

    def _load_sketches(self, conn: Connection, items: Sequence[WorkItem], customer_of: dict[str, int],
                       state: DedupState) -> None:
        """Sketches of the recent messages on the open tickets of this batch's customers."""
        if not state.open_ticket_by_customer or not state.sketches:
            return
        since = min(i.envelope.received_at for i in items) - self.dedup.window
        for customer_id, ticket, received, raw in recent_sketches(conn, sorted(state.open_ticket_by_customer), since):
            if ticket == state.open_ticket_by_customer.get(customer_id):
                state.recent_sketches.setdefault(customer_id, []).append((ticket, received, Sketch.from_bytes(raw)))

    def _index_sketches(self, conn: Connection, rows: list[dict[str, Any]],
                        decided: list[tuple[WorkItem, DedupDecision]], state: DedupState, now: datetime) -> None:
        """Store the sketches and band keys of stored messages; offer identity suggestions where a new
        complaint nearly repeats another customer's within the window."""
        sketch_rows, band_rows, probes = [], [], []
        for row, (item, decision) in zip(rows, decided, strict=True):
            mine = state.sketches.get(item.envelope.delivery_key)
            if mine is None or mine.size < MIN_SHINGLES:
                continue
            sketch_rows.append({"message_id": row["id"], "customer_id": row["customer_id"],
                                "ticket_id": row["ticket_id"], "received_at": row["received_at"],
                                "sketch": mine.to_bytes()})
            if mine.size >= SUGGEST_MIN_SHINGLES:
                keys = item.near.keys_of(mine) if item.near is not None else band_keys(mine)
                band_rows += [{"band_key": k, "received_at": row["received_at"], "message_id": row["id"],
                               "customer_id": row["customer_id"]} for k in dict.fromkeys(keys)]
                if decision.outcome in ("new", "open_ticket", "thread"):
                    probes.append((row, mine, keys))
        if probes:
            self._suggest(conn, probes, now)
        bulk_insert(conn, dedup_sketches, sketch_rows)
        bulk_insert(conn, dedup_bands, band_rows)

    def _suggest(self, conn: Connection, probes: list[tuple[dict[str, Any], Sketch, list[int]]], now: datetime) -> None:
        window = self.dedup.window
        keys = sorted({k for _, _, ks in probes for k in ks})
        since = min(row["received_at"] for row, _, _ in probes) - window
        own = {row["customer_id"] for row, _, _ in probes}
        hits = band_candidates(conn, keys, since, 50 * len(probes), other_than=own.pop() if len(own) == 1 else -1,
                               per_key=SUGGEST_CANDIDATES)
        if not hits:
            return
        by_key: dict[int, list[Any]] = {}
        for hit in hits:
            found = by_key.setdefault(hit.band_key, [])
            if len(found) < SUGGEST_CANDIDATES:
                found.append(hit)
        other: dict[int, Sketch] = {}
        names = dict(conn.execute(select(customers.c.id, customers.c.display_name).where(_in(
            conn, customers.c.id, sorted({h.customer_id for h in hits} | {row["customer_id"] for row, _, _ in probes}))
        )).tuples().all())
        for row, mine, ks in probes:
            seen: set[int] = set()
            candidates = {h.message_id: h for k in ks for h in by_key.get(k, ())}
            for hit in list(candidates.values())[:SUGGEST_CANDIDATES]:
                if hit.customer_id == row["customer_id"] or hit.customer_id in seen:
                    continue
                if abs(row["received_at"] - hit.received_at) > window:
                    continue
                if hit.message_id not in other:
                    other[hit.message_id] = Sketch.from_bytes(hit.sketch)
                sim = compare(mine, other[hit.message_id])
                my_name, their_name = names.get(row["customer_id"]), names.get(hit.customer_id)
                same_name = bool(my_name and their_name and my_name.casefold() == their_name.casefold())
                if sim.score >= SUGGEST_SCORE or (same_name and sim.score >= SUGGEST_NAME_SCORE):
                    seen.add(hit.customer_id)
                    why = (("same name, " if same_name else "")
                           + f"nearly the same text within {self.dedup.hours} ({sim.reason})")
                    suggest(conn, row["customer_id"], hit.customer_id, sim.score, why, now)

    def _insert_tickets(self, conn: Connection, new: list[_NewTicket]) -> None:
        if not new:
            return
        for ticket, tid in zip(new, _allocate_ids(conn, tickets, len(new)), strict=True):
            ticket.row["id"] = tid
            ticket.row["number"] = f"{self.prefix}-{tid:06d}"
        bulk_insert(conn, tickets, [t.row for t in new])

    @staticmethod
    def _message_row(ticket_id: int | None, item: WorkItem, decision: DedupDecision, customer_id: int,
                     now: datetime) -> dict[str, Any]:
        env, labels, lang = item.envelope, item.labels, item.language
        assert labels is not None and lang is not None
        return {
            "envelope_id": env.envelope_id, "delivery_key": env.delivery_key, "ticket_id": ticket_id,
            "customer_id": customer_id, "channel": env.channel, "account": env.account,
            "channel_message_id": env.message_id, "conversation_id": env.conversation_id,
            "received_at": env.received_at, "stored_at": now, "subject": env.subject, "text": item.text,
            "content_hash": item.content_hash, "language": lang.lang,
            "language_confidence": lang.confidence, "type": labels.type,
            "type_confidence": labels.type_confidence, "category": labels.category,
            "urgency": labels.urgency, "dedup_outcome": decision.outcome, "dedup_reason": decision.reason,
            "dedup_score": decision.score, "reasons": {"labels": [*labels.reasons, *item.ticket_notes],
                                                       "language": lang.as_dict()},
            "envelope": orjson.Fragment(item.payload) if item.payload else env.model_dump(mode="json"),
        }


