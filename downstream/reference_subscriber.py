"""A reference subscriber of Omnintake's ticket-event stream: copy this file, change `apply`, keep the rest.

It keeps a local SQLite mirror of tickets up to date from the topic `omnintake.tickets.events.v1`
(contract: docs/events.md). Needs only Python 3.11+ and `pip install aiokafka`.

- Reads with isolation_level=read_committed: the relay writes in Kafka transactions, so a batch a
  crashed relay aborted is never seen.
- No consumer group: it assigns every partition itself and stores its position in the mirror, in the
  same SQLite transaction as the changes that position covers. A crash loses nothing and repeats nothing.
- Idempotent by event id: an event already applied is skipped, so replaying from any offset is safe.
- Each event carries the ticket's full state after the change; events of one ticket share a partition
  (key = ticket number) and arrive in order, so the latest event of a ticket is its current state.

    python reference_subscriber.py --bootstrap 127.0.0.1:9092 --db tickets.sqlite       # stored position
    python reference_subscriber.py ... --from beginning | end | 2026-11-26T10:00:00+00:00 # replay / skip
    python reference_subscriber.py ... --offset 0:1200 --offset 3:15                      # per partition
    python reference_subscriber.py ... --until-idle 5                                     # exit when caught up
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

TOPIC = "omnintake.tickets.events.v1"
log = logging.getLogger("reference_subscriber")

MIRROR = """
CREATE TABLE IF NOT EXISTS tickets (
    number TEXT PRIMARY KEY, customer_id INTEGER, status TEXT, type TEXT, category TEXT, urgency TEXT,
    language TEXT, channel TEXT, subject TEXT, message_count INTEGER, repeat_count INTEGER,
    sla_due_at TEXT, created_at TEXT, updated_at TEXT, last_event_id TEXT, last_event_type TEXT);
CREATE TABLE IF NOT EXISTS messages (
    envelope_id TEXT PRIMARY KEY, ticket_number TEXT, channel TEXT, account TEXT, message_id TEXT,
    received_at TEXT, language TEXT, type TEXT, category TEXT, urgency TEXT);
CREATE TABLE IF NOT EXISTS applied_events (event_id TEXT PRIMARY KEY, partition INTEGER, "offset" INTEGER);
CREATE TABLE IF NOT EXISTS positions (topic TEXT, partition INTEGER, next_offset INTEGER,
    PRIMARY KEY (topic, partition));
"""
TICKET_FIELDS = ("number", "customer_id", "status", "type", "category", "urgency", "language", "channel", "subject",
                 "message_count", "repeat_count", "sla_due_at", "created_at", "updated_at")
MESSAGE_FIELDS = ("envelope_id", "channel", "account", "message_id", "received_at", "language", "type", "category",
                  "urgency")


@dataclass
class Stats:
    applied: int = 0
    skipped: int = 0  # already applied: a replay


def open_mirror(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(MIRROR)
    return db


def apply(db: sqlite3.Connection, event: dict[str, Any]) -> None:
    """Your part: what one event does to the mirror. Here: the ticket as the event says it is now,
    and the message it announces (created, message_appended)."""
    ticket = event["ticket"]
    values = [ticket[f] for f in TICKET_FIELDS] + [event["event_id"], event["type"]]
    db.execute(f"INSERT OR REPLACE INTO tickets VALUES ({', '.join('?' * len(values))})", values)
    if event.get("message"):
        message = event["message"]
        db.execute(f"INSERT OR IGNORE INTO messages VALUES ({', '.join('?' * (len(MESSAGE_FIELDS) + 1))})",
                   [message["envelope_id"], ticket["number"], *(message[f] for f in MESSAGE_FIELDS[1:])])


def apply_batch(db: sqlite3.Connection, topic: str, tp: TopicPartition, records: list[Any], stats: Stats) -> None:
    """One SQLite transaction: the events not seen before, and the position after the last record."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for record in records:
            event = json.loads(record.value)
            seen = db.execute("INSERT OR IGNORE INTO applied_events VALUES (?, ?, ?)",
                              (event["event_id"], tp.partition, record.offset)).rowcount == 0
            if seen:
                stats.skipped += 1
                continue
            apply(db, event)
            stats.applied += 1
        db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?, ?)", (topic, tp.partition, records[-1].offset + 1))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not described["partitions"]:
        raise SystemExit(f"topic {topic} does not exist")
    return sorted(TopicPartition(topic, p["partition"]) for p in described["partitions"])


async def seek_start(consumer: AIOKafkaConsumer, db: sqlite3.Connection, topic: str, parts: list[TopicPartition],
                     start: str | None, offsets: dict[int, int]) -> None:
    stored = dict(db.execute("SELECT partition, next_offset FROM positions WHERE topic = ?", (topic,)).fetchall())
    at_time: dict[TopicPartition, Any] = {}
    if start not in (None, "beginning", "end"):
        millis = int(datetime.fromisoformat(start).timestamp() * 1000)  # type: ignore[arg-type]
        at_time = await consumer.offsets_for_times({tp: millis for tp in parts})
    ends = await consumer.end_offsets(parts)
    for tp in parts:
        if tp.partition in offsets:
            consumer.seek(tp, offsets[tp.partition])
        elif start == "beginning" or (start is None and tp.partition not in stored):
            await consumer.seek_to_beginning(tp)
        elif start == "end":
            await consumer.seek_to_end(tp)
        elif start is not None:
            found = at_time.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])
        else:
            consumer.seek(tp, stored[tp.partition])


async def subscribe(bootstrap: str, db_path: str, topic: str = TOPIC, start: str | None = None,
                    offsets: dict[int, int] | None = None, until_idle_s: float | None = None,
                    stop: asyncio.Event | None = None) -> Stats:
    """Mirror the topic into `db_path` until `stop` is set (or nothing came for `until_idle_s`)."""
    stop = stop or asyncio.Event()
    db = open_mirror(db_path)
    stats = Stats()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = await partitions_of(bootstrap, topic)
        consumer.assign(parts)
        await seek_start(consumer, db, topic, parts, start, offsets or {})
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp, records in batch.items():
                if records:
                    apply_batch(db, topic, tp, records, stats)
            if any(batch.values()):
                idle_since = loop.time()
            elif until_idle_s is not None and loop.time() - idle_since >= until_idle_s:
                break
    finally:
        await consumer.stop()
        db.close()
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--db", default="tickets-mirror.sqlite", help="the SQLite mirror (created if missing)")
    parser.add_argument("--from", dest="start", default=None,
                        help="beginning, end or an ISO time; default: the stored position, else the beginning")
    parser.add_argument("--offset", action="append", default=[], metavar="PARTITION:OFFSET",
                        help="start this partition at this offset (repeatable; wins over --from)")
    parser.add_argument("--until-idle", type=float, default=None, metavar="SECONDS",
                        help="exit after this long without events")
    args = parser.parse_args(argv)
    offsets = {int(p): int(o) for p, o in (item.split(":", 1) for item in args.offset)}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def run() -> Stats:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await subscribe(args.bootstrap, args.db, args.topic, args.start, offsets, args.until_idle, stop)

    stats = asyncio.run(run())
    print(json.dumps({"applied": stats.applied, "skipped": stats.skipped}))


if __name__ == "__main__":
    main()
