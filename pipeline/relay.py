"""The outbox relay: ticket events written in the ticket's transaction are published in id order
and marked published only after the target acknowledged them (at least once; event ids are
stable so subscribers can drop repeats). On PostgreSQL an advisory lock keeps one relay active.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, text, update

from pipeline.envelope import utcnow
from pipeline.store.schema import ticket_events

log = logging.getLogger(__name__)
_LOCK_KEY = 7_340_001


class EventTarget(Protocol):
    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        """Return once every event is durably accepted, in the given order per ticket."""


class JsonlEventTarget:
    """Embedded mode: events appended to a JSON-lines file, fsynced before they count as sent."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        await asyncio.to_thread(self._write, events)

    def _write(self, events: Sequence[dict[str, Any]]) -> None:
        import os

        with self.path.open("a", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())


class KafkaEventTarget:
    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        futures = [await self.producer.send(self.topic, json.dumps(e, ensure_ascii=False).encode(),
                                            key=e["ticket"]["number"].encode(),
                                            headers=[("event_id", e["event_id"].encode()),
                                                     ("type", e["type"].encode())])
                   for e in events]
        await asyncio.gather(*futures)


class OutboxRelay:
    name = "relay"

    def __init__(self, engine: Engine, target: EventTarget, batch_size: int = 500,
                 poll_interval_s: float = 0.5) -> None:
        self.engine = engine
        self.target = target
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.published = 0

    def _claim(self) -> tuple[Connection, list[tuple[int, dict[str, Any]]]] | None:
        """Open a transaction and read the next events; on PostgreSQL only while holding the relay's
        transaction-scoped advisory lock, so one relay publishes at a time and a crashed one lets go."""
        conn = self.engine.connect()
        try:
            conn.begin()
            if self.engine.dialect.name == "postgresql" and not conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY}).scalar():
                conn.close()
                return None  # another relay is active
            rows = conn.execute(select(ticket_events.c.id, ticket_events.c.payload)
                                .where(ticket_events.c.published_at.is_(None))
                                .order_by(ticket_events.c.id).limit(self.batch_size))
            return conn, [(r.id, r.payload) for r in rows]
        except BaseException:
            conn.close()
            raise

    def _mark(self, conn: Connection, ids: list[int]) -> None:
        conn.execute(update(ticket_events).where(ticket_events.c.id.in_(ids)).values(published_at=utcnow()))
        conn.commit()

    async def relay_once(self) -> int:
        claimed = await asyncio.to_thread(self._claim)
        if claimed is None:
            return 0
        conn, pending = claimed
        try:
            if not pending:
                return 0
            await self.target.publish([payload for _, payload in pending])
            await asyncio.to_thread(self._mark, conn, [i for i, _ in pending])
        finally:
            await asyncio.to_thread(conn.close)
        self.published += len(pending)
        return len(pending)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.poll_interval_s
        while not stop.is_set():
            try:
                sent = await self.relay_once()
                backoff = self.poll_interval_s
            except Exception as exc:  # database or broker away: the events wait in the outbox
                log.error("relay failed (%r); retrying in %.1f s", exc, backoff)
                sent = 0
                backoff = min(backoff * 2, 30.0)
            if sent < self.batch_size:
                await _wait(stop, backoff)
        try:
            await self.relay_once()  # what the last batches wrote, before we go
        except Exception as exc:  # the outbox keeps them for the next relay
            log.warning("final relay failed (%r); events stay in the outbox", exc)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False
