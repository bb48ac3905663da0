"""The Kafka pipeline runner: consume a batch, process it, make dead letters durable, commit.

Offsets are committed only after the batch's ticket transaction has committed and its dead
letters are acknowledged. A rebalance waits for the batch in flight to finish and commit, so the
next owner of a partition starts where this one stopped. On stop (SIGTERM) the loop stops
fetching, finishes the batch in hand within the drain timeout, commits, and leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from pipeline import metrics
from pipeline.config import KafkaConfig
from pipeline.errors import RetriableError
from pipeline.processor import BatchResult, Prepared, Processor, RawRecord
from pipeline.transport.kafka import KafkaDeadLetterQueue

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF_S = 30.0


def record_source(record: ConsumerRecord) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def attempts_of(record: ConsumerRecord) -> int:
    for key, value in record.headers or ():
        if key == "attempts":
            try:
                return int(value) + 1
            except ValueError:
                break
    return 1


class _WaitForBatch(ConsumerRebalanceListener):
    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.lock:  # the batch in flight commits before the partitions move on
            log.info("partitions revoked: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))


class PipelineRunner:
    name = "pipeline"

    def __init__(self, cfg: KafkaConfig, processor: Processor, producer: AIOKafkaProducer,
                 on_batch: Callable[[BatchResult, list[ConsumerRecord]], None] | None = None,
                 consumer: AIOKafkaConsumer | None = None) -> None:
        self.cfg = cfg
        self.processor = processor
        self.producer = producer
        self.dead_letters = KafkaDeadLetterQueue(cfg)
        self.on_batch = on_batch
        self._lock = asyncio.Lock()
        self._stage_clock = metrics.StageClock()
        self.consumer = consumer or AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers, group_id=cfg.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=cfg.batch_max_records,
            session_timeout_ms=cfg.session_timeout_ms, heartbeat_interval_ms=min(3000, cfg.session_timeout_ms // 3),
            max_poll_interval_ms=300000)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and prepare batch N+1 while batch N is being stored: the database's waits overlap
        the CPU stages. Store, dead letters and commit stay strictly in batch order, and nothing
        after a batch that could not be stored is stored or committed."""
        self.consumer.subscribe([self.cfg.topics.raw], listener=_WaitForBatch(self._lock))
        await self.consumer.start()
        storing: asyncio.Task[bool] | None = None
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=self.cfg.fetch_timeout_ms,
                                                    max_records=self.cfg.batch_max_records)
                if not batch:
                    continue
                consumed = [r for rs in batch.values() for r in rs]
                records = [RawRecord(r.value or b"", record_source(r), attempts_of(r)) for r in consumed]
                started = time.perf_counter()
                prepared = await asyncio.to_thread(self.processor.prepare, records)
                metrics.STEP_SECONDS.labels("prepare").observe(time.perf_counter() - started)
                metrics.count_step("prepare", prepared.items)
                self._stage_clock.publish(self.processor.stage_seconds)
                if storing is not None and not await storing:
                    break  # that batch was not stored: committing a later one would skip it
                storing = asyncio.create_task(self._store_and_commit(consumed, prepared, stop))
            if storing is not None:
                await asyncio.wait_for(asyncio.shield(storing), self.cfg.drain_timeout_s)
        except TimeoutError:
            log.warning("batch did not finish within the drain timeout; it will be redelivered")
        finally:
            if storing is not None and not storing.done():
                storing.cancel()
            await self.consumer.stop()

    async def _store_and_commit(self, consumed: list[ConsumerRecord], prepared: Prepared,
                                stop: asyncio.Event) -> bool:
        """True once the batch is stored (and its offsets committed, or left for redelivery)."""
        async with self._lock:  # a rebalance waits for this batch to be stored and committed
            started = time.perf_counter()
            prepared, consumed = self._still_assigned(prepared, consumed)
            if not consumed:
                return True
            result = await self._until_done(lambda: asyncio.to_thread(self.processor.store, prepared),
                                            "storing the batch", stop)
            if result is None:
                return False  # stopping while the database is down: nothing committed, all redelivered
            metrics.STEP_SECONDS.labels("store").observe(time.perf_counter() - started)
            metrics.count_stored(prepared.items, result.stored, result.duplicates, result.tickets_created)
            if result.dead_letters:
                put = await self._until_done(lambda: self.dead_letters.put(self.producer, result.dead_letters),
                                             "writing dead letters", stop)
                if put is None:
                    return False
            offsets: dict[TopicPartition, int] = {}
            for r in consumed:
                offsets[TopicPartition(r.topic, r.partition)] = r.offset + 1
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError) as exc:
                log.warning("offset commit failed (%s); the batch will be redelivered and skipped as stored", exc)
            metrics.count_dead(result.dead_letters)
            self._observe_lag(offsets)
            if self.on_batch:
                self.on_batch(result, consumed)
            log.debug("batch of %d in %.1f ms: %d stored, %d duplicates, %d dead", len(consumed),
                      (time.perf_counter() - started) * 1000, result.stored, result.duplicates,
                      len(result.dead_letters))
            return True

    def _observe_lag(self, committed: dict[TopicPartition, int]) -> None:
        assigned = self.consumer.assignment()
        for tp, offset in committed.items():
            if tp not in assigned:  # revoked by a rebalance since the batch was fetched: no highwater to ask
                continue
            end = self.consumer.highwater(tp)
            if end is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - offset))

    def _still_assigned(self, prepared: Prepared, consumed: list[ConsumerRecord]
                        ) -> tuple[Prepared, list[ConsumerRecord]]:
        """Drop records of partitions a rebalance took away while the batch was being prepared:
        their new owner processes them from the last commit."""
        assigned = self.consumer.assignment()
        if all(TopicPartition(r.topic, r.partition) in assigned for r in consumed):
            return prepared, consumed
        keep = {i for i, r in enumerate(consumed) if TopicPartition(r.topic, r.partition) in assigned}
        sources = {record_source(consumed[i]) for i in keep}
        log.info("rebalance: dropping %d prepared records of revoked partitions", len(consumed) - len(keep))
        items = [item for item in prepared.items if item.index in keep]
        dead = [d for d in prepared.result.dead_letters if d.source in sources]
        kept_keys = {item.envelope.delivery_key for item in items}
        disagreements = [d for d in prepared.disagreements if d.delivery_key in kept_keys]
        return Prepared(items, BatchResult(dead_letters=dead), disagreements), [consumed[i] for i in sorted(keep)]

    async def _until_done(self, attempt: Callable[[], Awaitable[T]], what: str, stop: asyncio.Event) -> T | None:
        """Retry `attempt` with backoff while its service is unavailable; None when stopped first."""
        backoff = 0.5
        while True:
            try:
                return await attempt()
            except (RetriableError, KafkaError) as exc:
                log.error("%s failed (%s); retrying in %.1f s (offsets stay where they are)", what, exc, backoff)
            if stop.is_set():
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
