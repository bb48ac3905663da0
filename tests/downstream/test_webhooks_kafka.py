"""Webhooks on the real thing: the ticket-events topic in Kafka, PostgreSQL, the dispatcher as its own
process (SIGKILLed and restarted midway), and two real receivers on 127.0.0.1. One answers slowly,
then fails with 500, then is down (connection refused) and comes back; the other stays healthy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from downstream.webhooks.deliveries import counts_by_status
from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription
from downstream.webhooks.tables import DELIVERED
from pipeline.config import Settings, StoreConfig
from pipeline.relay import KafkaEventTarget
from pipeline.store.database import make_engine, upgrade
from pipeline.transport.kafka import ensure_topics, make_producer
from tests.downstream.webhook_helpers import Receiver, duplicates, order_violations, ticket_event
from tests.integration.conftest import kafka_cfg, pg_url  # noqa: F401  (fixtures)
from tests.integration.kafka_helpers import group_lag

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
TICKETS = [f"K{n:03d}" for n in range(40)]
SEQS = 15
TOTAL = len(TICKETS) * SEQS


def _start_dispatcher(settings: Settings, webhooks: dict, tmp: Path) -> subprocess.Popen[bytes]:
    (tmp / "settings.yaml").write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    (tmp / "webhooks.yaml").write_text(yaml.safe_dump(webhooks))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    with (tmp / "dispatcher.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "downstream.webhooks.commands", "run", "--config",
                                 str(tmp / "settings.yaml"), "--webhooks-config", str(tmp / "webhooks.yaml")],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def _until(predicate, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def test_every_event_reaches_a_receiver_that_was_down_in_order_and_the_healthy_one_never_waits(
        kafka_cfg, pg_url, tmp_path):  # noqa: F811
    settings = Settings(transport="kafka", kafka=kafka_cfg, store=StoreConfig(url=pg_url))
    group = f"{kafka_cfg.group_id}-webhooks"
    webhooks = {"group_id": group, "timeout_s": 2.0, "poll_interval_s": 0.1,
                "refresh_subscriptions_s": 0.5, "max_in_flight": 8,
                "retry": {"first_delay_s": 0.1, "multiplier": 2.0, "max_delay_s": 1.0, "jitter": 0.2,
                          "retry_for_s": 300}}
    upgrade(pg_url)
    engine = make_engine(pg_url)
    flaky = Receiver(secret="whsec_flaky_kafka_secret_00000", mode="slow", delay_s=0.1)
    healthy = Receiver(secret="whsec_healthy_kafka_secret_000")
    create_subscription(engine, SubscriptionSpec(url=flaky.url, secret=flaky.secret))
    create_subscription(engine, SubscriptionSpec(url=healthy.url, secret=healthy.secret))
    processes: list[subprocess.Popen[bytes]] = []

    async def scenario() -> dict:
        await ensure_topics(kafka_cfg)
        producer = make_producer(kafka_cfg)
        await producer.start()
        target = KafkaEventTarget(producer, kafka_cfg.topics.events)
        await flaky.start()
        await healthy.start()
        processes.append(_start_dispatcher(settings, webhooks, tmp_path))
        try:
            async def publish(seqs: range) -> None:
                await target.publish([ticket_event(t, seq) for seq in seqs for t in TICKETS])

            await publish(range(0, 3))  # slow answers
            assert await _until(lambda: len(flaky.accepted()) == 3 * len(TICKETS)), "slow phase"
            flaky.mode = "fail"
            await publish(range(3, 6))  # HTTP 500
            assert await _until(lambda: len(healthy.accepted()) >= 6 * len(TICKETS))
            await flaky.stop()  # connection refused from here
            await publish(range(6, 10))
            assert await _until(lambda: len(healthy.accepted()) >= 7 * len(TICKETS))
            processes[-1].send_signal(signal.SIGKILL)  # mid-stream, deliveries in flight
            processes[-1].wait()
            killed_at_healthy = len(healthy.accepted())
            processes.append(_start_dispatcher(settings, webhooks, tmp_path))
            await publish(range(10, SEQS))
            assert await _until(lambda: len({a.delivery_id for a in healthy.accepted()}) == TOTAL, 120), \
                "the healthy receiver waited for the dead one"
            healthy_done = time.monotonic()
            assert len(flaky.accepted()) == 3 * len(TICKETS)  # still down
            flaky.mode = "ok"
            await flaky.start()
            back = time.monotonic()
            assert await _until(lambda: len({a.delivery_id for a in flaky.accepted()}) == TOTAL, 120), "drain"
            drained_s = time.monotonic() - back
            after = sorted(a.at - back for a in flaky.accepted() if a.at >= back)
            profile = {q: round(after[int(q * (len(after) - 1))], 2) for q in (0.0, 0.5, 0.9)}
            await asyncio.sleep(1.0)  # nothing more may arrive
            processes[-1].send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(processes[-1].wait, 30) == 0
            lag = await group_lag(kafka_cfg, kafka_cfg.topics.events, group)
            return {"drained_s": drained_s, "profile": profile, "killed_at_healthy": killed_at_healthy, "lag": lag,
                    "healthy_done_before_back_s": back - healthy_done}
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
            await producer.stop()
            await flaky.stop()
            await healthy.stop()

    try:
        figures = asyncio.run(scenario())
        print(f"kafka: events={TOTAL} subscriptions=2 flaky requests={len(flaky.arrivals)} "
              f"(500s={sum(a.status == 500 for a in flaky.arrivals)}) healthy requests={len(healthy.arrivals)} "
              f"duplicates flaky={duplicates(flaky)} healthy={duplicates(healthy)} "
              f"order violations flaky={order_violations(flaky)} healthy={order_violations(healthy)} "
              f"drain after back={figures['drained_s']:.2f}s (first/50%/90% at {figures['profile']}) "
              f"lag={figures['lag']}")
        for receiver in (flaky, healthy):
            assert receiver.bad_signatures == 0
            assert order_violations(receiver) == 0
            assert len({a.event_id for a in receiver.accepted()}) == TOTAL
        # Only the SIGKILL can cause a repeat (a request answered but not yet recorded): at most what was in flight.
        assert duplicates(flaky) == 0
        assert duplicates(healthy) <= webhooks["max_in_flight"]
        assert counts_by_status(engine) == {DELIVERED: 2 * TOTAL}
        assert figures["lag"] == 0
    finally:
        engine.dispose()
