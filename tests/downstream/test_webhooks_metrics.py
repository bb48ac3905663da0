"""The dispatcher's Prometheus figures move with real deliveries to a local receiver: delivered,
failed and dead attempts per subscription, latency since the event, the receiver's response time,
and the pending backlog. Its log lines about a delivery carry the delivery's ids as JSON fields."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

from downstream.webhooks.config import RetryPolicy
from downstream.webhooks.deliveries import counts_by_status
from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription
from downstream.webhooks.tables import DEAD, DELIVERED
from pipeline.logs import JsonFormatter
from pipeline.metrics import REGISTRY
from tests.downstream.test_webhooks_dispatcher import Running, fast_config, until
from tests.downstream.webhook_helpers import Receiver, append_jsonl, ticket_event


def sample(name: str, subscription: int, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"subscription": str(subscription), **labels}) or 0.0


def deliveries(subscription: int, outcome: str) -> float:
    return sample("omnintake_webhook_deliveries_total", subscription, outcome=outcome)


def test_deliveries_latency_response_time_and_backlog_are_counted_per_subscription(engine, tmp_path):
    events_file = tmp_path / "ticket-events.jsonl"
    cfg = fast_config(refresh_subscriptions_s=0.1)
    receiver = Receiver(secret="whsec_metrics_secret_000000000", mode="slow", delay_s=0.05)
    sub = create_subscription(engine, SubscriptionSpec(url=receiver.url, secret=receiver.secret))
    # ids restart with every test database while the registry lives as long as the process: compare deltas
    before = {outcome: deliveries(sub.id, outcome) for outcome in ("delivered", "failed", "dead")}
    latency_before = sample("omnintake_webhook_delivery_latency_seconds_count", sub.id)
    latency_sum_before = sample("omnintake_webhook_delivery_latency_seconds_sum", sub.id)
    response_before = sample("omnintake_webhook_response_seconds_count", sub.id)
    response_sum_before = sample("omnintake_webhook_response_seconds_sum", sub.id)

    async def scenario() -> float:
        await receiver.start()
        receiver.mode = "fail"
        running = Running(engine, cfg, events_file)
        running.start()
        events = [ticket_event(f"T{t}", seq) for seq in range(2) for t in range(3)]
        for event in events:  # happened now, after the subscription, so the latency is real
            event["occurred_at"] = datetime.now(UTC).isoformat()
        append_jsonl(events_file, events)
        assert await until(lambda: sample("omnintake_webhook_backlog", sub.id) == 6), "backlog never counted"
        assert await until(lambda: deliveries(sub.id, "failed") - before["failed"] >= 3)
        receiver.mode = "slow"
        assert await until(lambda: counts_by_status(engine).get(DELIVERED) == 6)
        assert await until(lambda: sample("omnintake_webhook_backlog", sub.id) == 0), "backlog never went down"
        await running.stop()
        await receiver.stop()
        return sum(a.status == 500 for a in receiver.arrivals)

    refused = asyncio.run(scenario())
    assert deliveries(sub.id, "delivered") - before["delivered"] == 6
    assert deliveries(sub.id, "failed") - before["failed"] == refused  # each HTTP 500 once, as a retry
    assert deliveries(sub.id, "dead") == before["dead"]
    assert sample("omnintake_webhook_delivery_latency_seconds_count", sub.id) - latency_before == 6
    answered = sample("omnintake_webhook_response_seconds_count", sub.id) - response_before
    assert answered == 6 + refused
    # each delivered event waited at least for its own slow answer (0.05 s), the first ones for the retries too
    assert sample("omnintake_webhook_response_seconds_sum", sub.id) - response_sum_before >= 6 * 0.05
    assert sample("omnintake_webhook_delivery_latency_seconds_sum", sub.id) - latency_sum_before >= 6 * 0.05


class JsonLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_a_delivery_given_up_counts_as_dead_and_its_log_line_names_the_delivery(engine, tmp_path):
    events_file = tmp_path / "ticket-events.jsonl"
    cfg = fast_config(retry=RetryPolicy(first_delay_s=0.05, max_delay_s=0.1, jitter=0, retry_for_s=0.3))
    down = Receiver(secret="whsec_metrics_down_0000000000")  # never started: connection refused
    sub = create_subscription(engine, SubscriptionSpec(url=down.url, secret=down.secret))
    dead_before, failed_before = deliveries(sub.id, "dead"), deliveries(sub.id, "failed")
    response_before = sample("omnintake_webhook_response_seconds_count", sub.id)

    async def scenario() -> None:
        running = Running(engine, cfg, events_file)
        running.start()
        append_jsonl(events_file, [ticket_event("T1", 0)])
        assert await until(lambda: counts_by_status(engine).get(DEAD) == 1, timeout_s=20)
        await running.stop()

    dispatcher_log = logging.getLogger("downstream.webhooks.dispatcher")
    handler = JsonLines()
    dispatcher_log.addHandler(handler)
    try:
        asyncio.run(scenario())
    finally:
        dispatcher_log.removeHandler(handler)
    [dead_line] = [line for line in handler.lines if "dead after" in line["msg"]]
    assert dead_line["subscription"] == sub.id and dead_line["ticket"] == "T1"
    assert dead_line["event_id"] == ticket_event("T1", 0)["event_id"] and len(dead_line["delivery_id"]) == 36
    assert deliveries(sub.id, "dead") - dead_before == 1
    assert deliveries(sub.id, "failed") - failed_before >= 1  # the retries before it gave up
    assert sample("omnintake_webhook_response_seconds_count", sub.id) == response_before
