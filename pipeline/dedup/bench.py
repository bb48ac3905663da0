"""Near-duplicate lookup benchmark: `intake dedup bench --messages 1000000`.

Fills a database (a temporary SQLite file, or a new PostgreSQL database beside the one given; kept
and reused with `--keep`) with N stored sketches and their band keys (customers with 5 messages
each, spread over 30 days), then times the two lookups the store makes (`pipeline.dedup.lookup`),
each followed by the comparisons in Python: the customer's sketches within the window, and the
band-key probe for other customers' near duplicates (candidates fetched with their sketches).

A probe is a stored message looked up again at its own time: the window is the 24 h before it, and
its 16 band keys find at least itself (the worst case: a customer repeating a text word for word).
Sketches and keys are random: only their number and spread matter to the index; 1% of messages
repeat another's band keys, so probes also find other customers' candidates.

"single": one query per lookup per message, as the store does when a batch holds one message;
per-message percentiles. "single_near": the same two lookups as one statement (`near_lookup`: one
round trip on PostgreSQL). "batch": the same lookups for `batch` messages at once, as the store
does under load; time per message over each batch, percentiles over the batches ("batch..._near":
as one statement).
"""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.dedup.lookup import band_candidates, near_lookup, recent_sketches
from pipeline.dedup.sketch import BANDS, Sketch, compare
from pipeline.store.database import make_engine, upgrade

PER_CUSTOMER = 5
_NOW = datetime(2026, 11, 20, tzinfo=UTC)
_SPAN = timedelta(days=30)
_WINDOW = timedelta(hours=24)


