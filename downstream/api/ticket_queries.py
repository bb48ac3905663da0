"""The ticket list as one keyset-paginated query: filters, full-text search, three orders.

Pages are keyset, not offset: the cursor carries the last row's sort key, so page 1,000 costs what
page 1 costs. The urgency order uses `URGENCY_RANK_SQL` verbatim, as the indexes of migration 0005 do,
and an urgency filter is written on that rank too, so one index serves filter and order. Search on
PostgreSQL reads the ticket's own search document (migration 0007), so it is a condition on the same
row as the filters and the order.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    exists,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)

from pipeline.store.api_schema import URGENCY_RANK, URGENCY_RANK_SQL
from pipeline.store.schema import UtcDateTime, messages, tickets

URGENCY_RANK_COLUMN = literal_column(URGENCY_RANK_SQL, Integer)
_T = tickets.c
# A ticket matches when its messages do (subjects and texts): `tickets.search_vector` holds them all, kept by
# triggers on messages (PostgreSQL only, migration 0007). The query goes through the same intake_search_text as
# the messages (Unicode case folding, one word per CJK character), then websearch syntax: words, "a phrase",
# or, -word.
FTS_TICKETS = "tickets.search_vector @@ websearch_to_tsquery('simple', intake_search_text(:q))"

# The most rows of the order a search walks before it reads the search index instead (see _search_page). A page
# of 50 is found within 4,000 rows when more than ~1.3 % of the filtered tickets match; when fewer do, reading
# all matches (under ~13,000 of 1,000,000) from the index and sorting them costs about what a longer walk would:
# a bitmap reads the heap in physical order, about 3 times cheaper a row than a walk's random reads.
SEARCH_WALK_ROWS = 4000


class CursorError(ValueError):
    """A cursor this query did not hand out (or one for another sort order)."""


@dataclass(frozen=True, slots=True)
class TicketFilter:
    status: list[str] = field(default_factory=list)
    urgency: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    language: list[str] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    customer_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    q: str | None = None


def encode_cursor(sort: str, row: Any) -> str:
    if sort == "urgency":
        key = [sort, row.urgency_rank, row.sla_due_at.isoformat(), row.id]
    else:
        key = [sort, getattr(row, f"{sort}_at").isoformat(), row.id]
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> list[Any]:
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or not key or key[0] != sort:
            raise CursorError(f"this cursor is not one for sort={sort}")
        if sort == "urgency":
            _, rank, due, last_id = key
            return [int(rank), datetime.fromisoformat(due), int(last_id)]
        _, at, last_id = key
        return [datetime.fromisoformat(at), int(last_id)]
    except CursorError:
        raise
    except (ValueError, TypeError) as exc:
        raise CursorError("not a cursor this API handed out") from exc


def _search(conn: Connection, q: str) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        # the words inline (a literal, quoted by the dialect), not a bound parameter: a prepared statement
        # reused with a generic plan would estimate every word alike, and a word's frequency decides between
        # walking the order index (common words) and reading the search index (rare ones)
        return text(FTS_TICKETS).bindparams(bindparam("q", q, type_=String(), literal_execute=True))
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    said = or_(messages.c.subject.ilike(pattern, escape="\\"), messages.c.text.ilike(pattern, escape="\\"))
    return exists().where(messages.c.ticket_id == _T.id, said)


def _conditions(conn: Connection, f: TicketFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    # statuses and ranks are from closed lists: written inline, so a plan can use the open-queue partial index
    if f.status:
        where.append(_T.status.in_(bindparam("status", sorted(set(f.status)), literal_execute=True)))
    if f.urgency:
        ranks = sorted(URGENCY_RANK[u] for u in set(f.urgency))
        where.append(URGENCY_RANK_COLUMN.in_(bindparam("ranks", ranks, literal_execute=True)))
    for column, values in ((_T.type, f.type), (_T.category, f.category), (_T.language, f.language),
                           (_T.channel, f.channel)):
        if values:
            where.append(column.in_(values) if len(values) > 1 else column == values[0])
    if f.customer_id is not None:
        where.append(_T.customer_id == f.customer_id)
    for column, after, before in ((_T.created_at, f.created_after, f.created_before),
                                  (_T.updated_at, f.updated_after, f.updated_before)):
        if after is not None:
            where.append(column >= after)
        if before is not None:
            where.append(column < before)
    if f.q:
        where.append(_search(conn, f.q))
    return where


def _ordered(query: Select[Any], sort: str, cursor: str | None, rank: ColumnElement[int],
             columns: Any) -> Select[Any]:
    """The sort order and the cursor's position in it, on `columns` (the table's or a subquery's)."""
    key = decode_cursor(sort, cursor) if cursor else None
    if sort == "urgency":
        if key:
            last_rank, due, last_id = key
            query = query.where(tuple_(rank, columns.sla_due_at, columns.id)
                                > tuple_(literal(last_rank, Integer), literal(due, UtcDateTime()), literal(last_id)))
        return query.order_by(rank, columns.sla_due_at, columns.id)
    column = columns.created_at if sort == "created" else columns.updated_at
    if key:
        at, last_id = key
        query = query.where(tuple_(column, columns.id) < tuple_(literal(at, UtcDateTime()), literal(last_id)))
    return query.order_by(column.desc(), columns.id.desc())


