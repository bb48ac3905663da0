"""Ticket list (filters, search, keyset pages), one ticket with messages and reasons, status changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from pipeline.events import TicketEvent
from pipeline.store.schema import ticket_events, tickets
from tests.downstream.conftest import T0

URGENCY_ORDER = ["critical", "high", "normal", "low"]


def _numbers(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [t["number"] for t in response.json()["items"]]


def test_default_order_is_urgency_then_sla_due(client: TestClient, auth, add_ticket) -> None:  # type: ignore[no-untyped-def]
    low = add_ticket(urgency="low", sla_due_at=T0)
    late_critical = add_ticket(urgency="critical", sla_due_at=T0 + timedelta(hours=5))
    early_critical = add_ticket(urgency="critical", sla_due_at=T0 + timedelta(hours=1))
    high = add_ticket(urgency="high", sla_due_at=T0)
    got = _numbers(client.get("/v1/tickets", headers=auth("viewer")))
    assert got == [early_critical["number"], late_critical["number"], high["number"], low["number"]]


def test_keyset_pages_cover_every_ticket_once_in_order(client: TestClient, auth, add_ticket) -> None:  # type: ignore[no-untyped-def]
    made = [add_ticket(urgency=URGENCY_ORDER[i % 4], sla_due_at=T0 + timedelta(hours=i % 5)) for i in range(23)]
    seen, cursor = [], None
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        body = client.get("/v1/tickets", params=params, headers=auth("viewer")).json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 23 and {t["number"] for t in seen} == {t["number"] for t in made}
    keys = [(URGENCY_ORDER.index(t["urgency"]), t["sla_due_at"]) for t in seen]
    assert keys == sorted(keys)


def test_newest_first_sorts_page_too(client: TestClient, auth, add_ticket) -> None:  # type: ignore[no-untyped-def]
    made = [add_ticket(created_at=T0 + timedelta(minutes=i)) for i in range(7)]
    first = client.get("/v1/tickets", params={"sort": "created", "limit": 4}, headers=auth("viewer")).json()
    second = client.get("/v1/tickets", params={"sort": "created", "limit": 4, "cursor": first["next_cursor"]},
                        headers=auth("viewer")).json()
    assert [t["number"] for t in first["items"] + second["items"]] == [t["number"] for t in reversed(made)]
    assert second["next_cursor"] is None


def test_filters(client: TestClient, auth, add_ticket) -> None:  # type: ignore[no-untyped-def]
    fr = add_ticket(language="fr", channel="chat", type="inquiry", category=None, urgency="high")
    closed = add_ticket(status="closed", category="billing")
    old = add_ticket(created_at=T0 - timedelta(days=30), updated_at=T0 - timedelta(days=29))
    pending = add_ticket(status="pending", urgency="critical")
    h = auth("viewer")

    def get(**params: object) -> set[str]:
        return set(_numbers(client.get("/v1/tickets", params=params, headers=h)))

    assert get(language="fr") == {fr["number"]}
    assert get(channel="chat", type="inquiry") == {fr["number"]}
    assert get(status="closed") == {closed["number"]}
    assert get(status=["open", "pending"]) == {fr["number"], old["number"], pending["number"]}
    assert get(urgency=["critical", "high"]) == {fr["number"], pending["number"]}
    assert get(category="billing") == {closed["number"]}
    assert get(created_before=T0.isoformat()) == {old["number"]}
    assert old["number"] not in get(updated_after=(T0 - timedelta(days=1)).isoformat())
    assert get(customer_id=fr["customer_id"]) == {fr["number"]}
    assert get(language="fr", status="closed") == set()


def test_search_in_message_subject_and_text(client: TestClient, auth, processor, record) -> None:  # type: ignore[no-untyped-def]
    processor.process([record("The espresso machine leaks water everywhere", "zoe"),
                       record("Where is my order?", "max", channel="email", subject="Refund for the 100% wool coat",
                              sender={"kind": "email", "id": "max@example.com"}),
                       record("Thanks, all good", "ida")])
    h = auth("viewer")
    found = client.get("/v1/tickets", params={"q": "LEAKS water"}, headers=h).json()["items"]
    assert [t["channel"] for t in found] == ["chat"]
    by_subject = client.get("/v1/tickets", params={"q": "100% wool"}, headers=h).json()["items"]
    assert [t["channel"] for t in by_subject] == ["email"]
    assert _numbers(client.get("/v1/tickets", params={"q": "100_"}, headers=h)) == []  # LIKE wildcards are literal


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "done"}, "status"),
    ({"urgency": "urgent"}, "urgency"),
    ({"type": "question"}, "type"),
    ({"limit": 0}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"created_after": "2026-11-20T09:00:00"}, "created_after"),  # no time zone: ambiguous
    ({"created_after": "2026-11-21T00:00:00Z", "created_before": "2026-11-20T00:00:00Z"}, "created_before"),
    ({"cursor": "garbage!"}, "cursor"),
    ({"q": "x"}, "q"),
    ({"sort": "name"}, "sort"),
    ({"stauts": "open"}, "stauts"),  # a misspelt filter is refused, not ignored
])
def test_bad_filters_are_422_naming_the_field(client: TestClient, auth, params, field) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/tickets", params=params, headers=auth("viewer"))
    assert response.status_code == 422, response.text
    assert [field] == [e["loc"][1] for e in response.json()["detail"]]  # ["query", field, (list index)]


def test_cursor_of_another_sort_is_422(client: TestClient, auth, add_ticket) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        add_ticket()
    cursor = client.get("/v1/tickets", params={"limit": 1}, headers=auth("viewer")).json()["next_cursor"]
    response = client.get("/v1/tickets", params={"sort": "created", "cursor": cursor}, headers=auth("viewer"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_ticket_with_messages_and_label_reasons(client: TestClient, auth, processor, record) -> None:  # type: ignore[no-untyped-def]
    processor.process([record("My order arrived broken, I want a refund!", "ann")])
    processor.process([record("Still no answer about the broken order!!", "ann")])
    number = _numbers(client.get("/v1/tickets", headers=auth("viewer")))[0]
    body = client.get(f"/v1/tickets/{number}", headers=auth("viewer")).json()
    assert body["number"] == number and body["message_count"] == 2
    assert body["messages"][0]["text"] == "My order arrived broken, I want a refund!"
    assert body["label_reasons"] and all(isinstance(r, str) for r in body["label_reasons"])
    assert "labels" in body["messages"][0]["reasons"] and "language" in body["messages"][0]["reasons"]
    assert client.get("/v1/tickets/NOPE-1", headers=auth("viewer")).status_code == 404


def test_status_change_writes_its_event_with_the_change(client: TestClient, auth, engine: Engine,  # type: ignore[no-untyped-def]
                                                        add_ticket) -> None:
    ticket = add_ticket()
    response = client.post(f"/v1/tickets/{ticket['number']}/status", json={"status": "resolved"},
                           headers=auth("operator"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] and body["ticket"]["status"] == "resolved"
    with engine.connect() as conn:
        assert conn.execute(select(tickets.c.status).where(tickets.c.id == ticket["id"])).scalar() == "resolved"
        events = conn.execute(select(ticket_events)).mappings().all()
    assert len(events) == 1 and events[0]["event_id"] == body["event_id"]
    event = TicketEvent.model_validate(events[0]["payload"])
    assert event.type == "ticket.status_changed" and event.changes == {"status": ["open", "resolved"]}
    assert event.ticket.status == "resolved" and events[0]["ticket_number"] == ticket["number"]
    again = client.post(f"/v1/tickets/{ticket['number']}/status", json={"status": "resolved"},
                        headers=auth("operator")).json()
    assert again["changed"] is False and again["event_id"] is None


def test_status_conflicts(client: TestClient, auth, engine: Engine, add_ticket) -> None:  # type: ignore[no-untyped-def]
    closed = add_ticket(status="closed")
    add_ticket(customer_id=closed["customer_id"])  # the customer's open ticket
    merged = add_ticket(status="merged")
    h = auth("operator")
    reopen = client.post(f"/v1/tickets/{closed['number']}/status", json={"status": "open"}, headers=h)
    assert reopen.status_code == 409 and "already has open ticket" in reopen.json()["detail"]
    assert client.post(f"/v1/tickets/{merged['number']}/status", json={"status": "open"}, headers=h).status_code == 409
    assert client.post("/v1/tickets/NOPE-1/status", json={"status": "open"}, headers=h).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(ticket_events)).first() is None  # nothing written by refused changes


@pytest.mark.parametrize(("body", "field"), [
    ('{"status": "resolved"', "body"),  # malformed JSON
    ('{"status": "merged"}', "status"),  # merged only by a customer merge
    ('{"status": "closed", "why": "x"}', "why"),
    ("{}", "status"),
])
def test_bad_status_bodies_are_422(client: TestClient, auth, add_ticket, body: str, field: str) -> None:  # type: ignore[no-untyped-def]
    ticket = add_ticket()
    response = client.post(f"/v1/tickets/{ticket['number']}/status", content=body,
                           headers=auth("operator") | {"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["detail"]]
    assert any(field in loc for loc in locs), locs
