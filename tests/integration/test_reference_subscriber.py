"""The reference subscriber against real Kafka: a copied script keeps a SQLite mirror equal to the
store's tickets, replays from the beginning or an offset without changing it, resumes where it stopped."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import insert, select, update

from pipeline.envelope import utcnow
from pipeline.events import outbox_row, ticket_event
from pipeline.relay import ExactlyOnceKafkaTarget, OutboxRelay
from pipeline.store.schema import ticket_events, tickets
from tests.conftest import ROOT

pytestmark = [pytest.mark.kafka]
FIELDS = ("number", "status", "type", "urgency", "message_count")


def relay_all(engine, cfg) -> int:  # type: ignore[no-untyped-def]
    async def go() -> int:
        relay = OutboxRelay(engine, ExactlyOnceKafkaTarget(cfg))
        await relay.target.open()
        try:
            while await relay.relay_once():
                pass
        finally:
            await relay.target.close()
        return relay.published

    return asyncio.run(go())


def subscriber(script, cfg, db, *args: str) -> dict:  # type: ignore[no-untyped-def]
    done = subprocess.run([sys.executable, str(script), "--bootstrap", cfg.bootstrap_servers, "--topic",
                           cfg.topics.events, "--db", str(db), "--until-idle", "3", *args],
                          capture_output=True, text=True, timeout=120, cwd=script.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def mirror(db) -> list[tuple]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT {', '.join(FIELDS)} FROM tickets ORDER BY number").fetchall()


def store(engine) -> list[tuple]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*(tickets.c[f] for f in FIELDS)).order_by(tickets.c.number))]


def test_a_copied_subscriber_mirrors_tickets_and_replays_idempotently(processor, engine, record, kafka_cfg,
                                                                        tmp_path):
    from pipeline.transport.kafka import ensure_topics

    asyncio.run(ensure_topics(kafka_cfg))
    script = tmp_path / "reference_subscriber.py"  # as a downstream team would take it: the file alone
    shutil.copy(ROOT / "downstream" / "reference_subscriber.py", script)
    db = tmp_path / "mirror.sqlite"

    processor.process([record(f"My order {i} arrived broken", f"s{i % 6}") for i in range(30)])
    first = relay_all(engine, kafka_cfg)
    assert subscriber(script, kafka_cfg, db) == {"applied": first, "skipped": 0}
    assert mirror(db) == store(engine) and len(mirror(db)) == 6

    assert subscriber(script, kafka_cfg, db, "--from", "beginning") == {"applied": 0, "skipped": first}
    assert mirror(db) == store(engine)

    now = utcnow()  # a status change made outside the message path, then more messages
    with engine.begin() as conn:
        row = dict(conn.execute(select(tickets).order_by(tickets.c.id)).mappings().first())
        conn.execute(update(tickets).where(tickets.c.id == row["id"]).values(status="solved", updated_at=now))
        row |= {"status": "solved", "updated_at": now}
        event = ticket_event("ticket.status_changed", row, "test:solve", now, changes={"status": ["open", "solved"]})
        conn.execute(insert(ticket_events).values(outbox_row(event, row["id"], now)))
    processor.process([record(f"Still waiting for order {i}", f"s{i % 6}") for i in range(30, 36)])
    second = relay_all(engine, kafka_cfg)
    assert subscriber(script, kafka_cfg, db) == {"applied": second, "skipped": 0}  # from its stored position
    assert mirror(db) == store(engine)
    assert ("solved",) in {(r[1],) for r in mirror(db)}

    replay = subscriber(script, kafka_cfg, db, "--from", "end", "--offset", "0:0")  # one partition again
    assert replay["applied"] == 0 and replay["skipped"] > 0
    assert mirror(db) == store(engine)
