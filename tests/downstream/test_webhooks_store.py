"""Subscriptions and deliveries in the store (SQLite): validation, filters, recording once, the
per-ticket head, dead letters and redelivery."""

import json
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError

from downstream.webhooks.config import RetryPolicy
from downstream.webhooks.deliveries import (
    StreamEvent,
    claim_due,
    counts_by_status,
    delivery_id,
    list_deliveries,
    mark_delivered,
    mark_failed,
    record_events,
    redeliver,
    release,
)
from downstream.webhooks.subscriptions import (
    SubscriptionError,
    SubscriptionSpec,
    active_subscriptions,
    create_subscription,
    list_subscriptions,
    set_active,
)
from downstream.webhooks.tables import DEAD, DELIVERED, PENDING
from pipeline.envelope import utcnow
from pipeline.store.schema import metadata
from tests.downstream.webhook_helpers import ticket_event


def stream(*events):
    return [StreamEvent.parse(json.dumps(e)) for e in events]


def record(engine, events):
    with engine.begin() as conn:
        return record_events(conn, stream(*events), active_subscriptions(conn))


def test_webhook_tables_match_migration_0006(engine):
    def ours(name, kind, parents):  # the other tables are other migrations' to check
        return kind != "table" or (name or "").startswith("webhook_")

    def our_objects(obj, name, kind, reflected, compare_to):
        table = obj if kind == "table" else getattr(obj, "table", None)
        return table is None or table.name.startswith("webhook_")

    opts = {"include_name": ours, "include_object": our_objects}
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []


@pytest.mark.parametrize("url", ["ftp://hooks.example/x", "file:///etc/passwd", "javascript:alert(1)",
                                 "gopher://a", "hooks.example/x", "http:///nohost", ""])
def test_non_http_urls_are_rejected(url):
    with pytest.raises(ValidationError, match="url"):
        SubscriptionSpec(url=url)


def test_filters_are_validated():
    with pytest.raises(ValidationError, match="urgenc"):
        SubscriptionSpec(url="https://a.example", urgencies=("urgent",))
    with pytest.raises(ValidationError, match="event type"):
        SubscriptionSpec(url="https://a.example", event_types=("created",))
    spec = SubscriptionSpec(url="HTTPS://a.example/h", event_types=("ticket.created", "ticket.created"))
    assert spec.event_types == ("ticket.created",)


def test_events_are_recorded_once_per_matching_subscription(engine):
    everything = create_subscription(engine, SubscriptionSpec(url="https://all.example/h"))
    created_high = create_subscription(engine, SubscriptionSpec(
        url="https://high.example/h", event_types=("ticket.created",), urgencies=("high", "critical")))
    events = [ticket_event("T1", 0, "ticket.created", "high"), ticket_event("T1", 1, urgency="high"),
              ticket_event("T2", 0, "ticket.created", "low")]
    assert record(engine, events) == {everything.id, created_high.id}
    assert record(engine, events) == set()  # read again after a restart: nothing new
    mine = list_deliveries(engine, created_high.id)
    assert [d["event_id"] for d in mine] == [events[0]["event_id"]]
    assert mine[0]["delivery_id"] == delivery_id(created_high.id, events[0]["event_id"])
    assert counts_by_status(engine) == {PENDING: 4}
    assert len(everything.secret) > 40 and "secret" not in everything.public()


def test_a_paused_subscription_gets_no_new_deliveries(engine):
    sub = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"))
    set_active(engine, sub.id, False)
    assert record(engine, [ticket_event("T1", 0)]) == set()
    assert set_active(engine, sub.id, True).active
    assert record(engine, [ticket_event("T1", 1)]) == {sub.id}
    with pytest.raises(SubscriptionError):
        set_active(engine, 999, True)
    assert [s.id for s in list_subscriptions(engine)] == [sub.id]


def test_only_the_oldest_pending_delivery_of_a_ticket_is_claimed(engine):
    sub = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"))
    record(engine, [ticket_event("T1", 0), ticket_event("T2", 0), ticket_event("T1", 1), ticket_event("T1", 2)])
    first = claim_due(engine, sub.id, 10, lease_s=30)
    assert [(c.ticket_number, json.loads(c.body)["ticket"]["subject"]) for c in first] == [("T1", "seq 0"),
                                                                                         ("T2", "seq 0")]
    assert claim_due(engine, sub.id, 10, lease_s=30) == []  # leased, and T1's next waits for its head
    mark_delivered(engine, first[0], 200)
    [second] = claim_due(engine, sub.id, 10, lease_s=30)
    assert json.loads(second.body)["ticket"]["subject"] == "seq 1"


