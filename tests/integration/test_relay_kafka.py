"""The exactly-once relay on real Kafka and PostgreSQL: the batch in doubt and the zombie relay."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka.errors import KafkaError
from sqlalchemy import func, select

from pipeline.processor import Processor
from pipeline.relay import ExactlyOnceKafkaTarget, OutboxRelay
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import ticket_events
from tests.integration.test_relay_crash import read_committed

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


class CommitThenCrash(ExactlyOnceKafkaTarget):
    """Commits the first transaction, then fails before the relay can mark the outbox."""

    crashed = False

    async def publish(self, events):
        await super().publish(events)
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("killed between the Kafka commit and the outbox mark")


def test_the_batch_in_doubt_is_read_back_from_kafka_not_sent_twice(kafka_settings, record):
    cfg = kafka_settings.kafka
    upgrade(kafka_settings.store.url)
    engine = make_engine(kafka_settings.store.url)
    processor = Processor(kafka_settings, engine)
    processor.process([record(f"order {i} is late", f"k{i % 7}") for i in range(40)])
    processor.close()
    relay = OutboxRelay(engine, CommitThenCrash(cfg), batch_size=15, poll_interval_s=0.05, lock_name="t")

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        while True:
            with engine.connect() as conn:
                if not conn.execute(select(func.count()).where(ticket_events.c.published_at.is_(None))).scalar():
                    break
            await asyncio.sleep(0.1)
        stop.set()
        await task
        return await read_committed(cfg, cfg.topics.events)

    records = asyncio.run(scenario())
    with engine.connect() as conn:
        outbox = conn.execute(select(ticket_events.c.event_id).order_by(ticket_events.c.id)).scalars().all()
    engine.dispose()
    sent = [json.loads(r.value)["event_id"] for r in records]
    assert len(outbox) >= 40 and sorted(sent) == sorted(outbox) and len(sent) == len(set(sent))
    assert relay.recovered == 15


def test_a_zombie_relay_is_fenced_and_its_batch_never_seen(kafka_cfg):
    def event(i: int) -> dict:
        return {"event_id": f"e{i}", "type": "ticket.created", "ticket": {"number": f"T-{i % 3}"}}

    async def scenario():
        zombie, successor = ExactlyOnceKafkaTarget(kafka_cfg), ExactlyOnceKafkaTarget(kafka_cfg)
        await zombie.open()
        await zombie.publish([event(i) for i in range(3)])
        await successor.open()  # same transactional id: the zombie's epoch is over
        try:
            with pytest.raises(KafkaError):
                await zombie.publish([event(i) for i in range(3, 6)])
            assert await successor.recover() == ["e0", "e1", "e2"]
            await successor.publish([event(6)])
        finally:
            await zombie.close()
            await successor.close()
        return await read_committed(kafka_cfg, kafka_cfg.topics.events)

    seen = sorted(json.loads(r.value)["event_id"] for r in asyncio.run(scenario()))
    assert seen == ["e0", "e1", "e2", "e6"]
