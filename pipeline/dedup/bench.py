"""Near-duplicate lookup benchmark: `intake dedup bench --messages 1000000`.

Fills a throwaway database (a temporary SQLite file, or a new PostgreSQL database beside the one
given) with N stored sketches and their band keys (customers with 5 messages each, spread over
30 days), then times the two lookups the store makes per message: the customer's recent sketches
within the window (compared one by one) and the band-key probe for other customers' near duplicates
(candidates fetched and compared). Sketches and keys are random: only their number and spread matter
to the index; 1% of messages repeat another's band keys, so probes do find candidates.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from pipeline.dedup.sketch import BANDS, Sketch, compare
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import dedup_sketches
from pipeline.store.tickets import _in, band_hits, recent_sketches

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


def _probe(engine: Any, data: dict[str, np.ndarray], n: int, probes: int, batch: int) -> dict[str, float]:
    rng = np.random.default_rng(7)
    picks = rng.choice(n, probes, replace=False)
    mine = Sketch.from_bytes(_sketch_bytes(30, 1))
    since = _NOW - _WINDOW
    compared = found = 0
    d = dedup_sketches.c
    timings = {}
    with engine.connect() as conn:
        recent_sketches(conn, [1], since)  # warm the connection and statement caches
        started = time.perf_counter()
        for i in picks:
            for _, _, _, raw in recent_sketches(conn, [int(data["customer"][i])], since):
                compare(mine, Sketch.from_bytes(raw))
                compared += 1
        timings["customer_lookup_ms"] = (time.perf_counter() - started) * 1000 / probes
        started = time.perf_counter()
        for i in picks:
            hits = band_hits(conn, [int(k) for k in data["keys"][i]], _NOW - _SPAN, 50)
            found += len(hits)
            if hits:
                wanted = sorted({h.message_id for h in hits})
                for raw in conn.execute(select(d.sketch).where(_in(conn, d.message_id, wanted))).scalars():
                    compare(mine, Sketch.from_bytes(raw))
        timings["band_lookup_ms"] = (time.perf_counter() - started) * 1000 / probes
        started = time.perf_counter()
        for start in range(0, probes, batch):
            customers = sorted({int(data["customer"][i]) for i in picks[start:start + batch]})
            for _, _, _, raw in recent_sketches(conn, customers, since):
                compare(mine, Sketch.from_bytes(raw))
        timings[f"customer_lookup_batch{batch}_ms"] = (time.perf_counter() - started) * 1000 / probes
        started = time.perf_counter()
        for start in range(0, probes, batch):
            keys = sorted({int(k) for i in picks[start:start + batch] for k in data["keys"][i]})
            hits = band_hits(conn, keys, _NOW - _SPAN, 50 * batch)
            wanted = sorted({h.message_id for h in hits})
            for raw in conn.execute(select(d.sketch).where(_in(conn, d.message_id, wanted))).scalars():
                compare(mine, Sketch.from_bytes(raw))
        timings[f"band_lookup_batch{batch}_ms"] = (time.perf_counter() - started) * 1000 / probes
        conn.rollback()
    timings["sketches_compared_per_message"] = compared / probes
    timings["band_hits_per_message"] = found / probes
    return timings


def run_bench(n: int, url: str | None, probes: int = 2000, batch: int = 500, seed: int = 4) -> dict[str, Any]:
    data = _data(n, seed)
    result: dict[str, Any] = {"messages": n, "probes": probes}
    with tempfile.TemporaryDirectory() as tmp:
        if url is None:
            url = f"sqlite:///{Path(tmp) / 'dedup-bench.db'}"
        parsed = make_url(url)
        admin = None
        if parsed.get_backend_name() == "postgresql":
            name = f"intake_dedup_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = parsed.set(database=name).render_as_string(hide_password=False)
        try:
            upgrade(url)
            started = time.perf_counter()
            if admin is None:
                _fill_sqlite(make_url(url).database or "", data, n)
            else:
                _fill_postgres(url, data, n)
            result["backend"] = make_url(url).get_backend_name()
            result["fill_s"] = round(time.perf_counter() - started, 1)
            engine = make_engine(url)
            try:
                result |= {k: round(v, 4) for k, v in _probe(engine, data, n, probes, batch).items()}
            finally:
                engine.dispose()
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    return result
