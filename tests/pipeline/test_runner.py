"""The runner's ordering rules with a fake consumer and processor (the real broker is in
tests/integration): nothing is committed past a batch that was not stored."""

import asyncio

from aiokafka import ConsumerRecord, TopicPartition

from pipeline.config import KafkaConfig
from pipeline.errors import RetriableError
from pipeline.processor import BatchResult, Prepared
from pipeline.runner import PipelineRunner

TP = TopicPartition("raw", 0)


def records(first: int, count: int) -> list[ConsumerRecord]:
    return [ConsumerRecord("raw", 0, first + i, 0, 0, None, b"{}", None, 0, 2, []) for i in range(count)]


class FakeConsumer:
    def __init__(self, batches: list[list[ConsumerRecord]]) -> None:
        self.batches = batches
        self.commits: list[dict[TopicPartition, int]] = []

    def subscribe(self, topics, listener):
        self.listener = listener

    async def start(self):
        pass

    async def stop(self):
        pass

    def assignment(self):
        return {TP}

    def highwater(self, tp):
        return sum(len(batch) for batch in self.batches)

    async def getmany(self, timeout_ms, max_records):
        if self.batches:
            return {TP: self.batches.pop(0)}
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets):
        self.commits.append(dict(offsets))


class FlakyStore:
    """The first batch never stores (database down); later ones store at once."""

    def __init__(self) -> None:
        self.prepared: list[Prepared] = []
        self.stored: list[Prepared] = []
        self.stage_seconds: dict[str, float] = {}  # as the Processor it stands in for

    def prepare(self, raw):
        prepared = Prepared([], BatchResult())
        self.prepared.append(prepared)
        return prepared

    def store(self, prepared):
        if prepared is self.prepared[0]:
            raise RetriableError("database unavailable")
        self.stored.append(prepared)
        return BatchResult()


def test_a_batch_that_never_stored_blocks_every_later_commit():
    async def scenario():
        consumer = FakeConsumer([records(0, 3), records(3, 3)])
        store = FlakyStore()
        runner = PipelineRunner(KafkaConfig(fetch_timeout_ms=50, drain_timeout_s=5), store, producer=None,
                                consumer=consumer)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        await asyncio.sleep(1.0)  # both batches fetched and prepared; the first keeps failing
        stop.set()
        await asyncio.wait_for(task, 10)
        return consumer.commits, store.stored

    commits, stored = asyncio.run(scenario())
    assert commits == []
    assert stored == []


def test_stored_batches_commit_in_order():
    async def scenario():
        consumer = FakeConsumer([records(0, 3), records(3, 2), records(5, 4)])
        store = FlakyStore()
        store.prepared.append(Prepared([], BatchResult()))  # nothing fails: the flaky one is never used
        runner = PipelineRunner(KafkaConfig(fetch_timeout_ms=50), store, producer=None, consumer=consumer)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        while len(consumer.commits) < 3:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
        return consumer.commits

    assert asyncio.run(scenario()) == [{TP: 3}, {TP: 5}, {TP: 9}]


def test_lag_is_not_asked_of_a_partition_a_rebalance_took_away():
    class StrictConsumer(FakeConsumer):
        def highwater(self, tp):
            assert tp in self.assignment(), "Partition is not assigned"  # as aiokafka's own check
            return 10

    runner = PipelineRunner(KafkaConfig(), None, producer=None, consumer=StrictConsumer([]))
    revoked = TopicPartition(TP.topic, TP.partition + 1)
    runner._observe_lag({TP: 4, revoked: 7})  # must not raise for the revoked one
