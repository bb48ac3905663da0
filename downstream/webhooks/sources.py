"""Where the dispatcher reads ticket events: the Kafka topic (read_committed, offsets committed only
after the pending deliveries are stored) or, in embedded mode, the relay's JSON-lines file (the byte
position saved in the same transaction as the deliveries)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, update

from downstream.webhooks.config import WebhooksConfig
from downstream.webhooks.deliveries import StreamEvent
from pipeline.config import KafkaConfig
from pipeline.envelope import utcnow
from pipeline.store.schema import connector_cursors

log = logging.getLogger(__name__)

InTransaction = Callable[[Connection], None]
Ingest = Callable[[list[StreamEvent], InTransaction | None], Awaitable[set[int]]]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _ingest_until_stored(ingest: Ingest, events: list[StreamEvent], in_tx: InTransaction | None,
                               stop: asyncio.Event) -> bool:
    """Store the batch, retrying while the database is away; False if stopped before it was stored."""
    backoff = 0.5
    while True:
        try:
            await ingest(events, in_tx)
            return True
        except Exception as exc:
            if stop.is_set():
                return False
            log.error("recording %d webhook events failed (%r); retrying in %.1f s", len(events), exc, backoff)
            await _wait(stop, backoff)
            backoff = min(backoff * 2, 30.0)


def _parse(raw: bytes | str, where: str) -> StreamEvent | None:
    try:
        return StreamEvent.parse(raw)
    except ValueError as exc:  # not ours to fix here: the relay wrote it; skip it loudly
        log.error("skipping %s: %s", where, exc)
        return None


class KafkaEventSource:
    name = "webhooks-kafka"

    def __init__(self, kafka: KafkaConfig, cfg: WebhooksConfig) -> None:
        self.kafka = kafka
        self.cfg = cfg
        self.skipped = 0

    def _consumer(self):  # type: ignore[no-untyped-def]
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(
            self.kafka.topics.events, bootstrap_servers=self.kafka.bootstrap_servers, group_id=self.cfg.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
            max_poll_records=self.cfg.batch_max_records, session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=min(3000, self.kafka.session_timeout_ms // 3))

    async def run(self, ingest: Ingest, stop: asyncio.Event) -> None:
        from aiokafka.errors import KafkaError

        consumer = self._consumer()
        backoff = 0.5
        while not stop.is_set():
            try:
                await consumer.start()
                break
            except KafkaError as exc:
                log.error("webhooks: Kafka not reachable (%r); retrying in %.1f s", exc, backoff)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 30.0)
        else:
            return
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=self.cfg.batch_max_records)
                if not batch:
                    continue
                events = []
                for tp, records in batch.items():
                    for r in records:
                        event = _parse(r.value, f"{tp.topic}/{tp.partition}@{r.offset}")
                        if event is None:
                            self.skipped += 1
                        else:
                            events.append(event)
                if not await _ingest_until_stored(ingest, events, None, stop):
                    return  # not stored, so not committed: the next consumer reads the batch again
                try:
                    await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                except KafkaError as exc:  # a rebalance took the partition: its new owner re-reads, harmlessly
                    log.warning("webhooks: offset commit failed (%r); the batch will be read again", exc)
        finally:
            await consumer.stop()


class JsonlEventSource:
    """Follows the embedded relay's events file from the last stored byte position."""

    name = "webhooks-jsonl"

    def __init__(self, engine: Engine, path: str, cfg: WebhooksConfig) -> None:
        self.engine = engine
        self.path = Path(path)
        self.cfg = cfg
        self.key = f"jsonl:{self.path.resolve()}"
        self.skipped = 0

    def _load_position(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(connector_cursors.c.value).where(
                connector_cursors.c.connector == "webhooks", connector_cursors.c.key == self.key)).scalar()
        return int(value) if value else 0

    def _save_position(self, position: int) -> InTransaction:
        def save(conn: Connection) -> None:
            where = (connector_cursors.c.connector == "webhooks") & (connector_cursors.c.key == self.key)
            values = {"value": str(position), "updated_at": utcnow()}
            if not conn.execute(update(connector_cursors).where(where).values(**values)).rowcount:
                conn.execute(insert(connector_cursors).values(connector="webhooks", key=self.key, **values))
        return save

    def _read(self, position: int) -> tuple[list[StreamEvent], int]:
        """Complete lines from `position`; a line still being written is left for the next read."""
        if not self.path.exists():
            return [], position
        size = self.path.stat().st_size
        if size < position:
            log.warning("%s shrank below the saved position; reading it again from the start", self.path)
            position = 0
        events: list[StreamEvent] = []
        with self.path.open("rb") as src:
            src.seek(position)
            while len(events) < self.cfg.batch_max_records:
                line = src.readline()
                if not line.endswith(b"\n"):
                    break
                where = f"{self.path}@{position}"
                position += len(line)
                if line.strip():
                    event = _parse(line, where)
                    if event is None:
                        self.skipped += 1
                    else:
                        events.append(event)
        return events, position

    async def run(self, ingest: Ingest, stop: asyncio.Event) -> None:
        position = await asyncio.to_thread(self._load_position)
        while not stop.is_set():
            events, new_position = await asyncio.to_thread(self._read, position)
            if new_position == position:
                await _wait(stop, self.cfg.poll_interval_s)
                continue
            if not await _ingest_until_stored(ingest, events, self._save_position(new_position), stop):
                return
            position = new_position
