"""Full-text search on PostgreSQL (migration 0007): the ticket's search document kept by triggers on messages,
Unicode case folding, Chinese substrings, websearch syntax, and a plan that reads the search index."""

from __future__ import annotations

import unicodedata

import pytest
from sqlalchemy import Connection, Engine, delete, select, text, update

from downstream.api.ticket_queries import TicketFilter, search_walk_query, ticket_page, ticket_page_query
from pipeline.config import Settings, StoreConfig
from pipeline.processor import Processor
from pipeline.store.schema import dedup_bands, dedup_sketches, messages, tickets

pytestmark = pytest.mark.postgres

TEXTS = {
    "zh": "我的包裹到了但是屏幕坏了，我要退款。订单号 48213",
    "ru": "Здравствуйте! Посылка пришла ПОВРЕЖДЁННОЙ, прошу вернуть деньги",
    "el": "ΚΑΛΗΜΕΡΑΣ, η παραγγελία μου δεν έφτασε ακόμα",
    "vi": "Tôi muốn hoàn tiền vì ĐƠN HÀNG bị giao trễ",
    "en": "The espresso machine leaks water everywhere",
}


@pytest.fixture
def numbers(pg_url: str, pg_engine: Engine, record, rule_classifier, language_detector) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One ticket per language, written by the pipeline's own store: ticket number by language key."""
    processor = Processor(Settings(store=StoreConfig(url=pg_url)), pg_engine, language_detector, rule_classifier)
    try:
        processor.process([record(body, f"cust-{key}") for key, body in TEXTS.items()])
    finally:
        processor.close()
    with pg_engine.connect() as conn:
        rows = conn.execute(select(messages.c.text, tickets.c.number)
                            .join(tickets, tickets.c.id == messages.c.ticket_id)).all()
    by_text = {row.text: row.number for row in rows}  # the pipeline stores NFKC: '，' is ','
    return {key: by_text[unicodedata.normalize("NFKC", body)] for key, body in TEXTS.items()}


def _found(engine: Engine, q: str, **filters: list[str]) -> list[str]:
    with engine.connect() as conn:
        items, _ = ticket_page(conn, TicketFilter(q=q, **filters), limit=50)
    return sorted(t["number"] for t in items)


@pytest.mark.parametrize(("key", "q"), [
    ("zh", "退款"),  # inside a run of ideographs: no spaces in Chinese
    ("zh", "屏幕坏了"),
    ("ru", "повреждённой посылка"),  # any case, all words
    ("ru", "ДЕНЬГИ"),
    ("el", "καλημερας"),  # ΚΑΛΗΜΕΡΑΣ folded, final sigma included
    ("vi", "đơn hàng"),
    ("vi", '"hoàn tiền"'),  # a phrase
    ("en", "LEAKS espresso"),
])
def test_each_language_is_found(pg_engine: Engine, numbers: dict[str, str], key: str, q: str) -> None:
    assert _found(pg_engine, q) == [numbers[key]]


def test_what_is_not_written_is_not_found(pg_engine: Engine, numbers: dict[str, str]) -> None:
    assert _found(pg_engine, "退货") == []  # both characters occur, not together
    assert _found(pg_engine, '"water leaks"') == []  # the words, not in that order
    assert _found(pg_engine, "espresso -water") == []
    assert _found(pg_engine, "espresso or посылка") == sorted([numbers["en"], numbers["ru"]])
    assert _found(pg_engine, "посылка", status=["closed"]) == []


@pytest.mark.parametrize("q", ["x' OR 1=1 --", "%s %(q)s :q \\ ''", "\"unbalanced", "!!!", "a & | b <-> (c"])
def test_hostile_queries_are_words(pg_engine: Engine, numbers: dict[str, str], q: str) -> None:
    assert _found(pg_engine, q) == []


def _vector(conn: Connection, number: str) -> str:
    return conn.execute(text("SELECT coalesce(search_vector::text, '') FROM tickets WHERE number = :n"),
                        {"n": number}).scalar_one()


def _ticket_id(conn: Connection, number: str) -> int:
    return conn.execute(select(tickets.c.id).where(tickets.c.number == number)).scalar_one()


def test_triggers_follow_moved_edited_and_deleted_messages(pg_engine: Engine, numbers: dict[str, str]) -> None:
    with pg_engine.begin() as conn:  # as a merge moves them
        conn.execute(update(messages).where(messages.c.ticket_id == _ticket_id(conn, numbers["ru"]))
                     .values(ticket_id=_ticket_id(conn, numbers["en"])))
    assert _found(pg_engine, "посылка espresso") == [numbers["en"]]
    with pg_engine.begin() as conn:
        assert _vector(conn, numbers["ru"]) == ""
        conn.execute(update(messages).where(messages.c.text == TEXTS["en"]).values(text="The grinder is jammed"))
    assert _found(pg_engine, "espresso") == [] and _found(pg_engine, "grinder посылка") == [numbers["en"]]
    with pg_engine.begin() as conn:
        chinese = messages.c.text == unicodedata.normalize("NFKC", TEXTS["zh"])
        conn.execute(update(messages).where(chinese).values(language="zh"))  # no text change: no rebuild
        russian = conn.execute(select(messages.c.id).where(messages.c.text == TEXTS["ru"])).scalar_one()
        for table in (dedup_bands, dedup_sketches):
            conn.execute(delete(table).where(table.c.message_id == russian))
        conn.execute(delete(messages).where(messages.c.id == russian))
    assert _found(pg_engine, "посылка") == [] and _found(pg_engine, "grinder") == [numbers["en"]]
    assert _found(pg_engine, "退款") == [numbers["zh"]]


def test_search_reads_the_search_index(pg_engine: Engine, numbers: dict[str, str]) -> None:
    with pg_engine.connect() as conn:
        compiled = ticket_page_query(conn, TicketFilter(q="退款"), "urgency", 50, None).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        conn.execute(text("SET enable_seqscan = off"))  # five rows: ask whether the index *can* serve the search
        conn.execute(text("SET enable_indexscan = off"))  # (not the order index walked with a filter)
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars())
    assert "ix_tickets_search_vector" in plan, plan


@pytest.mark.parametrize("sort", ["urgency", "created"])
def test_a_bounded_walk_finds_what_the_index_finds(pg_engine: Engine, numbers: dict[str, str], sort: str) -> None:
    f = TicketFilter(q="espresso or посылка or 退款")
    with pg_engine.connect() as conn:
        everything = [r.number for r in conn.execute(ticket_page_query(conn, f, sort, 50, None))]
        walked = [r.number for r in conn.execute(search_walk_query(conn, f, sort, 50, None, walk_rows=100))]
        first_two = [r.number for r in conn.execute(search_walk_query(conn, f, sort, 50, None, walk_rows=2))]
        order = [r.number for r in conn.execute(ticket_page_query(conn, TicketFilter(), sort, 50, None))]
        for walk_rows in (0, 1, 100):  # whichever way _search_page goes, the page is the same
            assert [t["number"] for t in ticket_page(conn, f, sort, walk_rows=walk_rows)[0]] == everything
    assert len(everything) == 3 and walked == everything
    assert first_two == [n for n in order[:2] if n in everything]
