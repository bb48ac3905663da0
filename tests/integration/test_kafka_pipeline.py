"""The spine on real Kafka and PostgreSQL: publish, consume, store once, dead-letter, relay events."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from pipeline.envelope import Envelope, Sender
from pipeline.processor import Processor
from pipeline.relay import KafkaEventTarget, OutboxRelay
from pipeline.runner import PipelineRunner
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages, ticket_events, tickets
from pipeline.transport.kafka import KafkaPublisher, ensure_topics, make_producer
from tests.integration.conftest import run
from tests.integration.kafka_helpers import group_lag, read_all

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def envelope(i: int, customer: int, text: str | None = None) -> Envelope:
    return Envelope(channel="chat", account="telegram:@shop", message_id=f"m{i}", conversation_id=f"c{customer}",
                    sender=Sender(kind="telegram_user", id=str(customer)), received_at=datetime.now(UTC),
                    text=text or f"My order {i} arrived broken, please refund")


async def process_until(settings, engine, expected: int, timeout: float = 60.0) -> Processor:
    processor = Processor(settings, engine, stage_workers=1)  # the stages in a worker process, as in production
    producer = make_producer(settings.kafka)
    await producer.start()
    stop = asyncio.Event()
    seen = 0

    def on_batch(result, records):
        nonlocal seen
        seen += len(records)
        if seen >= expected:
            stop.set()

    try:
        runner = PipelineRunner(settings.kafka, processor, producer, on_batch=on_batch)
        await asyncio.wait_for(runner.run(stop), timeout)
    finally:
        await producer.stop()
        processor.close()
    return processor


def test_messages_flow_to_tickets_once_with_dead_letters_and_events(kafka_settings):
    cfg = kafka_settings.kafka
    upgrade(kafka_settings.store.url)
    engine = make_engine(kafka_settings.store.url)

    async def scenario():
        await ensure_topics(cfg)
        publisher = KafkaPublisher(cfg)
        await publisher.start()
        try:
            envs = [envelope(i, i % 40) for i in range(300)]
            await publisher.accept(envs)
            await publisher.accept(envs[:25])  # a connector re-sending after a crash
            for bad in (b"{not json", json.dumps({"version": 7}).encode()):
                await publisher.producer.send_and_wait(cfg.topics.raw, bad, key=b"bad")
        finally:
            await publisher.stop()
        await process_until(kafka_settings, engine, 327)
        relay_producer = make_producer(cfg)
        await relay_producer.start()
        try:
            relay = OutboxRelay(engine, KafkaEventTarget(relay_producer, cfg.topics.events))
            while await relay.relay_once():
                pass
        finally:
            await relay_producer.stop()
        return (await read_all(cfg, cfg.topics.dead_letters), await read_all(cfg, cfg.topics.events),
                await group_lag(cfg, cfg.topics.raw, cfg.group_id))

    dead, events, lag = run(scenario())
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 300
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 40
        counts = conn.execute(select(tickets.c.message_count)).scalars().all()
        db_events = conn.execute(select(func.count()).select_from(ticket_events)).scalar()
    assert sum(counts) == 300
    assert lag == 0
    assert len(dead) == 2
    headers = [dict(d.headers) for d in dead]
    assert {h["stage"] for h in headers} == {b"validate"}
    assert any(b"version" in h["error"] for h in headers)
    assert len(events) == db_events and len({e.value for e in events}) == db_events
    by_ticket: dict[bytes, list[str]] = {}
    for e in sorted(events, key=lambda r: (r.partition, r.offset)):
        by_ticket.setdefault(e.key, []).append(json.loads(e.value)["type"])
    assert len(by_ticket) == 40
    assert all(types[0] == "ticket.created" for types in by_ticket.values())
    engine.dispose()


def test_concurrent_writers_store_each_message_once(pg_url):
    """Two processors racing on the same batch (a rebalance overlap) leave one copy of everything."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.config import Settings, StoreConfig
    from pipeline.processor import RawRecord

    upgrade(pg_url)
    settings = Settings(store=StoreConfig(url=pg_url))
    engines = [make_engine(pg_url), make_engine(pg_url)]
    processors = [Processor(settings, e) for e in engines]
    records = [RawRecord(envelope(i, i % 15).model_dump_json().encode(), f"r/{i}") for i in range(400)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: p.process(records), processors))
    assert sum(r.stored for r in results) == 400
    assert not any(r.dead_letters for r in results)
    with engines[0].connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 400
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 15
        assert sum(conn.execute(select(tickets.c.message_count)).scalars()) == 400
    for e in engines:
        e.dispose()
