"""The dedup lookups' SQL on PostgreSQL (fixed text, arrays, prepared) and SQLite (JSON arrays) alike."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, text

from pipeline.dedup.lookup import band_candidates, recent_sketches
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import dedup_bands, dedup_sketches

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BIG = -(2**63) + 5  # band keys use the whole signed 64-bit range


def _fill(url: str) -> None:
    upgrade(url)
    engine = create_engine(url)  # not make_engine: SQLite without foreign keys, as sqlite3 opens it
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # sketches without message rows: the lookups never join messages
            conn.execute(text("ALTER TABLE dedup_sketches DROP CONSTRAINT fk_dedup_sketches_message_id_messages"))
        rows = [(1, 10, T - timedelta(hours=30)), (2, 10, T - timedelta(hours=2)), (3, 10, T - timedelta(hours=1)),
                (4, 20, T - timedelta(hours=1)), (5, 30, T - timedelta(hours=40))]
        conn.execute(insert(dedup_sketches), [{"message_id": m, "customer_id": c, "ticket_id": 100 + c,
                                               "received_at": t, "sketch": bytes([m]) * 12} for m, c, t in rows])
        conn.execute(insert(dedup_bands), [{"band_key": k, "received_at": t, "message_id": m, "customer_id": c}
                                           for m, c, t in rows for k in (BIG, 7 * m)])
    engine.dispose()


def _check(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        for _ in range(7):  # past psycopg's prepare threshold: the prepared statement gives the same rows
            recent = recent_sketches(conn, [10, 20], T - timedelta(hours=24))
            assert [(r.customer_id, r.ticket_id, r.received_at) for r in recent] == [
                (10, 110, T - timedelta(hours=2)), (10, 110, T - timedelta(hours=1)), (20, 120, T - timedelta(hours=1))]
            assert recent[0].sketch == bytes([2]) * 12
            hits = band_candidates(conn, [BIG, 28], T - timedelta(hours=24), 50, other_than=10)
            assert sorted((h.band_key, h.message_id, h.customer_id) for h in hits) == [(BIG, 4, 20), (28, 4, 20)]
            assert hits[0].sketch == bytes([4]) * 12 and hits[0].received_at == T - timedelta(hours=1)
        assert len(band_candidates(conn, [BIG], T - timedelta(hours=48), 50)) == 5
        assert len(band_candidates(conn, [BIG], T - timedelta(hours=48), 2)) == 2
        newest = band_candidates(conn, [BIG, 14], T - timedelta(hours=48), 50, per_key=2)  # the newest 2 per key
        assert sorted((h.band_key, h.message_id) for h in newest) == [(BIG, 3), (BIG, 4), (14, 2)]
        assert recent_sketches(conn, [], T) == [] and band_candidates(conn, [], T, 5) == []
    engine.dispose()


@pytest.mark.postgres
def test_lookups_on_postgresql(pg_url):
    _fill(pg_url)
    _check(pg_url)


def test_lookups_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    _fill(url)
    _check(url)
