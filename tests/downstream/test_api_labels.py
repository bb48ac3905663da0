"""Relabel through the API: the correction stored for training and a ticket.reclassified event.
Classifier versions: tests/downstream/test_api_classifiers.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from pipeline.events import TicketEvent
from pipeline.store.operator_schema import label_corrections
from pipeline.store.schema import messages, ticket_events, tickets


def _ticket(client: TestClient, auth, processor, record) -> dict:  # type: ignore[no-untyped-def]
    processor.process([record("Thank you so much, lovely service", "eva")])
    return client.get("/v1/tickets", headers=auth("viewer")).json()["items"][0]


def test_relabel_stores_the_correction_and_the_event(client: TestClient, auth, engine: Engine, processor,  # type: ignore[no-untyped-def]
                                                      record) -> None:
    ticket = _ticket(client, auth, processor, record)
    body = {"type": "complaint", "category": "service", "urgency": "high"}
    response = client.post(f"/v1/tickets/{ticket['number']}/labels", json=body, headers=auth("operator"))
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["ticket"]["type"], out["ticket"]["category"], out["ticket"]["urgency"]) == ("complaint", "service",
                                                                                            "high")
    with engine.connect() as conn:
        correction = conn.execute(select(label_corrections)).mappings().one()
        message_id = conn.execute(select(messages.c.id)).scalar_one()
        payload = conn.execute(select(ticket_events.c.payload).where(
            ticket_events.c.event_id == out["event_id"])).scalar_one()
        due, created = conn.execute(select(tickets.c.sla_due_at, tickets.c.created_at)).one()
    assert correction["message_id"] == message_id and correction["corrected_by"] == "test-operator"
    assert (correction["type"], correction["category"], correction["urgency"]) == ("complaint", "service", "high")
    event = TicketEvent.model_validate(payload)
    assert event.type == "ticket.reclassified" and event.changes["type"] == [ticket["type"], "complaint"]
    assert event.changes["urgency"] == [ticket["urgency"], "high"]
    assert (due - created).total_seconds() == 24 * 3600  # high: the default SLA from the ticket's opening
    again = client.post(f"/v1/tickets/{ticket['number']}/labels", json=body, headers=auth("operator")).json()
    assert again["event_id"] is None  # nothing changed: no event
    only_urgency = client.post(f"/v1/tickets/{ticket['number']}/labels", json={"urgency": "low"},
                               headers=auth("operator")).json()
    assert (only_urgency["ticket"]["type"], only_urgency["ticket"]["urgency"]) == ("complaint", "low")


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "praise", "category": "billing"}, "category"),
    ({"type": "complaint", "category": "weather"}, "category"),
    ({"type": "angry"}, "type"),
    ({}, "type"),
    ({"type": "praise", "message_id": 3}, "message_id"),
    ({"type": "praise", "urgency": "asap"}, "urgency"),
])
def test_bad_relabels_are_422(client: TestClient, auth, processor, record, body, field) -> None:  # type: ignore[no-untyped-def]
    ticket = _ticket(client, auth, processor, record)
    response = client.post(f"/v1/tickets/{ticket['number']}/labels", json=body, headers=auth("operator"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


def test_relabel_needs_operator(client: TestClient, auth, processor, record) -> None:  # type: ignore[no-untyped-def]
    ticket = _ticket(client, auth, processor, record)
    path = f"/v1/tickets/{ticket['number']}/labels"
    assert client.post(path, json={"type": "spam"}, headers=auth("viewer")).status_code == 403
    assert client.post("/v1/tickets/NOPE-1/labels", json={"type": "spam"}, headers=auth("operator")).status_code == 404


def test_merged_ticket_is_not_relabelled(client: TestClient, auth, engine: Engine, add_ticket) -> None:  # type: ignore[no-untyped-def]
    merged = add_ticket(status="merged")
    response = client.post(f"/v1/tickets/{merged['number']}/labels", json={"type": "spam"}, headers=auth("operator"))
    assert response.status_code == 409
    with engine.connect() as conn:
        assert conn.execute(select(label_corrections)).first() is None
