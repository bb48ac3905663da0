import asyncio
import json

import pytest
from sqlalchemy import select

from pipeline.relay import EventTarget, JsonlEventTarget, OutboxRelay
from pipeline.store.schema import ticket_events


def test_relay_publishes_each_event_once_in_order(processor, engine, record, tmp_path):
    processor.process([record(f"message {i}", f"c{i % 2}") for i in range(6)])
    out = tmp_path / "events.jsonl"
    relay = OutboxRelay(engine, JsonlEventTarget(str(out)), batch_size=4)
    with engine.connect() as conn:
        total = len(conn.execute(select(ticket_events.c.id)).all())
    assert total >= 6  # created or appended for each message, reclassified where labels changed
    batches = [asyncio.run(relay.relay_once()) for _ in range(total // 4 + 2)]
    assert batches == [4] * (total // 4) + ([total % 4] if total % 4 else []) + [0] * (2 - (total % 4 > 0))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == total and len({e["event_id"] for e in lines}) == total
    with engine.connect() as conn:
        ids = conn.execute(select(ticket_events.c.event_id).order_by(ticket_events.c.id)).scalars().all()
        assert conn.execute(select(ticket_events).where(ticket_events.c.published_at.is_(None))).first() is None
    assert [e["event_id"] for e in lines] == ids


def test_a_failing_target_leaves_events_in_the_outbox(processor, engine, record):
    processor.process([record("hello", "z")])

    class Down(EventTarget):
        async def publish(self, events):
            raise ConnectionError("down")

    relay = OutboxRelay(engine, Down())
    with pytest.raises(ConnectionError):
        asyncio.run(relay.relay_once())
    with engine.connect() as conn:
        assert conn.execute(select(ticket_events).where(ticket_events.c.published_at.is_(None))).first()


def unpublished(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(ticket_events.c.id).where(ticket_events.c.published_at.is_(None))).all())


class CrashAfterPublish(JsonlEventTarget):
    """Writes the first batch, then fails as a relay killed before marking the outbox would."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.crashes = 1

    async def publish(self, events):
        await super().publish(events)
        if self.crashes:
            self.crashes -= 1
            raise ConnectionError("killed between the publish and the outbox mark")


def test_a_batch_published_but_not_marked_is_recovered_not_sent_again(processor, engine, record, tmp_path):
    processor.process([record(f"message {i}", f"c{i % 3}") for i in range(9)])
    out = tmp_path / "events.jsonl"
    relay = OutboxRelay(engine, CrashAfterPublish(str(out)), batch_size=4, poll_interval_s=0.01)

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        while unpublished(engine):
            await asyncio.sleep(0.02)
        stop.set()
        await task

    asyncio.run(scenario())
    sent = [json.loads(x)["event_id"] for x in out.read_text().splitlines()]
    with engine.connect() as conn:
        ids = conn.execute(select(ticket_events.c.event_id).order_by(ticket_events.c.id)).scalars().all()
    assert sent == ids  # each once, in outbox order
    assert relay.recovered == 4


def test_a_torn_last_line_is_cut_and_not_counted_as_sent(tmp_path):
    out = tmp_path / "events.jsonl"
    out.write_text('{"event_id": "a"}\n{"event_id": "b"}\n{"event_id": "c", "tick')
    assert asyncio.run(JsonlEventTarget(str(out)).recover()) == ["a", "b"]
    assert out.read_text() == '{"event_id": "a"}\n{"event_id": "b"}\n'


def test_every_event_the_store_writes_follows_the_published_schema(processor, engine, record):
    from pipeline.events import TicketEvent

    processor.process([record("hello", "s"), record("My order arrived broken and I am furious", "s")])
    with engine.connect() as conn:
        payloads = conn.execute(select(ticket_events.c.payload)).scalars().all()
    types = [TicketEvent.model_validate(p).type for p in payloads]
    assert types[:2] == ["ticket.created", "ticket.message_appended"]


def test_merge_and_status_events_built_outside_the_message_path_validate():
    from datetime import UTC, datetime

    from pipeline.events import EVENT_TYPES, MergeSummary, TicketEvent, outbox_row, ticket_event

    now = datetime(2026, 11, 20, tzinfo=UTC)
    ticket = {"id": 7, "number": "OMN-000007", "customer_id": 3, "status": "merged", "type": "complaint",
              "category": "delivery", "urgency": "high", "language": "en", "channel": "email", "subject": None,
              "message_count": 2, "repeat_count": 0, "sla_due_at": now, "created_at": now, "updated_at": now}
    summary = MergeSummary(merge_id=1, source_customer_id=3, target_customer_id=4, kept_ticket="OMN-000002",
                           merged_ticket="OMN-000007")
    event = ticket_event("ticket.merged", ticket, "merge:1", now, changes={"status": ["open", "merged"]},
                         merge=summary)
    assert TicketEvent.model_validate(event).merge == summary
    assert event == ticket_event("ticket.merged", ticket, "merge:1", now, changes={"status": ["open", "merged"]},
                                 merge=summary)  # the same cause, the same id
    assert outbox_row(event, 7, now)["ticket_number"] == "OMN-000007"
    assert {"ticket.merged", "ticket.unmerged", "ticket.status_changed", "ticket.reclassified"} <= set(EVENT_TYPES)


def test_intake_run_and_the_standalone_relay_get_the_exactly_once_target_on_kafka(settings, engine):
    from pipeline.relay import ExactlyOnceKafkaTarget, make_relay, state_topic

    kafka = make_relay(settings.model_copy(update={"transport": "kafka"}), engine)
    assert isinstance(kafka.target, ExactlyOnceKafkaTarget)
    assert kafka.target.transactional_id == "omnintake-relay.omnintake.tickets.events.v1"  # fixed: fences zombies
    assert kafka.target.state_topic == state_topic("omnintake.tickets.events.v1")
    assert isinstance(make_relay(settings, engine).target, JsonlEventTarget)
