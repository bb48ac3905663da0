"""The Sink connectors use in Kafka mode, against a real broker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from pipeline.envelope import Envelope, Sender
from pipeline.transport.kafka import KafkaPublisher, ensure_topics
from tests.integration.conftest import run
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.kafka


def _envelope(message_id: str, text: str) -> Envelope:
    return Envelope(channel="email", account="support@shop.example", message_id=message_id,
                    sender=Sender(kind="email", id="ann@example.com"), received_at=datetime.now(UTC), text=text)


def test_an_envelope_too_large_for_the_broker_is_dead_lettered_and_its_neighbours_published(kafka_cfg):
    async def scenario():
        await ensure_topics(kafka_cfg)
        publisher = KafkaPublisher(kafka_cfg)
        await publisher.start()
        try:
            await publisher.accept([_envelope("a", "first"), _envelope("huge", "x" * 3_000_000),
                                    _envelope("b", "last")])
        finally:
            await publisher.stop()
        return await read_all(kafka_cfg, kafka_cfg.topics.raw), await read_all(kafka_cfg, kafka_cfg.topics.dead_letters)

    raw, dead = run(scenario())
    assert sorted(json.loads(r.value)["message_id"] for r in raw) == ["a", "b"]
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["stage"] == "publish" and "too large for the broker" in headers["error"]
    assert headers["source"] == "email:support@shop.example:huge"
    assert b'"message_id":"huge"' in dead[0].value


def test_the_ticket_event_topic_keeps_its_history_for_replay(kafka_cfg):
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    async def retention(topic: str) -> str:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cfg.bootstrap_servers)
        await admin.start()
        try:
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        finally:
            await admin.close()
        [resource] = response.resources
        return {entry[0]: entry[1] for entry in resource[4]}["retention.ms"]

    async def scenario():
        await ensure_topics(kafka_cfg)
        return await retention(kafka_cfg.topics.events), await retention(kafka_cfg.topics.raw)

    events, raw = run(scenario())
    assert events == "-1" and raw != "-1"


def test_readiness_asks_the_broker_for_its_metadata(kafka_cfg):
    from pipeline.service import kafka_check
    from pipeline.transport.kafka import make_producer

    async def scenario():
        producer = make_producer(kafka_cfg)
        await producer.start()
        try:
            await asyncio.wait_for(kafka_check(producer)(), 5)
            return producer.client.cluster.brokers()
        finally:
            await producer.stop()

    assert run(scenario())  # the answer held the broker list
