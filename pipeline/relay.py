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

from sqlalchemy import Engine, select, text, update

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

    def _pending(self) -> list[tuple[int, dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ticket_events.c.id, ticket_events.c.payload)
                                .where(ticket_events.c.published_at.is_(None))
                                .order_by(ticket_events.c.id).limit(self.batch_size))
            return [(r.id, r.payload) for r in rows]

    def _mark(self, ids: list[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ticket_events).where(ticket_events.c.id.in_(ids)).values(published_at=utcnow()))

    async def relay_once(self) -> int:
        pending = await asyncio.to_thread(self._pending)
        if not pending:
            return 0
        await self.target.publish([payload for _, payload in pending])
        await asyncio.to_thread(self._mark, [i for i, _ in pending])
        self.published += len(pending)
        return len(pending)

    async def run(self, stop: asyncio.Event) -> None:
        lock_conn = None
        if self.engine.dialect.name == "postgresql":
            lock_conn = self.engine.connect()
            while not lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}).scalar():
                lock_conn.rollback()
                if await _wait(stop, 2.0):
                    lock_conn.close()
                    return
            lock_conn.commit()
            log.info("outbox relay active (advisory lock held)")
        try:
            backoff = self.poll_interval_s
            while not stop.is_set():
                try:
                    sent = await self.relay_once()
                    backoff = self.poll_interval_s
                except Exception as exc:
                    log.error("relay failed (%r); retrying in %.1f s", exc, backoff)
                    sent = 0
                    backoff = min(backoff * 2, 30.0)
                if sent < self.batch_size:
                    await _wait(stop, backoff)
            try:
                await self.relay_once()  # what the last batches wrote, before we go
            except Exception as exc:  # the outbox keeps them for the next relay
                log.warning("final relay failed (%r); events stay in the outbox", exc)
        finally:
            if lock_conn is not None:
                lock_conn.close()


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False
