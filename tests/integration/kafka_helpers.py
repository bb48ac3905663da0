"""Small helpers the integration tests share: produce raw bytes, read a topic, committed lag."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.config import KafkaConfig
from pipeline.transport.kafka import topic_partitions


async def read_all(cfg: KafkaConfig, topic: str, timeout_s: float = 10.0) -> list:
    parts = await topic_partitions(cfg, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            positions = {tp: await consumer.position(tp) for tp in parts}
            if all(positions[tp] >= ends[tp] for tp in parts):
                break
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def group_lag(cfg: KafkaConfig, topic: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = await topic_partitions(cfg, topic)
        ends = await consumer.end_offsets(parts)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


async def until(predicate, timeout_s: float = 60.0, interval_s: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    """Poll `predicate` until it holds or the time is up; returns whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(interval_s)
    return True
