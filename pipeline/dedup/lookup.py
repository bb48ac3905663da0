"""The two near-duplicate lookups the store makes, as fixed SQL on the driver's own cursor.

Both run once per batch and once per message when batches are small (an embedded pipeline, a quiet
hour), so their fixed cost matters as much as the index: the SQL text never changes with the number
of customers or keys (an array on PostgreSQL, a JSON array on SQLite), which lets psycopg prepare the
statement once per connection and sqlite3 reuse its compiled statement, and the rows come back without
SQLAlchemy's compilation and type processing (about 0.5 ms per query on this machine, more than the
index scans themselves).

- `recent_sketches`: the sketches of some customers' messages within the window
  (`ix_dedup_sketches_customer_received`: one range scan per customer).
- `band_candidates`: messages sharing an LSH band key within the window, with their sketches, in one
  statement (a range scan of `dedup_bands`' primary key per key, index only, then the sketch by primary key).
- `near_lookup`: both at once. On PostgreSQL one statement (the two queries as branches of a UNION ALL),
  so one round trip: a message alone in its batch costs one network wait instead of two, and each wait
  (about 0.3 ms on a local socket, more across hosts) was half the time of its query. On SQLite, which
  has no round trip, the two statements above run one after the other on one cursor.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

_RECENT = {
    "postgresql": "SELECT customer_id, ticket_id, received_at, sketch FROM dedup_sketches "
                  "WHERE customer_id = ANY(%b::bigint[]) AND received_at >= %s ORDER BY received_at",
    "sqlite": "SELECT customer_id, ticket_id, received_at, sketch FROM dedup_sketches "
              "WHERE customer_id IN (SELECT value FROM json_each(?)) AND received_at >= ? ORDER BY received_at",
}
# Arrays go as binary parameters (`%b`): the text format quotes every element through a regular expression,
# a fifth of a single message's client time.
# Only the primary key of `dedup_bands` is read (band_key, received_at, message_id: an index-only scan
# on PostgreSQL, a covering index on SQLite), at most `per_key` newest rows per key: a template that
# thousands of customers send shares its keys with all of them. The customer is the sketch's, read
# with the sketch, so a probe costs one index descent per key plus one sketch per message found.
_BANDS = {
    "postgresql": "SELECT b.band_key, b.message_id, s.customer_id, b.received_at, s.sketch "
                  "FROM unnest(%b::bigint[]) AS k(band_key) CROSS JOIN LATERAL ("
                  " SELECT d.band_key, d.message_id, d.received_at FROM dedup_bands d"
                  " WHERE d.band_key = k.band_key AND d.received_at >= %s ORDER BY d.received_at DESC LIMIT %s) b "
                  "JOIN dedup_sketches s ON s.message_id = b.message_id WHERE s.customer_id <> %s::bigint LIMIT %s",
    "sqlite": "SELECT b.band_key, b.message_id, s.customer_id, b.received_at, s.sketch FROM ("
              " SELECT band_key, message_id, received_at,"
              " row_number() OVER (PARTITION BY band_key ORDER BY received_at DESC) AS n FROM dedup_bands"
              " WHERE band_key IN (SELECT value FROM json_each(?)) AND received_at >= ?) b "
              "JOIN dedup_sketches s ON s.message_id = b.message_id WHERE b.n <= ? AND s.customer_id <> ? LIMIT ?",
}

# Both lookups as one statement: `part` 0 rows are `_RECENT`'s, `part` 1 rows `_BANDS`'s, each branch the
# query above unchanged (so the same plans and rows); PostgreSQL's Append returns a branch's rows in order.
_BOTH_POSTGRESQL = (
    "(SELECT 0 AS part, NULL::bigint AS band_key, message_id, customer_id, ticket_id, received_at, sketch"
    " FROM dedup_sketches WHERE customer_id = ANY(%b::bigint[]) AND received_at >= %s ORDER BY received_at) "
    "UNION ALL "
    "(SELECT 1, b.band_key, b.message_id, s.customer_id, s.ticket_id, b.received_at, s.sketch"
    " FROM unnest(%b::bigint[]) AS k(band_key) CROSS JOIN LATERAL ("
    " SELECT d.band_key, d.message_id, d.received_at FROM dedup_bands d"
    " WHERE d.band_key = k.band_key AND d.received_at >= %s ORDER BY d.received_at DESC LIMIT %s) b"
    " JOIN dedup_sketches s ON s.message_id = b.message_id WHERE s.customer_id <> %s::bigint LIMIT %s)"
)


class RecentSketch(NamedTuple):
    customer_id: int
    ticket_id: int | None
    received_at: datetime
    sketch: bytes


class BandHit(NamedTuple):
    band_key: int
    message_id: int
    customer_id: int
    received_at: datetime
    sketch: bytes


def recent_sketches(conn: Connection, customer_ids: Sequence[int], since: datetime) -> list[RecentSketch]:
    """(customer, ticket, received_at, sketch) of the customers' messages since `since`, oldest first."""
    if not customer_ids:
        return []
    rows = _fetch(conn, _RECENT, [list(customer_ids), since])
    return [RecentSketch(c, t, _time(conn, r), bytes(s)) for c, t, r, s in rows]


