"""Kafka plumbing with aiokafka: topics, the idempotent publisher connectors hand envelopes to,
and the dead-letter topic. The consumer loop lives in `pipeline.runner`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError, for_code

from pipeline.config import KafkaConfig
from pipeline.deadletters import DeadLetter
from pipeline.envelope import Envelope

log = logging.getLogger(__name__)
_KEEP_BYTES = 256 * 1024


async def ensure_topics(cfg: KafkaConfig) -> None:
    """Create the raw, ticket-event and dead-letter topics if missing, with configured partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        # ticket events are kept forever: any subscriber may replay the whole history from offset 0
        wanted = {cfg.topics.raw: {}, cfg.topics.events: {"retention.ms": "-1"}, cfg.topics.dead_letters: {}}
        missing = [NewTopic(t, cfg.partitions, cfg.replication_factor, topic_configs=configs)
                   for t, configs in wanted.items() if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(missing)
        for name, code, *rest in response.topic_errors:
            if code and for_code(code) is not TopicAlreadyExistsError:
                raise for_code(code)(f"creating topic {name}: {rest[-1] if rest else ''}")
        log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()


async def topic_partitions(cfg: KafkaConfig, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted((TopicPartition(topic, p["partition"]) for p in described["partitions"]), key=lambda tp: tp.partition)


def make_producer(cfg: KafkaConfig) -> AIOKafkaProducer:
    # aiokafka retries sends itself; the idempotent producer keeps those retries from duplicating.
    return AIOKafkaProducer(bootstrap_servers=cfg.bootstrap_servers, enable_idempotence=True, acks="all",
                            linger_ms=5, max_batch_size=262144, compression_type=None)


class KafkaPublisher:
    """The Sink connectors use in Kafka mode: `accept` returns once every envelope is acknowledged.
    An envelope too large for the broker goes to the dead-letter topic with the reason (kept
    truncated), so one huge message neither blocks its channel nor takes its neighbours with it."""

    def __init__(self, cfg: KafkaConfig, producer: AIOKafkaProducer | None = None) -> None:
        self.topic = cfg.topics.raw
        self.producer = producer or make_producer(cfg)
        self.dead_letters = KafkaDeadLetterQueue(cfg)
        self._owns = producer is None

    async def start(self) -> None:
        if self._owns:
            await self.producer.start()

    async def stop(self) -> None:
        if self._owns:
            await self.producer.stop()

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        futures, too_large = [], []
        for e in envelopes:
            payload = e.model_dump_json().encode()
            try:
                futures.append(await self.producer.send(self.topic, payload, key=e.partition_key))
            except MessageSizeTooLargeError as exc:
                too_large.append(DeadLetter(payload, "publish", f"{len(payload)} bytes: too large for the broker "
                                            f"({exc})", "MessageSizeTooLargeError", 1, e.delivery_key))
        await asyncio.gather(*futures)
        if too_large:
            log.warning("%d envelopes too large for the broker went to the dead-letter topic", len(too_large))
            await self.dead_letters.put(self.producer, too_large)


class KafkaDeadLetterQueue:
    """Dead letters on their topic; an entry's id is `partition:offset`."""

    def __init__(self, cfg: KafkaConfig) -> None:
        self.cfg = cfg
        self.topic = cfg.topics.dead_letters

    async def put(self, producer: AIOKafkaProducer, letters: Sequence[DeadLetter]) -> int:
        """Publish and wait for the acks; a payload too large for the broker is kept truncated."""
        futures = []
        for d in letters:
            try:
                futures.append(await producer.send(self.topic, d.payload, headers=d.headers()))
            except MessageSizeTooLargeError:
                headers = [*d.headers(), ("truncated_from", str(len(d.payload)).encode())]
                futures.append(await producer.send(self.topic, d.payload[:_KEEP_BYTES], headers=headers))
        await asyncio.gather(*futures)
        return len(futures)

    async def read(self, wanted: set[str] | None = None, limit: int = 1000) -> list[DeadLetter]:
        parts = await topic_partitions(self.cfg, self.topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.cfg.bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out: list[DeadLetter] = []
            remaining = {tp for tp in parts if ends[tp] > 0}
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                if not batch:
                    break
                for tp, records in batch.items():
                    for r in records:
                        ident = f"{tp.partition}:{r.offset}"
                        if wanted is None or ident in wanted:
                            created = datetime.fromtimestamp(r.timestamp / 1000, UTC)
                            out.append(DeadLetter.from_headers(r.value or b"", list(r.headers), ident, created))
                        if r.offset + 1 >= ends[tp]:
                            remaining.discard(tp)
            out.sort(key=lambda d: (d.created_at or datetime.min.replace(tzinfo=UTC)), reverse=True)
            return out[:limit] if wanted is None else out
        finally:
            await consumer.stop()
