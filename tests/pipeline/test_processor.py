"""The stages and the store together on SQLite: exactly one stored message per delivery,
tickets created or appended, dead letters with reasons, outbox events in the same transaction."""

import json

from sqlalchemy import func, select

from pipeline.processor import RawRecord
from pipeline.store.schema import messages, ticket_events, tickets


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_a_message_becomes_a_ticket_with_labels_and_an_event(processor, engine, record):
    result = processor.process([record("My order arrived broken, I want a refund!", "ann")])
    assert (result.stored, result.tickets_created, result.dead_letters) == (1, 1, [])
    with engine.connect() as conn:
        ticket = conn.execute(select(tickets)).mappings().one()
        event = conn.execute(select(ticket_events)).mappings().one()
    assert ticket["number"].startswith("OMN-")
    assert ticket["language"] == "en"
    assert ticket["type"] == "complaint"
    assert ticket["sla_due_at"] > ticket["created_at"]
    assert event["type"] == "ticket.created" and event["payload"]["ticket"]["number"] == ticket["number"]


def test_redelivery_stores_nothing_twice(processor, engine, record):
    batch = [record(f"message {i}", f"c{i % 3}") for i in range(9)]
    first = processor.process(batch)
    events_after_first = count(engine, ticket_events)
    again = processor.process(batch + batch[:4])
    assert first.stored == 9 and again.stored == 0 and again.duplicates == 13
    assert count(engine, messages) == 9
    assert count(engine, tickets) == 3
    assert events_after_first >= 3 and count(engine, ticket_events) == events_after_first


def test_duplicate_inside_one_batch_is_dropped(processor, engine, record):
    one = record("same delivery twice", "dup")
    result = processor.process([one, one])
    assert (result.stored, result.duplicates) == (1, 1)


def test_same_text_again_joins_the_open_ticket_and_counts_a_repeat(processor, engine, record):
    processor.process([record("Where is my parcel 5531?", "rita")])
    result = processor.process([record("Where is my parcel 5531?", "rita")])
    assert result.tickets_created == 0 and result.stored == 1
    with engine.connect() as conn:
        ticket = conn.execute(select(tickets)).mappings().one()
        outcomes = conn.execute(select(messages.c.dedup_outcome).order_by(messages.c.id)).scalars().all()
    assert ticket["message_count"] == 2 and ticket["repeat_count"] == 1
    assert outcomes == ["new", "content_duplicate"]


def test_a_repeated_complaint_raises_urgency_and_says_why(processor, engine, record):
    text = "My order arrived broken and nobody answers my emails"
    processor.process([record(text, "bob")])
    processor.process([record(text, "bob")])
    with engine.connect() as conn:
        ticket = conn.execute(select(tickets)).mappings().one()
        reasons = conn.execute(select(messages.c.reasons).order_by(messages.c.id)).scalars().all()
        events = conn.execute(select(ticket_events.c.payload).order_by(ticket_events.c.id)).scalars().all()
    assert ticket["type"] == "complaint" and ticket["urgency"] == "high"
    note = "signal repeat_contact: ticket urgency high (the same text again on this complaint ticket)"
    assert note not in reasons[0]["labels"] and note in reasons[1]["labels"]
    reclassified = [e for e in events if e["type"] == "ticket.reclassified"]
    assert reclassified[-1]["changes"]["urgency"] == ["normal", "high"]
    assert note in [e for e in events if e["type"] == "ticket.message_appended"][-1]["message"]["reasons"]


def test_customers_are_kept_apart(processor, engine, record):
    processor.process([record("hello", "a"), record("hello", "b")])
    assert count(engine, tickets) == 2


def test_bad_records_become_dead_letters_and_the_rest_flows(processor, engine, record):
    good = record("fine message", "ok")
    bad = [RawRecord(b"{not json", "t/1"), RawRecord(json.dumps({"version": 9}).encode(), "t/2"),
           RawRecord(b"x" * (processor.max_bytes + 1), "t/3"), RawRecord(b"\xff\xfe\x00garbage", "t/4")]
    result = processor.process([bad[0], good, *bad[1:]])
    assert result.stored == 1
    assert [d.source for d in result.dead_letters] == ["t/1", "t/2", "t/3", "t/4"]
    assert all(d.stage == "validate" for d in result.dead_letters)
    assert "over the" in result.dead_letters[2].error
    assert result.dead_letters[0].payload == b"{not json"


def test_a_failing_stage_is_retried_then_dead_lettered(processor, record):
    calls = []

    class Exploding:
        name = "exploding"

        def __call__(self, item):
            calls.append(item.envelope.message_id)
            if "boom" in item.text:
                raise RuntimeError("stage broke")

    processor.stages.append(Exploding())
    result = processor.process([record("boom goes this one", "x"), record("quiet one", "y")])
    assert result.stored == 1
    [dead] = result.dead_letters
    assert (dead.stage, dead.attempts, dead.error_class) == ("exploding", processor.max_attempts, "RuntimeError")
    assert len(calls) == processor.max_attempts + 1


def test_email_reply_threads_onto_the_open_ticket(processor, engine, record):
    first = record("Charged twice for my order", "pat", channel="email", message_id="<a@x>",
                   sender={"kind": "email", "id": "pat@example.com"})
    reply = record("Any news?", "pat", channel="email", message_id="<b@x>", in_reply_to="<a@x>",
                   references=["<a@x>"], sender={"kind": "email", "id": "pat@example.com"})
    processor.process([first])
    processor.process([reply])
    with engine.connect() as conn:
        outcomes = conn.execute(select(messages.c.dedup_outcome).order_by(messages.c.id)).scalars().all()
    assert outcomes == ["new", "thread"]
    assert count(engine, tickets) == 1


def test_outbox_events_follow_the_published_schema(processor, engine, record):
    from pipeline.events import TicketEvent

    processor.process([record("Where is my order?", "q"), record("STILL NOTHING!!! I will call my lawyer", "q"),
                       record("Thanks", "r")])
    with engine.connect() as conn:
        payloads = conn.execute(select(ticket_events.c.payload).order_by(ticket_events.c.id)).scalars().all()
    parsed = [TicketEvent.model_validate(p) for p in payloads]
    assert [e.type for e in parsed][:2] == ["ticket.created", "ticket.message_appended"]
    assert "ticket.reclassified" in [e.type for e in parsed]
