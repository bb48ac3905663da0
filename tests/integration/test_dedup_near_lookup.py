"""`near_lookup` (both dedup lookups in one statement on PostgreSQL) answers what the two lookups answer."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, text

from pipeline.dedup.lookup import band_candidates, near_lookup, recent_sketches
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import dedup_bands, dedup_sketches

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEYS = [-(2**63) + 5, 2**63 - 7, 0, 11, 12, 13, 14, 15]  # few keys: many messages share each, past `per_key`


def _fill(url: str) -> None:
    upgrade(url)
    rng = random.Random(3)
    engine = create_engine(url)  # SQLite without foreign keys; on PostgreSQL the constraint is dropped below
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # sketches without message rows: the lookups never join messages
            conn.execute(text("ALTER TABLE dedup_sketches DROP CONSTRAINT fk_dedup_sketches_message_id_messages"))
        sketches, bands = [], []
        for message in range(1, 301):
            customer, when = rng.randint(1, 40), T - timedelta(minutes=rng.randint(0, 60 * 48))
            sketches.append({"message_id": message, "customer_id": customer, "ticket_id": 1000 + customer,
                             "received_at": when, "sketch": message.to_bytes(4, "big") * 3})
            bands += [{"band_key": k, "received_at": when, "message_id": message, "customer_id": customer}
                      for k in rng.sample(KEYS, 3)]
        conn.execute(insert(dedup_sketches), sketches)
        conn.execute(insert(dedup_bands), bands)
    engine.dispose()


def _check(url: str) -> None:
    rng = random.Random(4)
    engine = make_engine(url)
    with engine.connect() as conn:
        for probe in range(40):  # past psycopg's prepare threshold: the prepared statement answers the same
            customers = sorted(rng.sample(range(1, 41), rng.choice([0, 1, 1, 3])))
            keys = sorted(rng.sample(KEYS, rng.choice([0, 1, 4])))
            since, band_since = T - timedelta(hours=rng.randint(1, 30)), T - timedelta(hours=rng.randint(1, 30))
            other = customers[0] if customers and probe % 2 else -1
            limit, per_key = rng.choice([3, 50]), rng.choice([2, 16])
            both = near_lookup(conn, customers, since, keys, band_since, limit, other, per_key)
            assert both.recent == recent_sketches(conn, customers, since)
            alone = band_candidates(conn, keys, band_since, limit, other, per_key)
            if len(alone) < limit:  # the same rows (a LIMIT that cuts may keep other ones, in either form)
                assert sorted(both.bands) == sorted(alone)
            else:
                assert len(both.bands) == limit and all(h.customer_id != other for h in both.bands)
        found = near_lookup(conn, [1, 2, 3], T - timedelta(hours=48), KEYS, T - timedelta(hours=48), 1000)
        assert found.recent and found.bands  # the data gives both kinds of rows
        assert [r.received_at for r in found.recent] == sorted(r.received_at for r in found.recent)
        assert near_lookup(conn, [], T, [], T, 5) == ([], [])
    engine.dispose()


@pytest.mark.postgres
def test_near_lookup_on_postgresql(pg_url):
    _fill(pg_url)
    _check(pg_url)


def test_near_lookup_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    _fill(url)
    _check(url)
