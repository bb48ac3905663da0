"""Customers with their identities; merge and un-merge through the API (pipeline.identity underneath)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from pipeline.store.schema import ticket_events, tickets


def test_customer_with_identities_and_lookup(client: TestClient, auth, add_customer, add_ticket) -> None:  # type: ignore[no-untyped-def]
    cid = add_customer("Ann", identity=("email", "ann@example.com"))
    ticket = add_ticket(customer_id=cid)
    body = client.get(f"/v1/customers/{cid}", headers=auth("viewer")).json()
    assert body["display_name"] == "Ann" and body["open_tickets"] == [ticket["number"]]
    assert [(i["kind"], i["value"]) for i in body["identities"]] == [("email", "ann@example.com")]
    found = client.get("/v1/customers", params={"identity": "email:Ann@Example.com"}, headers=auth("viewer"))
    assert [c["id"] for c in found.json()] == [cid]
    assert client.get("/v1/customers", params={"identity": "email:x@y.z"}, headers=auth("viewer")).json() == []
    assert client.get("/v1/customers/999999", headers=auth("viewer")).status_code == 404
    bad = client.get("/v1/customers", params={"identity": "no-kind"}, headers=auth("viewer"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "identity"]


def test_merge_and_unmerge(client: TestClient, auth, engine: Engine, add_customer, add_ticket) -> None:  # type: ignore[no-untyped-def]
    older, newer = add_customer("Bo"), add_customer("Bo2")
    kept = add_ticket(customer_id=older)
    absorbed = add_ticket(customer_id=newer)
    h = auth("operator")
    merged = client.post(f"/v1/customers/{newer}/merge", json={"into": older, "reason": "same phone"}, headers=h)
    assert merged.status_code == 200, merged.text
    outcome = merged.json()
    assert (outcome["kept_ticket"], outcome["merged_ticket"]) == (kept["number"], absorbed["number"])
    target = client.get(f"/v1/customers/{older}", headers=h).json()
    assert len(target["identities"]) == 2 and target["open_tickets"] == [kept["number"]]
    assert client.get(f"/v1/customers/{newer}", headers=h).json()["merged_into_id"] == older
    again = client.post(f"/v1/customers/{newer}/merge", json={"into": older}, headers=h)
    assert again.status_code == 409 and "already merged" in again.json()["detail"]
    merges = client.get(f"/v1/customers/{older}/merges", headers=auth("viewer")).json()
    assert [m["id"] for m in merges] == [outcome["merge_id"]]

    undone = client.post(f"/v1/merges/{outcome['merge_id']}/undo", headers=h)
    assert undone.status_code == 200, undone.text
    assert client.get(f"/v1/customers/{newer}", headers=h).json()["open_tickets"] == [absorbed["number"]]
    with engine.connect() as conn:
        assert conn.execute(select(tickets.c.status).where(tickets.c.id == absorbed["id"])).scalar() == "open"
        kinds = conn.execute(select(ticket_events.c.payload).where(
            ticket_events.c.ticket_id == absorbed["id"]).order_by(ticket_events.c.id)).scalars().all()
    assert [p["changes"]["status"] for p in kinds] == [["open", "merged"], ["merged", "open"]]
    assert client.post(f"/v1/merges/{outcome['merge_id']}/undo", headers=h).status_code == 409
    assert client.post("/v1/merges/999999/undo", headers=h).status_code == 404


def test_merge_bad_input(client: TestClient, auth, add_customer) -> None:  # type: ignore[no-untyped-def]
    cid = add_customer()
    h = auth("operator")
    assert client.post(f"/v1/customers/{cid}/merge", json={"into": cid}, headers=h).status_code == 409
    assert client.post(f"/v1/customers/{cid}/merge", json={"into": 999999}, headers=h).status_code == 409
    missing = client.post(f"/v1/customers/{cid}/merge", json={"reason": "x"}, headers=h)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "into"]
    wrong = client.post(f"/v1/customers/{cid}/merge", json={"into": "someone"}, headers=h)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "into"]
    path = client.get("/v1/customers/abc", headers=h)
    assert path.status_code == 422 and path.json()["detail"][0]["loc"] == ["path", "customer_id"]
