"""The spine on real Kafka and PostgreSQL: publish, consume, store once, dead-letter, relay events."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from pipeline.envelope import Envelope, Sender
from pipeline.processor import Processor
from pipeline.relay import KafkaEventTarget, OutboxRelay
from pipeline.runner import PipelineRunner
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages, ticket_events, tickets
from pipeline.transport.kafka import KafkaPublisher, ensure_topics, make_producer
from tests.integration.conftest import run
from tests.integration.kafka_helpers import group_lag, read_all, until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def proxied_store(kafka_settings):
    """The test database behind a TCP proxy the test can cut: (proxy, engine through it, stored count)."""
    from sqlalchemy.engine import make_url

    from tests.integration.tcp_proxy import TcpProxy

    url = make_url(kafka_settings.store.url)
    upgrade(kafka_settings.store.url)
    direct = make_engine(kafka_settings.store.url)
    proxy = TcpProxy((url.host, url.port or 5432)).start()
    through_proxy = make_engine(url.set(port=proxy.port).render_as_string(hide_password=False))

    def stored() -> int:
        with direct.connect() as conn:
            return conn.execute(select(func.count()).select_from(messages)).scalar()

    yield proxy, through_proxy, stored
    proxy.cut()
    direct.dispose()
    through_proxy.dispose()


def envelope(i: int, customer: int, text: str | None = None) -> Envelope:
    return Envelope(channel="chat", account="telegram:@shop", message_id=f"m{i}", conversation_id=f"c{customer}",
                    sender=Sender(kind="telegram_user", id=str(customer)), received_at=datetime.now(UTC),
                    text=text or f"My order {i} arrived broken, please refund")


async def process_until(settings, engine, expected: int, timeout: float = 60.0) -> Processor:
    processor = Processor(settings, engine, stage_workers=1)  # the stages in a worker process, as in production
    producer = make_producer(settings.kafka)
    await producer.start()
    stop = asyncio.Event()
    seen = 0

    def on_batch(result, records):
        nonlocal seen
        seen += len(records)
        if seen >= expected:
            stop.set()

    try:
        runner = PipelineRunner(settings.kafka, processor, producer, on_batch=on_batch)
        await asyncio.wait_for(runner.run(stop), timeout)
    finally:
        await producer.stop()
        processor.close()
    return processor


def test_messages_flow_to_tickets_once_with_dead_letters_and_events(kafka_settings):
    cfg = kafka_settings.kafka
    upgrade(kafka_settings.store.url)
    engine = make_engine(kafka_settings.store.url)

    async def scenario():
        await ensure_topics(cfg)
        publisher = KafkaPublisher(cfg)
        await publisher.start()
        try:
            envs = [envelope(i, i % 40) for i in range(300)]
            await publisher.accept(envs)
            await publisher.accept(envs[:25])  # a connector re-sending after a crash
            for bad in (b"{not json", json.dumps({"version": 7}).encode()):
                await publisher.producer.send_and_wait(cfg.topics.raw, bad, key=b"bad")
        finally:
            await publisher.stop()
        await process_until(kafka_settings, engine, 327)
        relay_producer = make_producer(cfg)
        await relay_producer.start()
        try:
            relay = OutboxRelay(engine, KafkaEventTarget(relay_producer, cfg.topics.events))
            while await relay.relay_once():
                pass
        finally:
            await relay_producer.stop()
        return (await read_all(cfg, cfg.topics.dead_letters), await read_all(cfg, cfg.topics.events),
                await group_lag(cfg, cfg.topics.raw, cfg.group_id))

    dead, events, lag = run(scenario())
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 300
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 40
        counts = conn.execute(select(tickets.c.message_count)).scalars().all()
        db_events = conn.execute(select(func.count()).select_from(ticket_events)).scalar()
    assert sum(counts) == 300
    assert lag == 0
    assert len(dead) == 2
    headers = [dict(d.headers) for d in dead]
    assert {h["stage"] for h in headers} == {b"validate"}
    assert any(b"version" in h["error"] for h in headers)
    assert len(events) == db_events and len({e.value for e in events}) == db_events
    by_ticket: dict[bytes, list[str]] = {}
    for e in sorted(events, key=lambda r: (r.partition, r.offset)):
        by_ticket.setdefault(e.key, []).append(json.loads(e.value)["type"])
    assert len(by_ticket) == 40
    assert all(types[0] == "ticket.created" for types in by_ticket.values())
    engine.dispose()


def test_concurrent_writers_store_each_message_once(pg_url):
    """Two processors racing on the same batch (a rebalance overlap) leave one copy of everything."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.config import Settings, StoreConfig
    from pipeline.processor import RawRecord

    upgrade(pg_url)
    settings = Settings(store=StoreConfig(url=pg_url))
    engines = [make_engine(pg_url), make_engine(pg_url)]
    processors = [Processor(settings, e) for e in engines]
    records = [RawRecord(envelope(i, i % 15).model_dump_json().encode(), f"r/{i}") for i in range(400)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: p.process(records), processors))
    assert sum(r.stored for r in results) == 400
    assert not any(r.dead_letters for r in results)
    with engines[0].connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 400
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 15
        assert sum(conn.execute(select(tickets.c.message_count)).scalars()) == 400
    for e in engines:
        e.dispose()


