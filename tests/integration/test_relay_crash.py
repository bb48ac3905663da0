"""The relay is exactly once into Kafka, across SIGKILL.

10,000 messages (and some customer merges and un-merges) are written to PostgreSQL through the real
store while the relay runs as its own process (`intake relay`); three times the relay is
stopped while a backlog builds, then killed with SIGKILL during the catch-up (twice inside an open
Kafka transaction, once at a random moment), and restarted. Read with read_committed, the topic holds every outbox
event exactly once, and each ticket's events in outbox order.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Engine, func, select

from pipeline.envelope import utcnow
from pipeline.events import TicketEvent
from pipeline.identity import IdentityError, merge, unmerge
from pipeline.processor import Processor, RawRecord
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import customers, ticket_events
from pipeline.transport.kafka import ensure_topics, topic_partitions
from tests.integration.processes import ROOT, wait_until, write_config

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

MESSAGES, CUSTOMERS, KILLS = 10_000, 1_000, 3
TEXTS = ["My order {i} arrived broken, I want a refund", "Где мой заказ {i}? Жду уже неделю",
         "Thanks for the quick help with order {i}!", "URGENT: card {i} charged twice, fix it now",
         "Could you add a dark mode? ({i})", "订单{i}还没到"]


def start_relay(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "relay", "--config", str(config)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def record(i: int) -> RawRecord:
    customer = i % CUSTOMERS
    body = {"channel": "chat", "account": "relay-crash", "message_id": f"m{i}", "conversation_id": f"c{customer}",
            "sender": {"kind": "telegram_user", "id": f"u{customer}"},
            "received_at": datetime.now(UTC).isoformat(), "text": TEXTS[i % len(TEXTS)].format(i=i)}
    return RawRecord(json.dumps(body).encode(), f"test/{i}")


class Writer(threading.Thread):
    """Ticket changes through the real store, 100 messages a batch, a merge or un-merge now and then."""

    def __init__(self, processor: Processor, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.processor, self.engine = processor, engine
        self.written = self.merges = self.unmerges = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(6)
        merge_ids: list[int] = []
        try:
            for start in range(0, MESSAGES, 100):
                self.processor.process([record(i) for i in range(start, start + 100)])
                self.written = start + 100
                if start % 500 == 0 and start:
                    with self.engine.connect() as conn:
                        ids = conn.execute(select(customers.c.id).where(customers.c.merged_into_id.is_(None))
                                           ).scalars().all()
                    try:
                        with self.engine.begin() as conn:
                            source, target = rng.sample(ids, 2)
                            merge_ids.append(merge(conn, source, target, utcnow(), "crash test").merge_id)
                        self.merges += 1
                        if len(merge_ids) % 3 == 0:
                            with self.engine.begin() as conn:
                                unmerge(conn, merge_ids.pop(0), utcnow())
                            self.unmerges += 1
                    except IdentityError:
                        pass
        except BaseException as exc:  # reported by the test
            self.error = exc


async def read_committed(cfg, topic: str, isolation: str = "read_committed") -> list:  # type: ignore[no-untyped-def]
    parts = await topic_partitions(cfg, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, enable_auto_commit=False,
                                isolation_level=isolation)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out = []
        deadline = time.monotonic() + 120
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "reading the topic took too long"
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def kill_in_open_transaction(cfg, relay: subprocess.Popen[bytes], timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    """SIGKILL the relay while a transaction of its is open (its records are on the broker, its commit is
    not): True if it was caught so, False if it was killed at the timeout. The relay is frozen (SIGSTOP)
    as soon as the high watermark passes the last stable offset; if the offsets still differ a second
    later, the commit was never sent and the kill lands inside the transaction; if they meet, the commit
    was already on its way, and the relay runs on until the next chance."""
    parts = await topic_partitions(cfg, cfg.topics.events)
    committed = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, isolation_level="read_committed")
    everything = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers)
    await committed.start()
    await everything.start()

    async def open_transaction() -> bool:
        stable, written = await committed.end_offsets(parts), await everything.end_offsets(parts)
        return any(written[tp] > stable[tp] for tp in parts)

    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await open_transaction():
                relay.send_signal(signal.SIGSTOP)
                await asyncio.sleep(1.0)
                if await open_transaction():
                    relay.send_signal(signal.SIGKILL)
                    relay.send_signal(signal.SIGCONT)
                    return True
                relay.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.005)
        relay.send_signal(signal.SIGKILL)
        return False
    finally:
        await committed.stop()
        await everything.stop()


def unpublished(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(ticket_events.c.published_at.is_(None))).scalar() or 0


def test_sigkill_of_the_relay_neither_loses_nor_doubles_nor_reorders(kafka_settings, tmp_path):
    settings = kafka_settings.model_copy(update={"relay": kafka_settings.relay.model_copy(
        update={"batch_size": 250})})
    cfg = settings.kafka
    upgrade(settings.store.url)
    engine = make_engine(settings.store.url)
    asyncio.run(ensure_topics(cfg))
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "relay.log"
    processor = Processor(settings, engine)
    writer = Writer(processor, engine)
    started = time.monotonic()
    relay = start_relay(config, log)
    writer.start()
    rng = random.Random(1)
    kills = []
    mid_transaction = 0
    try:
        for n in range(KILLS):
            # a backlog builds while the relay is stopped; the kill lands at a random moment of the catch-up
            wait_until(lambda n=n: writer.written >= (n + 1) * MESSAGES // (KILLS + 2) or writer.error, 300,
                       "the writer")
            relay.send_signal(signal.SIGSTOP)
            backlog_from = writer.written
            # a fast writer may be near its end: then the backlog is whatever it still writes
            wait_until(lambda b=backlog_from: writer.written >= min(b + 1000, MESSAGES) or writer.error, 300,
                       "a backlog")
            before = _published(engine)
            relay.send_signal(signal.SIGCONT)
            if n % 2 == 0:  # inside an open Kafka transaction: records sent, commit not yet
                mid_transaction += asyncio.run(kill_in_open_transaction(cfg, relay, 60))
            else:  # anywhere in the catch-up, after a batch went through
                wait_until(lambda b=before: _published(engine) > b, 120, "the relay catching up", interval=0.01)
                time.sleep(rng.uniform(0.0, 0.3))
                relay.send_signal(signal.SIGKILL)
            relay.wait(10)
            kills.append((writer.written, _published(engine)))
            relay = start_relay(config, log)
        writer.join(600)
        assert writer.error is None, repr(writer.error)
        wait_until(lambda: unpublished(engine) == 0, 300, f"the outbox to drain (log: {log})")
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if relay.poll() is None:
            relay.kill()
        processor.close()
    elapsed = time.monotonic() - started

    with engine.connect() as conn:
        outbox = conn.execute(select(ticket_events.c.event_id, ticket_events.c.ticket_number)
                              .order_by(ticket_events.c.id)).all()
    engine.dispose()
    committed = asyncio.run(read_committed(cfg, cfg.topics.events))
    everything = asyncio.run(read_committed(cfg, cfg.topics.events, "read_uncommitted"))

    expected: dict[str, list[str]] = defaultdict(list)
    for event_id, number in outbox:
        expected[number].append(event_id)
    seen: dict[str, list[str]] = defaultdict(list)
    for r in sorted(committed, key=lambda r: (r.partition, r.offset)):
        event = TicketEvent.model_validate_json(r.value)  # every record follows the published schema
        assert r.key.decode() == event.ticket.number
        seen[event.ticket.number].append(event.event_id)
    ids = [e for events in seen.values() for e in events]
    duplicates = len(ids) - len(set(ids))
    out_of_order = sum(seen[n] != expected[n] for n in expected if set(seen[n]) == set(expected[n]))
    recoveries = log.read_text().count("relay recovered")
    print(f"\nrelay crash: outbox events {len(outbox)}, topic (read_committed) {len(committed)}, "
          f"aborted records hidden {len(everything) - len(committed)}, kills {len(kills)} at (written, published) "
          f"{kills} ({mid_transaction} inside an open transaction), recoveries from the state topic {recoveries}, "
          f"merges {writer.merges}, "
          f"unmerges {writer.unmerges}, duplicates {duplicates}, tickets out of order {out_of_order}, "
          f"{elapsed:.1f} s")
    assert len(outbox) >= MESSAGES
    assert duplicates == 0
    assert set(ids) == {e for e, _ in outbox}
    assert out_of_order == 0
    assert len(kills) == KILLS and all(published < len(outbox) for _, published in kills)
    assert mid_transaction >= 1 and len(everything) > len(committed), "no kill landed inside a transaction"


def _published(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(ticket_events.c.published_at.is_not(None))).scalar() or 0
