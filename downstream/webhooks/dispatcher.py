"""The webhook dispatcher: reads ticket events, records a pending delivery per matching subscription,
and runs one worker per subscription with its own HTTP client, in-flight limit and timeouts, so a
slow or dead receiver only ever delays its own deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine

from downstream.webhooks.config import WebhooksConfig
from downstream.webhooks.deliveries import (
    ClaimedDelivery,
    StreamEvent,
    claim_due,
    pending_by_subscription,
    record_events,
    release,
)
from downstream.webhooks.delivery import attempt
from downstream.webhooks.recorder import OutcomeRecorder
from downstream.webhooks.sources import Ingest, InTransaction
from downstream.webhooks.subscriptions import Subscription, active_subscriptions, list_subscriptions
from pipeline import metrics
from pipeline.config import Settings
from pipeline.logs import log_context

log = logging.getLogger(__name__)


class EventSource(Protocol):
    name: str

    async def run(self, ingest: Ingest, stop: asyncio.Event) -> None:
        """Hand batches of events to `ingest` until stop; move the source's position only after it returned."""


@dataclass
class DispatcherStats:
    events_read: int = 0
    attempts: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead: int = 0
    per_subscription: dict[int, dict[str, int]] = field(default_factory=dict)

    def count(self, subscription_id: int, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        counters = self.per_subscription.setdefault(subscription_id, {})
        counters[what] = counters.get(what, 0) + 1


async def _store_retrying(action: Callable[[], Any], what: str, attempts: int = 6) -> None:
    """A short retry for bookkeeping writes; if they all fail, the lease runs out and the delivery is
    attempted again (same delivery id, so the receiver drops the repeat)."""
    delay = 0.5
    for n in range(attempts):
        try:
            await asyncio.to_thread(action)
            return
        except Exception as exc:
            if n == attempts - 1:
                log.error("%s failed for good (%r); the delivery will be retried after its lease", what, exc)
                return
            log.warning("%s failed (%r); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)


class SubscriptionWorker:
    def __init__(self, engine: Engine, subscription: Subscription, cfg: WebhooksConfig, stats: DispatcherStats,
                 recorder: OutcomeRecorder, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.engine = engine
        self.recorder = recorder
        self.subscription = subscription
        self.cfg = cfg
        self.stats = stats
        self.wake = asyncio.Event()
        self.stop = asyncio.Event()
        self.failing = False  # the last attempt failed: on the next success, retry the waiting ones now
        self._in_flight: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=cfg.timeout_s,
                                         limits=httpx.Limits(max_connections=cfg.max_in_flight))

    async def run(self) -> None:
        sid = self.subscription.id
        try:
            while not self.stop.is_set():
                self.wake.clear()
                room = self.cfg.max_in_flight - len(self._in_flight)
                claimed: list[ClaimedDelivery] = []
                if room > 0:
                    try:
                        claimed = await asyncio.to_thread(claim_due, self.engine, sid, room, self.cfg.lease_s)
                    except Exception as exc:
                        log.error("subscription %d: claiming deliveries failed (%r)", sid, exc)
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{sid}-{delivery.id}")
                    self._in_flight.add(task)
                    task.add_done_callback(self._done)
                if claimed and len(claimed) == room:
                    continue  # more may be due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.cfg.poll_interval_s)
        finally:
            await self._drain()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("subscription %d: delivery task failed", self.subscription.id, exc_info=task.exception())
        self.wake.set()  # the ticket's next event may be due now

    async def _drain(self) -> None:
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=self.cfg.drain_timeout_s)
            for task in late:  # their leases run out and they are attempted again
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._client.aclose()

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        """Attempt it; on success go on with the same ticket's next delivery while one is due."""
        following: ClaimedDelivery | None = delivery
        while following is not None and not self.stop.is_set():
            following = await self._attempt(following)
        if following is not None:
            await _store_retrying(lambda: release(self.engine, following), f"releasing {following.delivery_id}")

    async def _attempt(self, delivery: ClaimedDelivery) -> ClaimedDelivery | None:
        with log_context(subscription=self.subscription.id, delivery_id=delivery.delivery_id,
                         event_id=delivery.event_id, ticket=delivery.ticket_number):
            return await self._attempt_logged(delivery)

    async def _attempt_logged(self, delivery: ClaimedDelivery) -> ClaimedDelivery | None:
        sub = self.subscription
        result = await attempt(self._client, sub, delivery, self.cfg.timeout_s, self.cfg.user_agent)
        self.stats.count(sub.id, "attempts")
        if result.ok:
            pull_forward, self.failing = self.failing, False
            following = await self.recorder.delivered(delivery, result.status or 200, pull_forward)
            self.stats.count(sub.id, "delivered")
            metrics.count_webhook_attempt(sub.id, "delivered", result.response_s, delivery.occurred_at())
            return following
        self.failing = True
        self.stats.count(sub.id, "failed_attempts")
        dead = await self.recorder.failed(delivery, result.status, result.error)
        metrics.count_webhook_attempt(sub.id, "dead" if dead else "failed", result.response_s)
        if dead:
            self.stats.count(sub.id, "dead")
            log.warning("subscription %d: delivery %s (event %s) dead after %d attempts: %s", sub.id,
                        delivery.delivery_id, delivery.event_id, delivery.attempts + 1, result.error)
        return None


class WebhookDispatcher:
    def __init__(self, engine: Engine, cfg: WebhooksConfig, source: EventSource,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.engine = engine
        self.cfg = cfg
        self.source = source
        self.transport = transport
        self.stats = DispatcherStats()
        self.recorder = OutcomeRecorder(engine, cfg.retry, cfg.lease_s)
        self._workers: dict[int, tuple[SubscriptionWorker, asyncio.Task[None]]] = {}
        self._backlog_reported: set[int] = set()

    def _record(self, events: list[StreamEvent], in_tx: InTransaction | None) -> set[int]:
        with self.engine.begin() as conn:
            touched = record_events(conn, events, active_subscriptions(conn))
            if in_tx is not None:
                in_tx(conn)
            return touched

    async def ingest(self, events: list[StreamEvent], in_tx: InTransaction | None = None) -> set[int]:
        touched = await asyncio.to_thread(self._record, events, in_tx)
        self.stats.events_read += len(events)
        for sid in touched:
            if sid in self._workers:
                self._workers[sid][0].wake.set()
        return touched

    async def run(self, stop: asyncio.Event) -> None:
        reading = asyncio.create_task(self.source.run(self.ingest, stop), name=self.source.name)
        try:
            while not stop.is_set():
                try:
                    await self._refresh_workers()
                    await self._report_backlog()
                except Exception as exc:
                    log.error("webhooks: loading subscriptions or counting the backlog failed (%r)", exc)
                if reading.done() and not stop.is_set():
                    # the source stopped on an error: start it again from its stored position
                    error = None if reading.cancelled() else reading.exception()
                    log.error("webhooks: event source %s ended (%r); restarting it", self.source.name, error)
                    reading = asyncio.create_task(self.source.run(self.ingest, stop), name=self.source.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.cfg.refresh_subscriptions_s)
        finally:
            with contextlib.suppress(Exception):
                await reading
            await self._stop_workers(list(self._workers))

    async def _refresh_workers(self) -> None:
        wanted = {s.id: s for s in await asyncio.to_thread(list_subscriptions, self.engine, True)}
        changed = [sid for sid, (worker, _) in self._workers.items()
                   if sid not in wanted or wanted[sid] != worker.subscription]
        await self._stop_workers(changed)
        for sid, subscription in wanted.items():
            if sid not in self._workers:
                worker = SubscriptionWorker(self.engine, subscription, self.cfg, self.stats, self.recorder,
                                            self.transport)
                self._workers[sid] = (worker, asyncio.create_task(worker.run(), name=f"webhooks-{sid}"))

    async def _report_backlog(self) -> None:
        """The pending count of every subscription, paused ones too (their deliveries wait)."""
        subscriptions = await asyncio.to_thread(list_subscriptions, self.engine)
        pending = await asyncio.to_thread(pending_by_subscription, self.engine, [s.id for s in subscriptions])
        gone = dict.fromkeys(self._backlog_reported - pending.keys(), 0)
        metrics.set_webhook_backlog(pending | gone)
        self._backlog_reported = set(pending)

    async def _stop_workers(self, ids: list[int]) -> None:
        stopping = [self._workers.pop(sid) for sid in ids]
        for worker, _ in stopping:
            worker.stop.set()
            worker.wake.set()
        results = await asyncio.gather(*(task for _, task in stopping), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("webhook worker ended with %r", result)


def make_source(engine: Engine, cfg: WebhooksConfig, settings: Settings) -> EventSource:
    """The source follows the transport: the ticket-events topic, or the embedded relay's file."""
    from downstream.webhooks.sources import JsonlEventSource, KafkaEventSource

    if settings.transport == "kafka":
        return KafkaEventSource(settings.kafka, cfg)
    return JsonlEventSource(engine, settings.relay.jsonl_path, cfg)