def ticket_page_query(conn: Connection, f: TicketFilter, sort: str, limit: int, cursor: str | None) -> Select[Any]:
    query = select(*tickets.c, URGENCY_RANK_COLUMN.label("urgency_rank")).where(and_(True, *_conditions(conn, f)))
    query = _ordered(query, sort, cursor, URGENCY_RANK_COLUMN, _T)
    return query.limit(bindparam("page_limit", limit + 1, literal_execute=True))


def search_walk_query(conn: Connection, f: TicketFilter, sort: str, limit: int, cursor: str | None,
                      walk_rows: int) -> Select[Any]:
    """The first `walk_rows` tickets in the page's order (filters but not the search), then those that match:
    a walk along the order index that stops after `walk_rows` rows whatever the planner expected."""
    assert f.q is not None
    inner = select(*tickets.c, URGENCY_RANK_COLUMN.label("urgency_rank"), literal_column("tickets.search_vector"))
    inner = _ordered(inner.where(and_(True, *_conditions(conn, replace(f, q=None)))), sort, cursor,
                     URGENCY_RANK_COLUMN, _T)
    walked = inner.limit(bindparam("walk_rows", walk_rows, literal_execute=True)).subquery("walked")
    matches = text(FTS_TICKETS.replace("tickets.", "walked.")).bindparams(
        bindparam("q", f.q, type_=String(), literal_execute=True))
    query = select(*(walked.c[c.name] for c in tickets.c), walked.c.urgency_rank).where(matches)
    query = _ordered(query, sort, None, walked.c.urgency_rank, walked.c)
    return query.limit(bindparam("page_limit", limit + 1, literal_execute=True))


def _estimated_matches(conn: Connection, f: TicketFilter) -> float:
    query = select(literal(1)).select_from(tickets).where(and_(True, *_conditions(conn, f)))
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
    return float(plan[0]["Plan"]["Plan Rows"])


def _search_page(conn: Connection, f: TicketFilter, sort: str, limit: int, cursor: str | None,
                 walk_rows: int) -> list[Any]:
    """Walking the order index and checking each ticket pays off for common words (a page within a few
    rows); reading the matches from the search index and sorting them, for rare ones. PostgreSQL's own choice
    goes wrong where it costs seconds: a phrase of common words is estimated as common however rare it is,
    and a walk's random heap reads are costed as cheap. So: when the planner's estimates say a walk would
    need more than `walk_rows` rows for a page, read the index; otherwise walk at most `walk_rows` rows, and if
    no page was found there the matches are rare after all: read the index (bitmap scans only)."""
    matches = _estimated_matches(conn, f)
    if matches * walk_rows >= (limit + 1) * _estimated_matches(conn, replace(f, q=None)):
        rows = list(conn.execute(search_walk_query(conn, f, sort, limit, cursor, walk_rows)))
        if len(rows) > limit:
            return rows
    conn.execute(text("SET LOCAL enable_indexscan = off"))
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        return list(conn.execute(ticket_page_query(conn, f, sort, limit, cursor)))
    finally:
        conn.execute(text("SET LOCAL enable_indexscan TO DEFAULT"))
        conn.execute(text("SET LOCAL enable_seqscan TO DEFAULT"))


def ticket_page(conn: Connection, f: TicketFilter, sort: str = "urgency", limit: int = 50, cursor: str | None = None,
                walk_rows: int = SEARCH_WALK_ROWS) -> tuple[list[dict[str, Any]], str | None]:
    """One page of tickets and the cursor of the next page (None on the last)."""
    if f.q and conn.dialect.name == "postgresql":
        rows = _search_page(conn, f, sort, limit, cursor, walk_rows)
    else:
        rows = list(conn.execute(ticket_page_query(conn, f, sort, limit, cursor)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(sort, rows[-1]) if more and rows else None
    return [dict(r._mapping) for r in rows], next_cursor
