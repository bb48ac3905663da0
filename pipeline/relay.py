"""The outbox relay: ticket events written in the ticket's transaction are published in outbox order.

Into Kafka exactly once (`ExactlyOnceKafkaTarget`): each batch is one Kafka transaction holding the
events and a record of their ids on a compacted state topic. The outbox's `published_at` marks what
the relay has confirmed; the one batch in doubt after a crash (committed to Kafka, not yet marked) is
read back from the state topic with read_committed after the new producer has fenced the old one,
and marked without being sent again. A pure Kafka watermark would not do: outbox ids come from a
sequence, and concurrent or rolled-back transactions leave gaps that fill late or never.

One relay is active per database: on PostgreSQL it holds a session advisory lock; the others wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, text, update

from pipeline.config import KafkaConfig, Settings
from pipeline.envelope import utcnow
from pipeline.store.schema import ticket_events

log = logging.getLogger(__name__)
_LOCK_CLASS = 7_340_001
_TAIL_BYTES = 4 * 1024 * 1024


class EventTarget:
    """Where events go. `publish` is required; the hooks default to nothing."""

    async def open(self) -> None:
        """Connect; a transactional target fences any older instance of itself here."""

    async def recover(self) -> list[str]:
        """Event ids the target durably holds that the outbox may not have marked yet."""
        return []

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        """Return once every event is durably accepted, in the given order per ticket."""
        raise NotImplementedError

    async def close(self) -> None:
        """Disconnect."""


class JsonlEventTarget(EventTarget):
    """Embedded mode: events appended to a JSON-lines file, fsynced before they count as sent.
    After a crash the file's tail says what was written, and a torn last line is cut off."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    async def recover(self) -> list[str]:
        return await asyncio.to_thread(self._recover)

    def _recover(self) -> list[str]:
        if not self.path.is_file():
            return []
        with self.path.open("r+b") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - _TAIL_BYTES)
            file.seek(start)
            tail = file.read()
            if tail and not tail.endswith(b"\n"):  # killed mid-write: that event was never sent
                file.truncate(start + tail.rfind(b"\n") + 1)
                tail = tail[:tail.rfind(b"\n") + 1]
        lines = tail.split(b"\n")[1 if start else 0:]
        return [json.loads(line)["event_id"] for line in lines if line.strip()]

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        await asyncio.to_thread(self._write, events)

    def _write(self, events: Sequence[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())


def _record(event: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Value, key (the ticket number, so a ticket's events share a partition) and headers."""
    return (json.dumps(event, ensure_ascii=False).encode(), event["ticket"]["number"].encode(),
            [("event_id", event["event_id"].encode()), ("type", event["type"].encode())])


class KafkaEventTarget(EventTarget):
    """At least once, on a shared idempotent producer: a crash between the acknowledgement and the
    outbox mark sends the batch again (same event ids). `ExactlyOnceKafkaTarget` does not."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        futures = []
        for event in events:
            value, key, headers = _record(event)
            futures.append(await self.producer.send(self.topic, value, key=key, headers=headers))
        await asyncio.gather(*futures)


def state_topic(events_topic: str) -> str:
    return f"{events_topic}.relay-state"


class ExactlyOnceKafkaTarget(EventTarget):
    """A transactional producer with a fixed `transactional_id` (one per events topic): starting it
    fences a zombie relay and completes or aborts whatever transaction it left open."""

    def __init__(self, cfg: KafkaConfig, transactional_id: str | None = None) -> None:
        self.cfg = cfg
        self.topic = cfg.topics.events
        self.state_topic = state_topic(self.topic)
        self.transactional_id = transactional_id or f"omnintake-relay.{self.topic}"
        self.producer: Any = None

    async def open(self) -> None:
        from aiokafka import AIOKafkaProducer

        from pipeline.transport.kafka import ensure_topics

        await ensure_topics(self.cfg)
        await self._ensure_state_topic()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.cfg.bootstrap_servers,
                                         transactional_id=self.transactional_id, acks="all",
                                         linger_ms=5, max_batch_size=262144)
        await self.producer.start()  # InitProducerId: the fencing happens here, before any recovery read

    async def _ensure_state_topic(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError, for_code

        admin = AIOKafkaAdminClient(bootstrap_servers=self.cfg.bootstrap_servers)
        await admin.start()
        try:
            if self.state_topic in set(await admin.list_topics()):
                return
            topic = NewTopic(self.state_topic, 1, self.cfg.replication_factor,
                             topic_configs={"cleanup.policy": "compact"})
            response = await admin.create_topics([topic])
            for name, code, *rest in response.topic_errors:
                if code and for_code(code) is not TopicAlreadyExistsError:
                    raise for_code(code)(f"creating topic {name}: {rest[-1] if rest else ''}")
        finally:
            await admin.close()

    async def recover(self) -> list[str]:
        """The event ids of the last committed batch, from the state topic's committed tail."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        tp = TopicPartition(self.state_topic, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.cfg.bootstrap_servers, enable_auto_commit=False,
                                    isolation_level="read_committed")
        await consumer.start()
        try:
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]  # the last stable offset under read_committed
            deadline = asyncio.get_running_loop().time() + 60
            for start in (max(0, end - 64), 0):  # the tail holds it unless many transactions aborted
                consumer.seek(tp, start)
                last = None
                while await consumer.position(tp) < end:
                    if asyncio.get_running_loop().time() > deadline:
                        raise TimeoutError(f"reading {self.state_topic} up to offset {end}")
                    for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                        last = next((r for r in reversed(records) if r.key == self.transactional_id.encode()),
                                    last)
                if last is not None:
                    return list(json.loads(last.value)["event_ids"])
                if start == 0:
                    return []
            return []
        finally:
            await consumer.stop()

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        producer = self.producer
        await producer.begin_transaction()
        try:
            futures = []
            for event in events:
                value, key, headers = _record(event)
                futures.append(await producer.send(self.topic, value, key=key, headers=headers))
            state = {"relay": self.transactional_id, "event_ids": [e["event_id"] for e in events],
                     "at": datetime.now(UTC).isoformat()}
            futures.append(await producer.send(self.state_topic, json.dumps(state).encode(),
                                               key=self.transactional_id.encode(), partition=0))
            await asyncio.gather(*futures)
        except BaseException:
            with contextlib.suppress(Exception):  # a fenced producer cannot abort; its successor will
                await asyncio.wait_for(producer.abort_transaction(), 10)
            raise
        await producer.commit_transaction()

    async def close(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()


class OutboxRelay:
    name = "relay"

    def __init__(self, engine: Engine, target: EventTarget, batch_size: int = 500,
                 poll_interval_s: float = 0.5, standby_interval_s: float = 2.0, lock_name: str = "") -> None:
        self.engine = engine
        self.target = target
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.standby_interval_s = standby_interval_s
        self._lock_id = zlib.crc32(lock_name.encode()) - 2**31  # one relay per database and events topic
        self._lock_conn: Connection | None = None
        self.published = 0
        self.recovered = 0

    # -- leadership ----------------------------------------------------------------------------
    def _try_lead(self) -> bool:
        """Take the session advisory lock on a connection kept for it (PostgreSQL); SQLite has one writer."""
        if self.engine.dialect.name != "postgresql":
            return True
        conn = self.engine.connect()
        try:
            held = conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"),
                                {"c": _LOCK_CLASS, "k": self._lock_id}).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not held:
            conn.close()
            return False
        self._lock_conn = conn
        return True

    def _check_lead(self) -> None:
        """Raises if the lock's connection is gone (the lock with it); Kafka fencing covers the rest."""
        if self._lock_conn is not None:
            self._lock_conn.execute(text("SELECT 1"))
            self._lock_conn.commit()

    def _step_down(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": _LOCK_CLASS, "k": self._lock_id})
                conn.commit()
            except Exception:  # the connection is gone, and the lock with it
                pass
            finally:
                conn.invalidate()  # never back to the pool holding a session lock
                conn.close()

    # -- the outbox ----------------------------------------------------------------------------
    def _pending(self) -> list[tuple[int, dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ticket_events.c.id, ticket_events.c.payload)
                                .where(ticket_events.c.published_at.is_(None))
                                .order_by(ticket_events.c.id).limit(self.batch_size))
            return [(r.id, r.payload) for r in rows]

    def _mark(self, ids: list[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ticket_events).where(ticket_events.c.id.in_(ids)).values(published_at=utcnow()))

    def _mark_events(self, event_ids: list[str]) -> int:
        marked = 0
        with self.engine.begin() as conn:
            for start in range(0, len(event_ids), 1000):
                marked += conn.execute(update(ticket_events).where(
                    ticket_events.c.event_id.in_(event_ids[start:start + 1000]),
                    ticket_events.c.published_at.is_(None)).values(published_at=utcnow())).rowcount
        return marked

    async def recover(self) -> int:
        """Mark what the target already holds; returns how many outbox rows that marked."""
        marked = await asyncio.to_thread(self._mark_events, await self.target.recover())
        if marked:
            log.warning("relay recovered %d events the target held but the outbox had not marked", marked)
        self.recovered += marked
        return marked

    async def relay_once(self) -> int:
        pending = await asyncio.to_thread(self._pending)
        if not pending:
            return 0
        await self.target.publish([payload for _, payload in pending])
        await asyncio.to_thread(self._mark, [i for i, _ in pending])
        self.published += len(pending)
        return len(pending)

    # -- the loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Wait to lead, open the target, recover, then relay until stop; any failure starts over
        (the target reopened fences what the failed one may have left)."""
        backoff = self.poll_interval_s
        while not stop.is_set():
            try:
                if not await asyncio.to_thread(self._try_lead):
                    await _wait(stop, self.standby_interval_s)
                    continue
                await self.target.open()
                await self.recover()
                backoff = self.poll_interval_s
                while not stop.is_set():
                    if await self.relay_once() < self.batch_size:
                        await _wait(stop, self.poll_interval_s)
                    await asyncio.to_thread(self._check_lead)
                await self.relay_once()  # what the last batches wrote, before we go
            except Exception as exc:  # database or broker away: the events wait in the outbox
                log.error("relay failed (%r); starting over in %.1f s", exc, backoff)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                await _quietly(self.target.close())
                await asyncio.to_thread(self._step_down)


async def _quietly(step: Any) -> None:
    try:
        await step
    except Exception as exc:
        log.warning("relay: %r while closing", exc)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False


def make_relay(settings: Settings, engine: Engine) -> OutboxRelay:
    """The relay `intake run` and `intake relay` use: exactly once into Kafka, a file embedded."""
    target: EventTarget
    if settings.transport == "kafka":
        target = ExactlyOnceKafkaTarget(settings.kafka)
    else:
        target = JsonlEventTarget(settings.relay.jsonl_path)
    lock_name = settings.kafka.topics.events if settings.transport == "kafka" else settings.relay.jsonl_path
    return OutboxRelay(engine, target, settings.relay.batch_size, settings.relay.poll_interval_s,
                       lock_name=lock_name)


async def run_relay(settings: Settings, stop: asyncio.Event) -> OutboxRelay:
    from pipeline.store.database import make_engine

    engine = make_engine(settings.store.url, settings.store.echo)
    relay = make_relay(settings, engine)
    try:
        await relay.run(stop)
    finally:
        engine.dispose()
    log.info("relay stopped: published %d, recovered %d", relay.published, relay.recovered)
    return relay
