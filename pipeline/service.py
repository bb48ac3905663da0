"""`intake run`: connectors, the pipeline, the outbox relay, the webhook dispatcher (when enabled)
and the ops server (/metrics, /healthz, /readyz) in one process, until SIGTERM.

Embedded transport: connectors feed the stages in-process (SQLite by default). Kafka transport:
connectors publish to the raw topic and the runner consumes it; the relay publishes ticket events
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.registry import enabled_connectors
from pipeline.config import Settings
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.embedded import EmbeddedSink
from pipeline.ops_server import ReadinessCheck, build_ops_app, store_check
from pipeline.processor import Processor
from pipeline.relay import make_relay
from pipeline.store.cursors import SqlCursorStore
from pipeline.store.database import make_engine, upgrade

log = logging.getLogger(__name__)


async def retry_until(action: Callable[[], Awaitable[None]], what: str, stop: asyncio.Event) -> bool:
    """Run `action` until it succeeds (True) or stop is set (False), backing off up to 30 s."""
    backoff = 0.5
    while not stop.is_set():
        try:
            await action()
            return True
        except Exception as exc:
            log.error("%s failed (%r); retrying in %.1f s", what, exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 30.0)
    return False


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def run_service(settings: Settings, stop: asyncio.Event) -> None:
    engine = make_engine(settings.store.url, settings.store.echo)
    await asyncio.to_thread(upgrade, settings.store.url)
    workers = settings.pipeline.stage_workers if settings.transport == "kafka" else 0
    processor = Processor(settings, engine, stage_workers=workers)
    connectors = enabled_connectors(settings.connectors, SqlCursorStore(engine))
    tasks: list[asyncio.Task[None]] = []
    checks: dict[str, ReadinessCheck] = {"store": store_check(engine)}
    producer = None
    if settings.transport == "embedded":
        sink = EmbeddedSink(processor, SqlDeadLetterQueue(engine))
    else:
        from pipeline.runner import PipelineRunner
        from pipeline.transport.kafka import KafkaPublisher, ensure_topics, make_producer

        kafka = settings.kafka
        if not await retry_until(lambda: ensure_topics(kafka), "creating Kafka topics", stop):
            return
        producer = make_producer(kafka)
        if not await retry_until(producer.start, "connecting the Kafka producer", stop):
            return
        sink = KafkaPublisher(kafka, producer)  # type: ignore[assignment]
        checks["kafka"] = kafka_check(producer)
        tasks.append(asyncio.create_task(PipelineRunner(kafka, processor, producer).run(stop), name="pipeline"))
    for connector in connectors:
        tasks.append(asyncio.create_task(connector.run(sink, stop), name=connector.name))
    if settings.relay.enabled:
        tasks.append(asyncio.create_task(make_relay(settings, engine).run(stop), name="relay"))
    if settings.webhooks.enabled:
        from downstream.webhooks.dispatcher import WebhookDispatcher, make_source

        dispatcher = WebhookDispatcher(engine, settings.webhooks, make_source(engine, settings.webhooks, settings))
        tasks.append(asyncio.create_task(dispatcher.run(stop), name="webhooks"))
    if settings.ops.enabled:
        from connectors.http_intake import serve_until

        ops = build_ops_app(checks)
        tasks.append(asyncio.create_task(serve_until(ops, settings.ops.host, settings.ops.port, stop), name="ops"))
        log.info("ops endpoints on http://%s:%d (/metrics /healthz /readyz)", settings.ops.host, settings.ops.port)
    log.info("omnintake running: transport=%s store=%s connectors=%s", settings.transport,
             engine.url.render_as_string(hide_password=True), [c.name for c in connectors])
    try:
        await _supervise(tasks, stop, settings.kafka.drain_timeout_s)
    finally:
        for connector in connectors:
            await connector.close()
        if producer is not None:
            await producer.stop()
        processor.close()
        engine.dispose()
        log.info("omnintake stopped")


def kafka_check(producer: Any) -> ReadinessCheck:
    async def check() -> None:
        await producer.client.fetch_all_metadata()

    return check


async def _supervise(tasks: list[asyncio.Task[None]], stop: asyncio.Event, drain_timeout_s: float) -> None:
    """Run until stop (or until a task fails), then let every task drain; a failure, before or
    during the drain, is raised so the process exits non-zero."""
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    # longer than the runner's own drain timeout, so it can finish its batch and say so itself
    _, pending = await asyncio.wait(tasks, timeout=drain_timeout_s + 10)
    for task in pending:
        log.warning("%s did not drain in time; cancelling", task.get_name())
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failed = [t for t in tasks if not t.cancelled() and t.exception() is not None]
    for task in failed:
        log.error("%s failed: %r", task.get_name(), task.exception())
    if failed:
        raise failed[0].exception()  # type: ignore[misc]