def test_database_outage_holds_offsets_and_recovers_on_its_own(kafka_settings, proxied_store):
    cfg = kafka_settings.kafka
    proxy, through_proxy, stored = proxied_store

    async def scenario() -> tuple[int, int, int]:
        await ensure_topics(cfg)
        publisher = KafkaPublisher(cfg)
        await publisher.start()
        processor = Processor(kafka_settings, through_proxy)
        producer = make_producer(cfg)
        await producer.start()
        stop = asyncio.Event()
        runner = asyncio.create_task(PipelineRunner(cfg, processor, producer).run(stop))
        try:
            await publisher.accept([envelope(i, i % 10) for i in range(100)])
            await until(lambda: stored() >= 100)
            proxy.cut()
            await publisher.accept([envelope(i, i % 10) for i in range(100, 300)])
            await asyncio.sleep(4)
            during = stored(), await group_lag(cfg, cfg.topics.raw, cfg.group_id)
            proxy.start()
            await until(lambda: stored() == 300)
            stop.set()
            await runner
            return *during, await group_lag(cfg, cfg.topics.raw, cfg.group_id)
        finally:
            stop.set()
            await publisher.stop()
            await producer.stop()

    stored_during, lag_during, lag_after = run(scenario())
    assert stored_during == 100 and lag_during == 200, "nothing may be committed while the database is away"
    assert stored() == 300 and lag_after == 0


