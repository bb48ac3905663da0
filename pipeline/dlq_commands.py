"""`intake dlq list|reprocess` on the configured transport: the Kafka dead-letter topic, or the
embedded store's table. Reprocessing sends the original bytes through the pipeline again."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.config import Settings
from pipeline.deadletters import DeadLetter, SqlDeadLetterQueue
from pipeline.envelope import Envelope
from pipeline.store.database import make_engine, upgrade


def list_dead_letters(settings: Settings, limit: int) -> list[DeadLetter]:
    if settings.transport == "kafka":
        from pipeline.transport.kafka import KafkaDeadLetterQueue

        return asyncio.run(KafkaDeadLetterQueue(settings.kafka).read(limit=limit))
    upgrade(settings.store.url)
    return SqlDeadLetterQueue(make_engine(settings.store.url)).list(limit)


def reprocess(settings: Settings, ids: list[str]) -> dict[str, Any]:
    if settings.transport == "kafka":
        return asyncio.run(_reprocess_kafka(settings, ids))
    from pipeline.embedded import EmbeddedSink
    from pipeline.processor import Processor, RawRecord

    upgrade(settings.store.url)
    engine = make_engine(settings.store.url)
    queue = SqlDeadLetterQueue(engine)
    letters = queue.get(ids)
    sink = EmbeddedSink(Processor(settings, engine), queue)
    result = asyncio.run(sink.accept_records(
        [RawRecord(d.payload, f"dlq:{d.id}", d.attempts + 1) for d in letters]))
    queue.mark_reprocessed([d.id for d in letters])
    return {"found": len(letters), "missing": sorted(set(ids) - {d.id for d in letters}), "stored": result.stored,
            "duplicates": result.duplicates, "dead_again": len(result.dead_letters)}


def _partition_key(payload: bytes) -> bytes | None:
    """The customer's key, so a reprocessed message joins that customer's partition and order."""
    try:
        return Envelope.model_validate_json(payload).partition_key
    except ValueError:
        return None


async def _reprocess_kafka(settings: Settings, ids: list[str]) -> dict[str, Any]:
    from pipeline.transport.kafka import KafkaDeadLetterQueue, make_producer

    letters = await KafkaDeadLetterQueue(settings.kafka).read(set(ids))
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        futures = [await producer.send(settings.kafka.topics.raw, d.payload, key=_partition_key(d.payload),
                                       headers=[("attempts", str(d.attempts).encode()),
                                                ("reprocess_of", f"dlq/{d.id}".encode())])
                   for d in letters]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {"found": len(letters), "missing": sorted(set(ids) - {d.id for d in letters}),
            "republished": len(letters)}
