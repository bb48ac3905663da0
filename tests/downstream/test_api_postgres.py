"""The API on a real PostgreSQL: migrations with the ticket-list indexes, full-text search, pages, status events."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from downstream.api.app import create_app
from downstream.api.ticket_queries import TicketFilter, ticket_page_query
from downstream.api.tokens import create_token
from pipeline.config import Settings, StoreConfig
from pipeline.events import TicketEvent
from pipeline.processor import Processor
from pipeline.store.schema import ticket_events

pytestmark = pytest.mark.postgres


def _plan(engine: Engine, f: TicketFilter, sort: str = "urgency") -> str:
    with engine.connect() as conn:
        compiled = ticket_page_query(conn, f, sort, 50, None).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # a tiny table: ask whether an index
            conn.execute(text(f"SET {setting} = off"))  # *can* serve filter and order (a Sort would still show)
        return "\n".join(conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars())


def test_index_serves_filter_and_order_without_a_sort(pg_engine: Engine) -> None:
    queue = _plan(pg_engine, TicketFilter(status=["open", "pending"]))
    assert "ix_tickets_queue_rank_sla" in queue and "Sort" not in queue
    one = _plan(pg_engine, TicketFilter(status=["closed"], urgency=["critical"]))
    assert "ix_tickets_status_rank_sla" in one and "Sort" not in one
    assert "ix_tickets_created_at_id" in _plan(pg_engine, TicketFilter(), sort="created")
    # the search's plan: tests/downstream/test_ticket_search_postgres.py


def test_api_on_postgres(pg_url: str, pg_engine: Engine, record, rule_classifier, language_detector) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(store=StoreConfig(url=pg_url))
    processor = Processor(settings, pg_engine, language_detector, rule_classifier)
    try:
        processor.process([record("The espresso machine leaks water everywhere", f"p{i}") for i in range(3)]
                          + [record("Danke, alles bestens angekommen!", "de1")])
    finally:
        processor.close()
    with pg_engine.begin() as conn:
        viewer = {"Authorization": f"Bearer {create_token(conn, 'v', 'viewer')}"}
        operator = {"Authorization": f"Bearer {create_token(conn, 'o', 'operator')}"}
    with TestClient(create_app(settings, pg_engine)) as client:
        found = client.get("/v1/tickets", params={"q": "leaks", "limit": 2}, headers=viewer).json()
        second = client.get("/v1/tickets", params={"q": "leaks", "limit": 2, "cursor": found["next_cursor"]},
                            headers=viewer).json()
        numbers = [t["number"] for t in found["items"] + second["items"]]
        assert len(numbers) == 3 == len(set(numbers)) and second["next_cursor"] is None
        assert client.get("/v1/tickets", params={"q": "angekommen"}, headers=viewer).json()["items"][0]["language"] \
            == "de"
        assert client.get("/v1/tickets", params={"status": "bogus"}, headers=viewer).status_code == 422
        changed = client.post(f"/v1/tickets/{numbers[0]}/status", json={"status": "closed"}, headers=operator).json()
        assert changed["changed"]
        detail = client.get(f"/v1/tickets/{numbers[0]}", headers=viewer).json()
        assert detail["status"] == "closed" and detail["messages"][0]["text"].startswith("The espresso")
    with pg_engine.connect() as conn:
        payload = conn.execute(select(ticket_events.c.payload).where(
            ticket_events.c.event_id == changed["event_id"])).scalar_one()
    assert TicketEvent.model_validate(payload).changes == {"status": ["open", "closed"]}
