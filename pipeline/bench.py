"""`intake bench`: the pipeline on Kafka + the configured store, beside the ceiling of a plain
aiokafka consume->produce loop on the same machine, so the result is also a ratio.

Phases, each on fresh topics: produce N envelopes; the raw loop consumes and re-produces them;
the pipeline consumes them into tickets (throughput, time per stage); then a producer paces
messages at half the measured throughput, from a separate process, while the pipeline runs
(end-to-end latency: producer timestamp to offset commit after the ticket transaction).
`peak_rss_mb` is this process (pipeline, plus the benchmark's own producer and raw loop);
`children_peak_rss_mb` the largest child (the stage worker or the paced producer).
A phase waits as long as messages keep being processed (a loaded machine is slow, not stuck) and
fails with the reason when the runner stops or nothing is processed for 300 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import platform
import random
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.config import KafkaConfig, Settings, TopicsConfig
from pipeline.envelope import Envelope, Sender
from pipeline.processor import Processor
from pipeline.runner import PipelineRunner
from pipeline.store.database import make_engine, upgrade
from pipeline.transport.kafka import ensure_topics, make_producer

TEXTS = [
    "My order #{n} arrived broken and nobody answers my emails. I want a refund!",
    "Hello, how can I change the delivery address for order {n}?",
    "Đơn hàng {n} của tôi giao trễ 5 ngày rồi, shop kiểm tra giúp tôi với.",
    "我的订单{n}还没有到，已经等了一个星期了，请尽快处理。",
    "Здравствуйте, с моей карты дважды списали оплату за заказ {n}. Верните деньги.",
    "Η παραγγελία {n} ήρθε χαλασμένη, θέλω αντικατάσταση το συντομότερο.",
    "Great service, thank you! The parcel {n} came a day early.",
    "It would be nice if your app let me save two addresses (order {n}).",
]


def _envelope(i: int, run: str, rng: random.Random) -> bytes:
    customer = rng.randrange(max(1, 20_000))
    # Order numbers unique to the run: with the same numbers, every message repeated the text of an
    # earlier run's (other) customer within the dedup window and became an identity suggestion.
    env = Envelope(channel="chat", account="bench", message_id=f"{run}-{i}", conversation_id=f"c{customer}",
                   sender=Sender(kind="telegram_user", id=f"{run}-{customer}"), received_at=datetime.now(UTC),
                   text=rng.choice(TEXTS).format(n=f"{run[5:15]}{i:06d}"))
    return env.model_dump_json().encode()


async def _produce(producer: AIOKafkaProducer, topic: str, payloads: list[bytes], rate: float | None = None) -> float:
    started = time.perf_counter()
    futures = []
    for i, payload in enumerate(payloads):
        if rate:
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        futures.append(await producer.send(topic, payload, key=str(i % 997).encode()))
    await asyncio.gather(*futures)
    return time.perf_counter() - started


def _paced_producer(bootstrap: str, topic: str, payloads: list[bytes], rate: float) -> None:
    async def main() -> None:
        producer = make_producer(KafkaConfig(bootstrap_servers=bootstrap))
        await producer.start()
        try:
            await _produce(producer, topic, payloads, rate=rate)
        finally:
            await producer.stop()

    asyncio.run(main())


async def _raw_loop(cfg: KafkaConfig, source: str, sink: str, n: int, producer: AIOKafkaProducer) -> float:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=cfg.bootstrap_servers, group_id=f"{source}-raw",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=500)
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            if not batch:
                continue
            started = started or time.perf_counter()
            futures = [await producer.send(sink, r.value, key=r.key) for rs in batch.values() for r in rs]
            await asyncio.gather(*futures)
            await consumer.commit()
            seen += len(futures)
    finally:
        await consumer.stop()
    return time.perf_counter() - (started or time.perf_counter())


async def _wait_while_progressing(done: asyncio.Event, runner: asyncio.Task[None], seen: Callable[[], int], n: int,
                                  stall_s: float) -> None:
    """Wait for `done` as long as messages keep being processed: a loaded machine is slow, not stuck.
    Fails when the runner stops early (with its error) or nothing is processed for `stall_s`."""
    finished = asyncio.create_task(done.wait())
    last, since = seen(), time.monotonic()
    try:
        while not done.is_set():
            await asyncio.wait({finished, runner}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            if runner.done() and not done.is_set():
                runner.result()  # the runner's own error, if it failed
                raise RuntimeError(f"the pipeline stopped after {seen()} of {n} messages")
            if seen() != last:
                last, since = seen(), time.monotonic()
            elif time.monotonic() - since > stall_s:
                raise TimeoutError(f"no message processed for {stall_s:.0f} s ({seen()} of {n} done)")
    finally:
        finished.cancel()


async def _pipeline(settings: Settings, processor: Processor, producer: AIOKafkaProducer, n: int,
                    pace: tuple[list[bytes], float] | None = None, stall_s: float = 300.0) -> tuple[float, list[float]]:
    """Seconds to process n messages (extrapolated over the first batch, which includes the group
    join), and each message's latency from its producer timestamp to the offset commit."""
    done = asyncio.Event()
    seen = 0
    latencies: list[float] = []
    first: list[tuple[float, int]] = []  # when the first batch finished, and its size

    def on_batch(result: Any, records: list[Any]) -> None:
        nonlocal seen
        now = time.time()
        if not first:
            first.append((time.perf_counter(), len(records)))
        latencies.extend(now - r.timestamp / 1000 for r in records)
        seen += len(records)
        if seen >= n:
            done.set()

    runner = PipelineRunner(settings.kafka, processor, producer, on_batch=on_batch)
    task = asyncio.create_task(runner.run(done))
    pacer = None
    if pace:  # its own process, as a real producer would be: it must not share this one's GIL
        pacer = multiprocessing.get_context("spawn").Process(
            target=_paced_producer, args=(settings.kafka.bootstrap_servers, settings.kafka.topics.raw, *pace))
        pacer.start()
    try:
        await _wait_while_progressing(done, task, lambda: seen, n, stall_s)
    except BaseException:
        done.set()  # stop the runner, then report why the wait failed
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 60)
        raise
    finally:
        if pacer is not None:
            pacer.join(30)
    ended = time.perf_counter()
    await task
    if not first or seen <= first[0][1]:
        return 0.0, latencies
    return (ended - first[0][0]) * seen / (seen - first[0][1]), latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run_bench(settings: Settings, n: int, latency_rate: float | None = None) -> dict[str, Any]:
    run = f"bench{int(time.time())}{os.getpid()}"
    rng = random.Random(7)

    def topics(tag: str) -> KafkaConfig:
        t = TopicsConfig(raw=f"{run}.{tag}.raw", events=f"{run}.events", dead_letters=f"{run}.dlq")
        return settings.kafka.model_copy(update={"topics": t, "group_id": f"{run}-{tag}"})

    main, paced = topics("main"), topics("paced")
    for cfg in (main, paced):
        await ensure_topics(cfg)
    await ensure_topics(main.model_copy(update={"topics": TopicsConfig(raw=f"{run}.sink", events=f"{run}.events",
                                                                        dead_letters=f"{run}.dlq")}))
    upgrade(settings.store.url)
    engine = make_engine(settings.store.url)
    processor = Processor(settings, engine, stage_workers=settings.pipeline.stage_workers)
    producer = make_producer(main)
    await producer.start()
    try:
        payloads = [_envelope(i, run, rng) for i in range(n)]
        produce_s = await _produce(producer, main.topics.raw, payloads)
        raw_s = await _raw_loop(main, main.topics.raw, f"{run}.sink", n, producer)
        processor.stage_seconds.clear()
        pipe_s, _ = await _pipeline(settings.model_copy(update={"kafka": main}), processor, producer, n)
        stage_ms = {k: round(v * 1000 / n, 4) for k, v in processor.stage_seconds.items()}
        throughput = n / pipe_s if pipe_s else 0.0
        rate = latency_rate or max(1.0, throughput / 2)
        m = min(n, max(1000, int(rate * 10)))
        paced_payloads = [_envelope(n + i, run, rng) for i in range(m)]
        _, latencies = await _pipeline(settings.model_copy(update={"kafka": paced}), processor, producer, m,
                                       pace=(paced_payloads, rate))
    finally:
        await producer.stop()
        processor.close()
        engine.dispose()
    return {
        "messages": n,
        "throughput_msgs_per_s": round(throughput, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "latency_rate_msgs_per_s": round(rate, 1),
        "latency_messages": m,
        "raw_ceiling_msgs_per_s": round(n / raw_s, 1) if raw_s else None,
        "ratio_to_raw": round(throughput / (n / raw_s), 3) if raw_s else None,
        "produce_msgs_per_s": round(n / produce_s, 1),
        "stage_ms_per_message": stage_ms,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "stage_workers": settings.pipeline.stage_workers,
        "store": engine.url.get_backend_name(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
