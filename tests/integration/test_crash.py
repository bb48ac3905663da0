"""Crash and drain: real `intake run` processes on Kafka + PostgreSQL.

20,000 messages over 6 partitions, two pipeline processes, one killed with SIGKILL midway and
restarted: every message is stored exactly once, no ticket is doubled, counts match what was produced.
"""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from pipeline.envelope import Envelope, Sender
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages, ticket_events, tickets
from pipeline.transport.kafka import KafkaPublisher, ensure_topics
from tests.integration.kafka_helpers import group_lag, read_all
from tests.integration.processes import start, stored, wait_until, write_config

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

TEXTS = ["My order {i} arrived broken, I want a refund", "Где мой заказ {i}? Жду уже неделю",
         "Đơn hàng {i} giao trễ quá", "订单{i}还没到", "Η παραγγελία {i} δεν ήρθε ακόμα",
         "Thanks for the help with {i}!"]


async def produce(cfg, start_at: int, count: int, customers: int) -> None:
    publisher = KafkaPublisher(cfg)
    await publisher.start()
    try:
        for chunk in range(start_at, start_at + count, 2000):
            await publisher.accept([
                Envelope(channel="chat", account="crash", message_id=f"m{i}", conversation_id=f"c{i % customers}",
                         sender=Sender(kind="telegram_user", id=f"u{i % customers}"),
                         received_at=datetime.now(UTC), text=TEXTS[i % len(TEXTS)].format(i=i))
                for i in range(chunk, min(chunk + 2000, start_at + count))])
    finally:
        await publisher.stop()


def test_sigkill_midway_loses_and_doubles_nothing(kafka_settings, tmp_path):
    total, customers = 20_000, 2_000
    cfg = kafka_settings.kafka
    upgrade(kafka_settings.store.url)
    engine = make_engine(kafka_settings.store.url)
    asyncio.run(ensure_topics(cfg))
    asyncio.run(produce(cfg, 0, total, customers))
    config = write_config(kafka_settings, tmp_path / "config.yaml")
    log = tmp_path / "pipeline.log"
    a, b = start(config, log), start(config, log)
    procs = [a, b]
    try:
        wait_until(lambda: stored(engine) >= total // 3, 180, "a third of the messages")
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        killed_at = stored(engine)
        procs.append(start(config, log))
        wait_until(lambda: stored(engine) >= total, 300, f"all {total} messages (log: {log})")
        wait_until(lambda: asyncio.run(group_lag(cfg, cfg.topics.raw, cfg.group_id)) == 0, 60, "zero lag")
        with engine.connect() as conn:
            wait_until(lambda: conn.execute(text("SELECT count(*) FROM ticket_events WHERE published_at IS NULL"))
                       .scalar() == 0 or conn.rollback(), 60, "the outbox to drain")
    finally:
        for p in procs[1:]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        exits = [p.wait(60) for p in procs[1:]]
    assert exits == [0, 0], log.read_text()[-3000:]
    assert total // 3 <= killed_at < total, "the kill must land midway"

    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(messages)).scalar()
        distinct = conn.execute(select(func.count(func.distinct(messages.c.delivery_key)))).scalar()
        n_tickets = conn.execute(select(func.count()).select_from(tickets)).scalar()
        open_per_customer = conn.execute(text(
            "SELECT max(n) FROM (SELECT count(*) n FROM tickets GROUP BY customer_id) t")).scalar()
        mismatched = conn.execute(text(
            "SELECT count(*) FROM tickets t WHERE t.message_count <> "
            "(SELECT count(*) FROM messages m WHERE m.ticket_id = t.id)")).scalar()
        created = conn.execute(select(func.count()).where(ticket_events.c.type == "ticket.created")).scalar()
        appended = conn.execute(select(func.count()).where(ticket_events.c.type == "ticket.message_appended")).scalar()
        db_events = conn.execute(select(ticket_events.c.event_id)).scalars().all()
    assert (count, distinct) == (total, total)
    assert n_tickets == customers and open_per_customer == 1
    assert mismatched == 0
    assert (created, appended) == (customers, total - customers)
    relayed = asyncio.run(read_all(cfg, cfg.topics.events, timeout_s=30))
    assert {json.loads(r.value)["event_id"] for r in relayed} == set(db_events)
    engine.dispose()


def test_sigterm_drains_commits_and_exits_cleanly(kafka_settings, tmp_path):
    cfg = kafka_settings.kafka
    upgrade(kafka_settings.store.url)
    engine = make_engine(kafka_settings.store.url)
    asyncio.run(ensure_topics(cfg))
    config = write_config(kafka_settings, tmp_path / "config.yaml")
    log = tmp_path / "pipeline.log"
    proc = start(config, log)
    try:
        asyncio.run(produce(cfg, 0, 500, 50))
        wait_until(lambda: stored(engine) == 500, 120, "the first 500 messages")
        asyncio.run(produce(cfg, 500, 4000, 50))
        wait_until(lambda: stored(engine) > 500, 60, "work in flight")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    done = stored(engine)
    lag = asyncio.run(group_lag(cfg, cfg.topics.raw, cfg.group_id))
    assert done + lag == 4500, "committed offsets must match exactly what was stored"
    assert "omnintake stopped" in log.read_text()
    rest = start(config, log)
    try:
        wait_until(lambda: stored(engine) == 4500, 120, "the rest after restart")
    finally:
        rest.send_signal(signal.SIGTERM)
        assert rest.wait(60) == 0
    engine.dispose()