def band_candidates(conn: Connection, keys: Sequence[int], since: datetime, limit: int,
                    other_than: int = -1, per_key: int = 16) -> list[BandHit]:
    """Messages since `since` sharing a band key (the newest `per_key` of each key), with their
    sketches, except customer `other_than`'s. A message sharing several keys comes once per key."""
    if not keys:
        return []
    rows = _fetch(conn, _BANDS, [list(keys), since, per_key, other_than, limit])
    return [BandHit(k, m, c, _time(conn, r), bytes(s)) for k, m, c, r, s in rows]


class NearLookup(NamedTuple):
    recent: list[RecentSketch]
    bands: list[BandHit]


def near_lookup(conn: Connection, customer_ids: Sequence[int], since: datetime, keys: Sequence[int],
                band_since: datetime, limit: int, other_than: int = -1, per_key: int = 16) -> NearLookup:
    """`recent_sketches(conn, customer_ids, since)` and `band_candidates(conn, keys, band_since, limit,
    other_than, per_key)` together: one statement, one round trip, on PostgreSQL."""
    if conn.dialect.name != "postgresql" or not customer_ids or not keys:
        return NearLookup(recent_sketches(conn, customer_ids, since),
                          band_candidates(conn, keys, band_since, limit, other_than, per_key))
    queries = {"postgresql": _BOTH_POSTGRESQL}
    rows = _fetch(conn, queries, [list(customer_ids), since, list(keys), band_since, per_key, other_than, limit])
    recent, bands = [], []
    for part, key, message, customer, ticket, received, raw in rows:
        if part == 0:
            recent.append(RecentSketch(customer, ticket, _time(conn, received), bytes(raw)))
        else:
            bands.append(BandHit(key, message, customer, _time(conn, received), bytes(raw)))
    return NearLookup(recent, bands)


def _fetch(conn: Connection, queries: dict[str, str], params: list[Any]) -> list[tuple[Any, ...]]:
    dialect = conn.dialect.name
    sql = queries[dialect]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if dialect == "postgresql":
            cursor.execute(sql, params, prepare=True)
        else:
            params[0] = orjson.dumps(params[0]).decode()
            # as SQLAlchemy's DateTime stores times in SQLite (compared as text): '2026-11-20 09:00:00.000000'
            params[1] = params[1].astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            cursor.execute(sql, params)
        return cursor.fetchall()
    except (psycopg.Error, sqlite3.Error) as exc:  # mapped as SQLAlchemy maps its own (conflict, outage, ...)
        base = psycopg.Error if isinstance(exc, psycopg.Error) else sqlite3.Error
        raise DBAPIError.instance(sql, params, exc, base) from exc
    finally:
        cursor.close()


def _time(conn: Connection, value: Any) -> datetime:
    if isinstance(value, str):  # SQLite: text in UTC
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
