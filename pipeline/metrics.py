"""The pipeline's figures for Prometheus, in one registry per process (`REGISTRY`, which also
carries every connector's counters): messages per stage and channel, batch step latencies,
receive-to-stored latency, consumer lag and dead letters; and the webhook dispatcher's deliveries,
latencies and backlog per subscription. Served at /metrics by the ops server (`pipeline.ops_server`)
and by the HTTP intake server."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from connectors.metrics import PrometheusCollector
from pipeline.deadletters import DeadLetter
from pipeline.stages import WorkItem

REGISTRY = CollectorRegistry()
REGISTRY.register(PrometheusCollector())

MESSAGES = Counter("omnintake_pipeline_messages", "Messages that passed a pipeline step, by channel",
                   ["step", "channel"], registry=REGISTRY)
OUTCOMES = Counter("omnintake_pipeline_outcomes", "Stored messages, duplicates found, tickets created",
                   ["outcome"], registry=REGISTRY)
DEAD_LETTERS = Counter("omnintake_dead_letters", "Messages set aside as dead letters, by the stage that failed",
                       ["stage"], registry=REGISTRY)
STEP_SECONDS = Histogram("omnintake_pipeline_step_seconds", "Time one batch spent in a step", ["step"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY)
STORED_LATENCY = Histogram("omnintake_message_latency_seconds",
                           "From the channel's receive time to the ticket transaction committed", ["channel"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600), registry=REGISTRY)
STAGE_SECONDS = Counter("omnintake_stage_seconds", "Time spent in each stage, summed over messages", ["stage"],
                        registry=REGISTRY)
CONSUMER_LAG = Gauge("omnintake_consumer_lag", "Records behind the partition's end, after the last commit",
                     ["topic", "partition"], registry=REGISTRY)

WEBHOOK_DELIVERIES = Counter("omnintake_webhook_deliveries",
                             "Webhook delivery attempts by outcome: delivered (2xx), failed (retried later), "
                             "dead (failed after the retry budget: a dead letter)", ["subscription", "outcome"],
                             registry=REGISTRY)
WEBHOOK_DELIVERY_LATENCY = Histogram("omnintake_webhook_delivery_latency_seconds",
                                     "From the ticket event's occurred_at to the receiver's 2xx, retries included",
                                     ["subscription"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
                                                                3600, 4 * 3600, 12 * 3600, 24 * 3600),
                                     registry=REGISTRY)
WEBHOOK_RESPONSE_SECONDS = Histogram("omnintake_webhook_response_seconds",
                                     "One attempt from sending the request to the receiver's answer read "
                                     "(attempts that got an HTTP answer, any status)", ["subscription"],
                                     buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                     registry=REGISTRY)
WEBHOOK_BACKLOG = Gauge("omnintake_webhook_backlog",
                        "Pending deliveries in the store (due now or waiting for a retry), as the dispatcher "
                        "last counted them", ["subscription"], registry=REGISTRY)


def count_step(step: str, items: Sequence[WorkItem]) -> None:
    for channel, n in Tally(item.envelope.channel for item in items).items():
        MESSAGES.labels(step, channel).inc(n)


def count_dead(dead_letters: Sequence[DeadLetter]) -> None:
    for stage, n in Tally(d.stage for d in dead_letters).items():
        DEAD_LETTERS.labels(stage).inc(n)


def count_stored(items: Sequence[WorkItem], stored: int, duplicates: int, tickets_created: int) -> None:
    """After the ticket transaction committed: outcomes, and each message's time since it was received."""
    count_step("store", items)
    OUTCOMES.labels("stored").inc(stored)
    OUTCOMES.labels("duplicate").inc(duplicates)
    OUTCOMES.labels("ticket_created").inc(tickets_created)
    now = datetime.now(UTC)
    for item in items:
        seconds = (now - item.envelope.received_at).total_seconds()
        STORED_LATENCY.labels(item.envelope.channel).observe(max(0.0, seconds))


class StageClock:
    """Publishes a processor's cumulative per-stage seconds as counter increments."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def publish(self, stage_seconds: Mapping[str, float]) -> None:
        for stage, total in stage_seconds.items():
            delta = total - self._seen.get(stage, 0.0)
            if delta > 0:
                STAGE_SECONDS.labels(stage).inc(delta)
            self._seen[stage] = total


def count_webhook_attempt(subscription_id: int, outcome: str, response_s: float | None,
                          occurred_at: datetime | None = None) -> None:
    """One delivery attempt: `outcome` is delivered, failed or dead; `occurred_at` (the event's time)
    only for delivered ones."""
    subscription = str(subscription_id)
    WEBHOOK_DELIVERIES.labels(subscription, outcome).inc()
    if response_s is not None:
        WEBHOOK_RESPONSE_SECONDS.labels(subscription).observe(response_s)
    if occurred_at is not None:
        seconds = (datetime.now(UTC) - occurred_at).total_seconds()
        WEBHOOK_DELIVERY_LATENCY.labels(subscription).observe(max(0.0, seconds))


def set_webhook_backlog(pending: Mapping[int, int]) -> None:
    for subscription_id, n in pending.items():
        WEBHOOK_BACKLOG.labels(str(subscription_id)).set(n)
