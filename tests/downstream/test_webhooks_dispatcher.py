"""The dispatcher end to end in embedded mode: the relay's events file, SQLite, and two real local
receivers; one answers slowly, fails, goes down and comes back, the other stays healthy."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from downstream.webhooks.config import RetryPolicy, WebhooksConfig
from downstream.webhooks.deliveries import counts_by_status, list_deliveries
from downstream.webhooks.dispatcher import WebhookDispatcher
from downstream.webhooks.sources import JsonlEventSource
from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription
from downstream.webhooks.tables import DEAD, DELIVERED
from tests.downstream.webhook_helpers import Receiver, append_jsonl, duplicates, order_violations, ticket_event

TICKETS = [f"T{n}" for n in range(12)]


def fast_config(**overrides) -> WebhooksConfig:
    retry = RetryPolicy(first_delay_s=0.05, multiplier=2, max_delay_s=0.5, jitter=0.2, retry_for_s=120)
    values = {"retry": retry, "timeout_s": 2.0, "poll_interval_s": 0.1,
              "refresh_subscriptions_s": 0.2, "drain_timeout_s": 3.0, "batch_max_records": 50, **overrides}
    return WebhooksConfig(**values)


async def until(predicate, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def events_for(seqs: range) -> list[dict]:
    return [ticket_event(t, seq) for seq in seqs for t in TICKETS]


class Running:
    """A dispatcher as a task, stoppable and restartable like a process."""

    def __init__(self, engine, cfg: WebhooksConfig, path: Path) -> None:
        self.engine, self.cfg, self.path = engine, cfg, path

    def start(self) -> None:
        self.stop_event = asyncio.Event()
        source = JsonlEventSource(self.engine, str(self.path), self.cfg)
        self.dispatcher = WebhookDispatcher(self.engine, self.cfg, source)
        self.task = asyncio.create_task(self.dispatcher.run(self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await self.task


def test_a_receiver_down_for_a_while_gets_everything_in_order_once_and_the_other_never_waits(engine, tmp_path):
    events_file = tmp_path / "ticket-events.jsonl"
    cfg = fast_config()
    flaky = Receiver(secret="whsec_flaky_secret_0000000000", mode="slow", delay_s=0.2)
    healthy = Receiver(secret="whsec_healthy_secret_00000000")
    flaky_sub = create_subscription(engine, SubscriptionSpec(url=flaky.url, secret=flaky.secret))
    create_subscription(engine, SubscriptionSpec(url=healthy.url, secret=healthy.secret))

    async def scenario() -> dict:
        await flaky.start()
        await healthy.start()
        running = Running(engine, cfg, events_file)
        running.start()
        append_jsonl(events_file, events_for(range(0, 3)))  # slow answers
        assert await until(lambda: len(flaky.accepted()) == 36)
        flaky.mode = "fail"  # HTTP 500
        append_jsonl(events_file, events_for(range(3, 5)))
        assert await until(lambda: len(healthy.accepted()) == 60)
        assert await until(lambda: any(a.status == 500 for a in flaky.arrivals)), "the failing receiver was never tried"
        await flaky.stop()  # connection refused
        append_jsonl(events_file, events_for(range(5, 8)))
        assert await until(lambda: len(healthy.accepted()) == 96), "the healthy receiver waited for the dead one"
        await running.stop()  # a restart while deliveries are pending
        running.start()
        append_jsonl(events_file, events_for(range(8, 10)))
        assert await until(lambda: len(healthy.accepted()) == 120)
        failed_before = len(flaky.accepted())
        flaky.mode = "ok"
        await flaky.start()
        back = time.monotonic()
        assert await until(lambda: len(flaky.accepted()) == 120)
        drained_s = time.monotonic() - back
        await asyncio.sleep(0.5)  # nothing more should arrive
        await running.stop()
        await flaky.stop()
        await healthy.stop()
        return {"drained_s": drained_s, "accepted_before_back": failed_before}

    figures = asyncio.run(scenario())
    print(f"embedded: 120 events x 2 subscriptions, flaky receiver requests {len(flaky.arrivals)}, "
          f"drained {figures['drained_s']:.2f} s after it came back")
    for receiver in (flaky, healthy):
        assert receiver.bad_signatures == 0
        assert duplicates(receiver) == 0
        assert order_violations(receiver) == 0
        assert len({a.event_id for a in receiver.accepted()}) == 120
    assert figures["accepted_before_back"] == 36
    assert any(a.status == 500 for a in flaky.arrivals)
    assert counts_by_status(engine) == {DELIVERED: 240}
    retried = [d for d in list_deliveries(engine, flaky_sub.id, limit=500) if d["attempts"] > 1]
    assert retried and all(d["last_error"] is None for d in retried)  # went through after several attempts


def test_a_receiver_that_never_answers_in_time_ends_in_the_dead_letters_and_can_be_redelivered(engine, tmp_path):
    from downstream.webhooks.deliveries import redeliver

    events_file = tmp_path / "ticket-events.jsonl"
    cfg = fast_config(timeout_s=0.3, retry=RetryPolicy(first_delay_s=0.05, max_delay_s=0.1,
                                                                      jitter=0, retry_for_s=1.0))
    slow = Receiver(secret="whsec_slow_secret_00000000000", mode="slow", delay_s=1.0)
    sub = create_subscription(engine, SubscriptionSpec(url=slow.url, secret=slow.secret))

    async def scenario() -> None:
        await slow.start()
        running = Running(engine, cfg, events_file)
        running.start()
        append_jsonl(events_file, [ticket_event("T1", 0), ticket_event("T1", 1)])
        assert await until(lambda: counts_by_status(engine).get(DEAD) == 2, timeout_s=20)
        slow.mode = "ok"
        assert redeliver(engine, subscription_id=sub.id) == 2
        assert await until(lambda: counts_by_status(engine).get(DELIVERED) == 2, timeout_s=20)
        await running.stop()
        await slow.stop()

    asyncio.run(scenario())
    [first, second] = sorted(list_deliveries(engine, sub.id), key=lambda d: d["id"])
    assert first["status"] == second["status"] == DELIVERED
    # the receiver saw each delivery id several times (it answered too late): that is what the id is for
    by_id = {a.delivery_id for a in slow.arrivals}
    assert by_id == {first["delivery_id"], second["delivery_id"]}
    assert len(slow.arrivals) > 2


def test_events_the_real_pipeline_and_relay_wrote_are_delivered_signed(processor, record, engine, tmp_path):
    """From a stored message through the outbox relay's file to a receiver (httpx's MockTransport)."""
    import httpx

    from downstream.webhooks.dispatcher import make_source
    from downstream.webhooks.signing import verify
    from pipeline.config import RelayConfig, Settings
    from pipeline.relay import JsonlEventTarget, OutboxRelay

    events_file = tmp_path / "ticket-events.jsonl"
    sub = create_subscription(engine, SubscriptionSpec(url="https://hooks.example/in", event_types=("ticket.created",)))
    processor.process([record("My parcel never arrived and nobody answers", "ann")])
    processor.process([record("Still nothing, I want my money back", "ann")])
    asyncio.run(OutboxRelay(engine, JsonlEventTarget(str(events_file))).relay_once())
    received: list[httpx.Request] = []

    async def receive(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    settings = Settings(relay=RelayConfig(jsonl_path=str(events_file)))
    cfg = fast_config()

    async def scenario() -> None:
        stop = asyncio.Event()
        dispatcher = WebhookDispatcher(engine, cfg, make_source(engine, cfg, settings), httpx.MockTransport(receive))
        task = asyncio.create_task(dispatcher.run(stop))
        assert await until(lambda: counts_by_status(engine).get(DELIVERED) == 1)
        stop.set()
        await task

    asyncio.run(scenario())
    [request] = received  # the message_appended event is not in this subscription's filter
    body = request.read()
    verify(sub.secret, request.headers["Omnintake-Signature"], body)
    assert request.headers["Omnintake-Event-Type"] == "ticket.created"
    assert json.loads(body)["ticket"]["number"] and events_file.read_text().count("\n") == 2


def test_an_event_source_that_fails_is_started_again(engine):
    import httpx

    from downstream.webhooks.deliveries import StreamEvent

    create_subscription(engine, SubscriptionSpec(url="https://hooks.example/in"))

    class FailingOnceSource:
        name = "failing-once"
        runs = 0

        async def run(self, ingest, stop) -> None:
            self.runs += 1
            if self.runs == 1:
                raise RuntimeError("broker said no")
            await ingest([StreamEvent.parse(json.dumps(ticket_event("T1", 0)))], None)
            await stop.wait()

    source = FailingOnceSource()

    async def scenario() -> None:
        stop = asyncio.Event()
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        task = asyncio.create_task(WebhookDispatcher(engine, fast_config(), source, transport).run(stop))
        assert await until(lambda: counts_by_status(engine).get(DELIVERED) == 1, timeout_s=20)
        stop.set()
        await task

    asyncio.run(scenario())
    assert source.runs == 2