def _data(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = rng.integers(-(2**63), 2**63 - 1, size=(n, BANDS), dtype=np.int64)
    copies = rng.choice(n, n // 100, replace=False)
    keys[copies] = keys[rng.choice(n, len(copies))]
    return {"customer": np.arange(n) // PER_CUSTOMER + 1,
            "offset": rng.integers(0, int(_SPAN.total_seconds() * 1e6), n),
            "size": rng.integers(8, 60, n), "keys": keys, "hash_seed": rng.integers(0, 2**32, n)}


def _sketch_bytes(size: int, seed: int) -> bytes:
    hashes = np.unique(np.random.default_rng(seed).integers(0, 2**32, size, dtype=np.uint32))
    return Sketch(len(hashes), frozenset(), hashes).to_bytes()


def _times(data: dict[str, np.ndarray]) -> list[datetime]:
    base = _NOW - _SPAN
    return [base + timedelta(microseconds=int(o)) for o in data["offset"]]


def _sketch_rows(data: dict[str, np.ndarray], when: list[datetime], start: int, stop: int) -> list[tuple]:
    return [(i + 1, int(data["customer"][i]), None, when[i],
             _sketch_bytes(int(data["size"][i]), int(data["hash_seed"][i]))) for i in range(start, stop)]


def _band_order(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Band rows sorted by key, so the primary key is built by appending rather than by random inserts."""
    keys = data["keys"].ravel()
    order = np.argsort(keys, kind="stable")
    return keys[order], order // BANDS


def _fill_sqlite(path: str, data: dict[str, np.ndarray], n: int) -> None:
    db = sqlite3.connect(path)  # foreign keys off (sqlite3's default): no messages rows are made
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    when = _times(data)
    text_when = [w.strftime("%Y-%m-%d %H:%M:%S.%f") for w in when]
    for start in range(0, n, 100_000):
        rows = _sketch_rows(data, when, start, min(n, start + 100_000))
        db.executemany("INSERT INTO dedup_sketches VALUES (?, ?, ?, ?, ?)",
                       [(m, c, t, text_when[m - 1], s) for m, c, t, _, s in rows])
    keys, message = _band_order(data)
    customer = data["customer"]
    for start in range(0, len(keys), 1_000_000):
        db.executemany("INSERT OR IGNORE INTO dedup_bands VALUES (?, ?, ?, ?)",
                       [(int(k), text_when[m], int(m) + 1, int(customer[m]))
                        for k, m in zip(keys[start:start + 1_000_000], message[start:start + 1_000_000], strict=True)])
    db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()


def _fill_postgres(url: str, data: dict[str, np.ndarray], n: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE dedup_sketches DROP CONSTRAINT fk_dedup_sketches_message_id_messages"))
    raw: Any = engine.raw_connection()
    when = _times(data)
    try:
        cur = raw.cursor()
        for start in range(0, n, 100_000):
            with cur.copy("COPY dedup_sketches (message_id, customer_id, ticket_id, received_at, sketch) "
                          "FROM STDIN") as copy:
                for row in _sketch_rows(data, when, start, min(n, start + 100_000)):
                    copy.write_row(row)
        keys, message = _band_order(data)
        customer = data["customer"]
        with cur.copy("COPY dedup_bands (band_key, received_at, message_id, customer_id) FROM STDIN") as copy:
            for k, m in zip(keys.tolist(), message.tolist(), strict=True):
                copy.write_row((k, when[m], m + 1, int(customer[m])))
        raw.commit()
        raw.driver_connection.autocommit = True
        cur.execute("VACUUM ANALYZE dedup_sketches")
        cur.execute("VACUUM ANALYZE dedup_bands")
    finally:
        raw.close()
        engine.dispose()


def _percentiles(values: list[float], prefix: str) -> dict[str, float]:
    ordered = sorted(values)
    at = {q: ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000 for q in (50, 95, 99)}
    return {f"{prefix}_p{q}_ms": round(v, 4) for q, v in at.items()}


class _Lookups:
    """The two lookups and their comparisons, timed; `mine` stands in for the new message's sketch."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.mine = Sketch.from_bytes(_sketch_bytes(30, 1))
        self.compared = self.candidates = 0

    def customers(self, customer_ids: list[int], since: datetime) -> None:
        for row in recent_sketches(self.conn, customer_ids, since):
            compare(self.mine, Sketch.from_bytes(row.sketch))
            self.compared += 1

    def bands(self, keys: list[int], since: datetime, limit: int, other_than: int = -1) -> None:
        seen: set[int] = set()
        for hit in band_candidates(self.conn, keys, since, limit, other_than):
            if hit.message_id not in seen:
                seen.add(hit.message_id)
                compare(self.mine, Sketch.from_bytes(hit.sketch))
        self.candidates += len(seen)

    def both(self, customer_ids: list[int], keys: list[int], since: datetime, limit: int,
             other_than: int = -1) -> None:
        """The two lookups as one statement, then the same comparisons."""
        found = near_lookup(self.conn, customer_ids, since, keys, since, limit, other_than)
        for row in found.recent:
            compare(self.mine, Sketch.from_bytes(row.sketch))
            self.compared += 1
        seen: set[int] = set()
        for hit in found.bands:
            if hit.message_id not in seen:
                seen.add(hit.message_id)
                compare(self.mine, Sketch.from_bytes(hit.sketch))
        self.candidates += len(seen)


def _probe(engine: Any, data: dict[str, np.ndarray], n: int, probes: int, batch: int) -> dict[str, float]:
    picks = np.random.default_rng(7).choice(n, probes, replace=False)
    when = _times(data)
    since = [when[i] - _WINDOW for i in picks]
    customer = [int(data["customer"][i]) for i in picks]
    keys = [[int(k) for k in data["keys"][i]] for i in picks]
    result: dict[str, float] = {}
    with engine.connect() as conn:
        look = _Lookups(conn)
        for j in range(min(probes, 20)):  # warm the connection, the prepared statements, the caches' top levels
            look.customers([customer[j]], since[j])
            look.bands(keys[j], since[j], 50, customer[j])
            look.both([customer[j]], keys[j], since[j], 50, customer[j])
        look.compared = look.candidates = 0
        timings: dict[str, list[float]] = {"customer": [], "band": [], "both": [], "both_cpu": []}
        for j in range(probes):
            started, cpu = time.perf_counter(), time.process_time()
            look.customers([customer[j]], since[j])
            middle = time.perf_counter()
            look.bands(keys[j], since[j], 50, customer[j])
            ended = time.perf_counter()
            timings["customer"].append(middle - started)
            timings["band"].append(ended - middle)
            timings["both"].append(ended - started)
            timings["both_cpu"].append(time.process_time() - cpu)
        for name, values in timings.items():
            result |= _percentiles(values, f"single_{name}")
        result["single_sketches_compared_per_message"] = look.compared / probes
        result["single_candidates_per_message"] = look.candidates / probes
        two_statements = (look.compared, look.candidates)
        look.compared = look.candidates = 0
        near: list[float] = []
        for j in range(probes):
            started = time.perf_counter()
            look.both([customer[j]], keys[j], since[j], 50, customer[j])
            near.append(time.perf_counter() - started)
        result |= _percentiles(near, "single_near")
        if (look.compared, look.candidates) != two_statements:
            raise AssertionError("one statement found other rows than the two lookups")
        per_message: list[float] = []
        for start in range(0, probes, batch):
            part = range(start, min(probes, start + batch))
            started = time.perf_counter()
            look.customers(sorted({customer[j] for j in part}), min(since[j] for j in part))
            look.bands(sorted({k for j in part for k in keys[j]}), min(since[j] for j in part), 50 * len(part))
            per_message.append((time.perf_counter() - started) / len(part))
        result |= _percentiles(per_message, f"batch{batch}_both")
        result[f"batch{batch}_batches"] = len(per_message)
        per_message = []
        for start in range(0, probes, batch):
            part = range(start, min(probes, start + batch))
            started = time.perf_counter()
            look.both(sorted({customer[j] for j in part}), sorted({k for j in part for k in keys[j]}),
                      min(since[j] for j in part), 50 * len(part))
            per_message.append((time.perf_counter() - started) / len(part))
        result |= _percentiles(per_message, f"batch{batch}_near")
        conn.rollback()
    return result


def _warm(url: str) -> str:
    """Read the lookup's tables and indexes once, so the probes measure a store whose working set is in
    memory (as a production database's is) rather than this machine's disk under other jobs' load."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with open(parsed.database or "", "rb") as db:
            while db.read(1 << 24):
                pass
        return "database file read once (OS page cache)"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:  # whole-index scans: every leaf page read once
            conn.execute(text("SET enable_seqscan = off"))
            conn.execute(text("SELECT count(*) FROM dedup_bands WHERE band_key >= -9223372036854775808"))
            conn.execute(text("SELECT count(*) FROM dedup_sketches WHERE customer_id >= 0"))
            conn.execute(text("SELECT count(*) FROM dedup_sketches WHERE message_id >= 0"))
            conn.execute(text("SET enable_seqscan = on"))
            conn.execute(text("SELECT sum(length(sketch)) FROM dedup_sketches"))
            conn.rollback()
        return "full scans of the band key index, the sketch indexes and table (OS page cache)"
    finally:
        engine.dispose()


def _filled(url: str, n: int) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM dedup_sketches")).scalar_one() == n
    except Exception:  # no such table yet
        return False
    finally:
        engine.dispose()


def _postgres_database(url: str, name: str, create: bool) -> tuple[str, Any]:
    parsed = make_url(url)
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if create and not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    return parsed.set(database=name).render_as_string(hide_password=False), admin


def run_bench(n: int, url: str | None, probes: int = 5000, batch: int = 500, seed: int = 4,
              keep: str | None = None, warm: bool = True) -> dict[str, Any]:
    """`keep`: a SQLite file, or a PostgreSQL database name beside `url`, filled once and reused.
    `warm`: read the tables and indexes once before probing (see `_warm`)."""
    data = _data(n, seed)
    result: dict[str, Any] = {"messages": n, "probes": probes}
    with tempfile.TemporaryDirectory() as tmp:
        postgres = url is not None and make_url(url).get_backend_name() == "postgresql"
        admin = name = None
        if postgres:
            name = keep or f"intake_dedup_bench_{uuid.uuid4().hex[:8]}"
            url, admin = _postgres_database(url or "", name, create=True)
        elif url is None:
            url = f"sqlite:///{Path(keep) if keep else Path(tmp) / 'dedup-bench.db'}"
        try:
            started = time.perf_counter()
            if not _filled(url, n):
                upgrade(url)
                if postgres:
                    _fill_postgres(url, data, n)
                else:
                    _fill_sqlite(make_url(url).database or "", data, n)
                result["fill_s"] = round(time.perf_counter() - started, 1)
            result["backend"] = make_url(url).get_backend_name()
            if warm:
                result["warm"] = _warm(url)
            engine = make_engine(url)
            load_before = os.getloadavg()
            try:
                result |= _probe(engine, data, n, probes, batch)
            finally:
                engine.dispose()
            result["load_average"] = [round(v, 2) for v in load_before]
            result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
            result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        finally:
            if admin is not None:
                if keep is None:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    return result