def test_dead_letters_listed_and_reprocessed_through_the_cli(kafka_settings, tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    cfg = kafka_settings.kafka
    upgrade(kafka_settings.store.url)
    engine = make_engine(kafka_settings.store.url)
    good = envelope(1, 1, "Where is my parcel?")
    bad = json.loads(good.model_dump_json()) | {"message_id": "m-fixed", "surprise": "field"}

    async def publish() -> None:
        await ensure_topics(cfg)
        producer = make_producer(cfg)
        await producer.start()
        try:
            await producer.send_and_wait(cfg.topics.raw, json.dumps(bad).encode(), key=b"k")
        finally:
            await producer.stop()

    run(publish())
    run(process_until(kafka_settings, engine, 1))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(kafka_settings.model_dump(mode="json")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}

    def intake(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *args, "--config", str(config)],
                              capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    [listed] = [json.loads(x) for x in intake("dlq", "list", "--json").splitlines()]
    assert listed["stage"] == "validate" and "surprise" in listed["error"] and listed["attempts"] == 1
    outcome = json.loads(intake("dlq", "reprocess", listed["id"]))
    assert outcome == {"found": 1, "missing": [], "republished": 1}
    run(process_until(kafka_settings, engine, 1))  # still invalid: it comes back with attempts counted
    letters = [json.loads(x) for x in intake("dlq", "list", "--json").splitlines()]
    assert sorted(d["attempts"] for d in letters) == [1, 2]
    engine.dispose()


def test_same_text_again_joins_the_ticket_on_postgres(pg_url):
    from pipeline.config import Settings, StoreConfig
    from pipeline.processor import RawRecord

    upgrade(pg_url)
    engine = make_engine(pg_url)
    processor = Processor(Settings(store=StoreConfig(url=pg_url)), engine)
    first = [RawRecord(envelope(i, i, f"Parcel {i} is missing").model_dump_json().encode(), f"a/{i}")
             for i in range(50)]
    again = [RawRecord(envelope(100 + i, i, f"Parcel {i} is missing").model_dump_json().encode(), f"b/{i}")
             for i in range(50)]
    processor.process(first)
    result = processor.process(again)
    assert (result.stored, result.tickets_created) == (50, 0)
    with engine.connect() as conn:
        outcomes = conn.execute(select(messages.c.dedup_outcome, func.count()).group_by(messages.c.dedup_outcome)).all()
        repeats = conn.execute(select(func.sum(tickets.c.repeat_count))).scalar()
    assert dict(outcomes) == {"new": 50, "content_duplicate": 50}
    assert repeats == 50
    engine.dispose()


def test_stopping_during_an_outage_commits_nothing_past_what_was_stored(kafka_settings, proxied_store):
    """SIGTERM while the database is away, the database back a moment later: a restarted runner
    must still find every message that was not stored (no offset committed past it)."""
    cfg = kafka_settings.kafka.model_copy(update={"batch_max_records": 50})
    proxy, through_proxy, stored = proxied_store

    async def runner_until(stop: asyncio.Event) -> None:
        processor = Processor(kafka_settings, through_proxy)
        producer = make_producer(cfg)
        await producer.start()
        try:
            await PipelineRunner(cfg, processor, producer).run(stop)
        finally:
            await producer.stop()

    async def scenario() -> None:
        await ensure_topics(cfg)
        publisher = KafkaPublisher(cfg)
        await publisher.start()
        try:
            proxy.cut()
            stop = asyncio.Event()
            first = asyncio.create_task(runner_until(stop))
            await publisher.accept([envelope(i, i % 7) for i in range(300)])
            await asyncio.sleep(3)  # batches fetched and prepared, the first one failing to store
            stop.set()
            proxy.start()
            await first
            second_stop = asyncio.Event()
            second = asyncio.create_task(runner_until(second_stop))
            await until(lambda: stored() == 300)
            second_stop.set()
            await second
        finally:
            await publisher.stop()

    run(scenario())
    assert stored() == 300
    assert run(group_lag(cfg, cfg.topics.raw, cfg.group_id)) == 0


def test_concurrent_writers_for_the_same_customers_lose_no_update(pg_url):
    """Different messages of the same customers stored at once (a rebalance overlap, a reprocess):
    every message counts on its ticket."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.config import Settings, StoreConfig
    from pipeline.processor import RawRecord

    upgrade(pg_url)
    settings = Settings(store=StoreConfig(url=pg_url))
    engines = [make_engine(pg_url), make_engine(pg_url)]
    processors = [Processor(settings, e) for e in engines]
    processors[0].process([RawRecord(envelope(i, i).model_dump_json().encode(), f"o/{i}") for i in range(10)])
    rounds = 4
    for r in range(rounds):  # the race is timing-dependent: give it several chances
        halves = [[RawRecord(envelope(10_000 * r + 1000 * (h + 1) + i, i % 10).model_dump_json().encode(),
                             f"{r}/{h}/{i}") for i in range(300)] for h in range(2)]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda pair: pair[0].process(pair[1]), zip(processors, halves, strict=True)))
        assert sum(r.stored for r in results) == 600 and not any(r.dead_letters for r in results)
    with engines[0].connect() as conn:
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 10
        assert sum(conn.execute(select(tickets.c.message_count)).scalars()) == 10 + 600 * rounds
    for e in engines:
        e.dispose()


def test_postgres_takes_what_sqlite_takes(pg_url):
    """Long names, regional language tags and NUL characters: stored, not dead-lettered."""
    from pipeline.config import Settings, StoreConfig
    from pipeline.processor import RawRecord

    upgrade(pg_url)
    engine = make_engine(pg_url)
    processor = Processor(Settings(store=StoreConfig(url=pg_url)), engine)
    odd = json.loads(envelope(1, 1, "Order\u0000 42 never came").model_dump_json())
    odd |= {"language_hint": "zh-Hant-TW", "subject": "Re:\u0000 order",
            "sender": {"kind": "telegram_user", "id": "7", "name": "N" * 500}}
    result = processor.process([RawRecord(json.dumps(odd).encode(), "odd/1")])
    assert (result.stored, result.dead_letters) == (1, [])
    engine.dispose()


def test_a_duplicate_in_bulk_insert_is_a_conflict_not_an_outage(pg_url):
    from sqlalchemy import text

    from pipeline.errors import is_conflict, is_unavailable
    from pipeline.store.schema import customers
    from pipeline.store.tickets import bulk_insert

    upgrade(pg_url)
    engine = make_engine(pg_url)
    row = {"id": 1, "display_name": "x", "vip": False, "created_at": datetime.now(UTC)}
    with engine.begin() as conn:
        bulk_insert(conn, customers, [row])
    with pytest.raises(Exception) as info, engine.begin() as conn:
        bulk_insert(conn, customers, [row])
    assert is_conflict(info.value) and not is_unavailable(info.value)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM customers")).scalar() == 1
    engine.dispose()