def test_a_success_can_claim_the_tickets_next_delivery_at_once(engine):
    sub = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"))
    record(engine, [ticket_event("T1", 0), ticket_event("T1", 1), ticket_event("T2", 0)])
    [t1, t2] = claim_due(engine, sub.id, 10, lease_s=30)
    following = mark_delivered(engine, t1, 200, claim_next_s=30)
    assert following is not None and json.loads(following.body)["ticket"]["subject"] == "seq 1"
    assert claim_due(engine, sub.id, 10, lease_s=30) == []  # T1#1 is leased to us, T2 still in flight
    assert mark_delivered(engine, t2, 200, claim_next_s=30) is None  # T2 has nothing more
    release(engine, following)
    assert [c.id for c in claim_due(engine, sub.id, 10, lease_s=30)] == [following.id]


def test_a_crashed_dispatchers_lease_runs_out(engine):
    sub = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"))
    record(engine, [ticket_event("T1", 0)])
    assert claim_due(engine, sub.id, 10, lease_s=30)
    later = utcnow() + timedelta(seconds=31)
    assert len(claim_due(engine, sub.id, 10, lease_s=30, now=later)) == 1


def test_failures_back_off_then_dead_letter_and_the_next_event_of_the_ticket_goes(engine):
    policy = RetryPolicy(first_delay_s=60, max_delay_s=60, jitter=0, retry_for_s=3600)
    sub = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"))
    record(engine, [ticket_event("T1", 0), ticket_event("T1", 1)])
    now = utcnow()
    [head] = claim_due(engine, sub.id, 10, 30, now)
    assert not mark_failed(engine, head, 500, "HTTP 500: no", policy, now)
    assert claim_due(engine, sub.id, 10, 30, now + timedelta(seconds=59)) == []  # backing off, T1#1 waits
    [again] = claim_due(engine, sub.id, 10, 30, now + timedelta(seconds=61))
    assert again.id == head.id and again.attempts == 1
    assert mark_failed(engine, again, None, "ConnectError", policy, now + timedelta(hours=1))
    [dead] = list_deliveries(engine, sub.id, DEAD)
    assert dead["attempts"] == 2 and dead["last_error"] == "ConnectError"
    [following] = claim_due(engine, sub.id, 10, 30, now + timedelta(hours=1))
    assert json.loads(following.body)["ticket"]["subject"] == "seq 1"


def test_redelivery_queues_dead_letters_again_with_the_same_delivery_id(engine):
    policy = RetryPolicy(first_delay_s=1, jitter=0, retry_for_s=1)
    sub = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"))
    record(engine, [ticket_event("T1", 0)])
    now = utcnow()
    [head] = claim_due(engine, sub.id, 10, 30, now)
    assert not mark_failed(engine, head, 500, "x", policy, now)
    [head] = claim_due(engine, sub.id, 10, 30, now + timedelta(seconds=2))
    assert mark_failed(engine, head, 500, "x", policy, now + timedelta(seconds=2))
    assert counts_by_status(engine, sub.id) == {DEAD: 1}
    assert redeliver(engine, subscription_id=sub.id) == 1
    [again] = claim_due(engine, sub.id, 10, 30)
    assert again.delivery_id == head.delivery_id and again.attempts == 0
    mark_delivered(engine, again, 204)
    assert redeliver(engine, subscription_id=sub.id) == 0  # only dead ones without explicit ids
    assert redeliver(engine, [head.delivery_id]) == 1  # an explicit id may be sent again
    assert counts_by_status(engine, sub.id) == {PENDING: 1}
    assert redeliver(engine) == 0


def test_a_success_after_failures_makes_the_waiting_retries_due_now(engine):
    policy = RetryPolicy(first_delay_s=3600, max_delay_s=3600, jitter=0)
    sub = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"))
    record(engine, [ticket_event("T1", 0), ticket_event("T2", 0), ticket_event("T3", 0)])
    claimed = claim_due(engine, sub.id, 10, 30)
    for c in claimed[:2]:
        mark_failed(engine, c, 503, "down", policy)
    assert [c.ticket_number for c in claim_due(engine, sub.id, 10, 30)] == []
    mark_delivered(engine, claimed[2], 200, retry_waiting_now=True)
    assert sorted(c.ticket_number for c in claim_due(engine, sub.id, 10, 30)) == ["T1", "T2"]
    assert counts_by_status(engine, sub.id) == {PENDING: 2, DELIVERED: 1}


def test_a_malformed_event_is_refused_by_the_parser():
    with pytest.raises(ValueError, match="not a ticket event"):
        StreamEvent.parse('{"event_id": "x"}')
