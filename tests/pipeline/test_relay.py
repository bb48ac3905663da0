import asyncio
import json

import pytest
from sqlalchemy import select

from pipeline.relay import JsonlEventTarget, OutboxRelay
from pipeline.store.schema import ticket_events


def test_relay_publishes_each_event_once_in_order(processor, engine, record, tmp_path):
    processor.process([record(f"message {i}", f"c{i % 2}") for i in range(6)])
    out = tmp_path / "events.jsonl"
    relay = OutboxRelay(engine, JsonlEventTarget(str(out)), batch_size=4)
    assert asyncio.run(relay.relay_once()) == 4
    assert asyncio.run(relay.relay_once()) == 2
    assert asyncio.run(relay.relay_once()) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 6 and len({e["event_id"] for e in lines}) == 6
    with engine.connect() as conn:
        ids = conn.execute(select(ticket_events.c.event_id).order_by(ticket_events.c.id)).scalars().all()
        assert conn.execute(select(ticket_events).where(ticket_events.c.published_at.is_(None))).first() is None
    assert [e["event_id"] for e in lines] == ids


def test_a_failing_target_leaves_events_in_the_outbox(processor, engine, record):
    processor.process([record("hello", "z")])

    class Down:
        async def publish(self, events):
            raise ConnectionError("down")

    relay = OutboxRelay(engine, Down())
    with pytest.raises(ConnectionError):
        asyncio.run(relay.relay_once())
    with engine.connect() as conn:
        assert conn.execute(select(ticket_events).where(ticket_events.c.published_at.is_(None))).first()
