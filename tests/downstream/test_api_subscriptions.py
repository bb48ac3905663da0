"""/v1/subscriptions on SQLite: create, list, get, change, pause, delete, dead deliveries and
redelivery; roles subscriber and admin; bad URLs and filters named in a 422."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from downstream.webhooks.deliveries import claim_due, counts_by_status
from downstream.webhooks.subscriptions import get_subscription
from downstream.webhooks.tables import DEAD, PENDING, webhook_deliveries
from tests.downstream.webhook_helpers import make_dead_deliveries

Auth = Callable[[str], dict[str, str]]
HOOK = {"url": "https://hooks.example.com/omnintake", "event_types": ["ticket.created", "ticket.status_changed"],
        "urgencies": ["critical", "high"], "description": "the CRM"}


def create(client: TestClient, auth: Auth, role: str = "subscriber", **overrides: Any) -> dict[str, Any]:
    answer = client.post("/v1/subscriptions", json=HOOK | overrides, headers=auth(role))
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_create_shows_the_secret_once_then_list_and_get_hide_it(client: TestClient, auth: Auth,
                                                                 engine: Engine) -> None:
    made = create(client, auth)
    assert made["url"] == HOOK["url"] and made["event_types"] == sorted(HOOK["event_types"])
    assert len(made["secret"]) >= 16 and made["active"] and made["deliveries"] == {}
    assert get_subscription(engine, made["id"]).secret == made["secret"]
    listed = client.get("/v1/subscriptions", headers=auth("subscriber")).json()
    assert [s["id"] for s in listed] == [made["id"]] and "secret" not in listed[0]
    one = client.get(f"/v1/subscriptions/{made['id']}", headers=auth("admin"))
    assert one.status_code == 200 and "secret" not in one.json() and one.json()["description"] == "the CRM"
    chosen = create(client, auth, secret="s" * 20)
    assert chosen["secret"] == "s" * 20
    assert client.get("/v1/subscriptions/999", headers=auth("admin")).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://files.example.com/drop"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "https:///no-host"}, "url"),
    ({"event_types": ["created"]}, "event_types"),
    ({"urgencies": ["urgent"]}, "urgencies"),
    ({"secret": "short"}, "secret"),
    ({"colour": "red"}, "colour"),
])
def test_bad_subscription_is_refused_naming_the_field(client: TestClient, auth: Auth, body: dict[str, Any],
                                                      field: str) -> None:
    answer = client.post("/v1/subscriptions", json=HOOK | body, headers=auth("subscriber"))
    assert answer.status_code == 422
    assert ["body", field] in [e["loc"][:2] for e in answer.json()["detail"]]
    assert client.get("/v1/subscriptions", headers=auth("admin")).json() == []


def test_malformed_json_is_a_422(client: TestClient, auth: Auth) -> None:
    answer = client.post("/v1/subscriptions", content=b"{not json", headers=auth("subscriber") | {
        "Content-Type": "application/json"})
    assert answer.status_code == 422


def test_only_subscriber_and_admin_tokens(client: TestClient, auth: Auth) -> None:
    made = create(client, auth, role="admin")
    calls = [("GET", "/v1/subscriptions", None), ("POST", "/v1/subscriptions", HOOK),
             ("GET", f"/v1/subscriptions/{made['id']}", None),
             ("PATCH", f"/v1/subscriptions/{made['id']}", {"active": False}),
             ("DELETE", f"/v1/subscriptions/{made['id']}", None),
             ("GET", f"/v1/subscriptions/{made['id']}/dead-deliveries", None),
             ("POST", f"/v1/subscriptions/{made['id']}/redeliver", {})]
    for method, path, body in calls:
        assert client.request(method, path, json=body).status_code == 401, (method, path)
        assert client.request(method, path, json=body, headers={"Authorization": "Bearer omni_nope"}
                              ).status_code == 401, (method, path)
        for role in ("viewer", "operator"):
            assert client.request(method, path, json=body, headers=auth(role)).status_code == 403, (method, role)
    assert client.get(f"/v1/subscriptions/{made['id']}", headers=auth("admin")).json()["active"]


def test_change_pause_rotate_and_refuse_a_bad_url(client: TestClient, auth: Auth, engine: Engine) -> None:
    made = create(client, auth)
    changed = client.patch(f"/v1/subscriptions/{made['id']}", json={"url": "http://crm.internal:8080/h",
                                                                     "event_types": []}, headers=auth("subscriber"))
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["url"] == "http://crm.internal:8080/h" and body["event_types"] == []
    assert body["urgencies"] == ["critical", "high"] and "secret" not in body  # untouched fields stay
    assert get_subscription(engine, made["id"]).secret == made["secret"]
    bad = client.patch(f"/v1/subscriptions/{made['id']}", json={"url": "gopher://x"}, headers=auth("subscriber"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "url"]
    assert "http or https" in bad.json()["detail"][0]["msg"]
    assert get_subscription(engine, made["id"]).url == "http://crm.internal:8080/h"
    paused = client.patch(f"/v1/subscriptions/{made['id']}", json={"active": False, "rotate_secret": True},
                          headers=auth("subscriber")).json()
    assert paused["active"] is False and paused["secret"] != made["secret"]
    assert get_subscription(engine, made["id"]).secret == paused["secret"]
    assert [s["id"] for s in client.get("/v1/subscriptions", params={"active": "false"},
                                        headers=auth("admin")).json()] == [made["id"]]
    assert client.get("/v1/subscriptions", params={"active": "true"}, headers=auth("admin")).json() == []
    assert client.patch("/v1/subscriptions/999", json={"active": True}, headers=auth("admin")).status_code == 404
    assert client.patch(f"/v1/subscriptions/{made['id']}", json={"paused": True},
                        headers=auth("admin")).status_code == 422


def test_dead_deliveries_listed_and_redelivered_one_or_all(client: TestClient, auth: Auth, engine: Engine) -> None:
    made = create(client, auth, event_types=[], urgencies=[])
    other = create(client, auth, event_types=[], urgencies=[])
    ids = make_dead_deliveries(engine, made["id"], ["T-1", "T-2", "T-3"])
    others = make_dead_deliveries(engine, other["id"], ["T-1"])
    dead = client.get(f"/v1/subscriptions/{made['id']}/dead-deliveries", headers=auth("subscriber"))
    assert dead.status_code == 200
    assert sorted(d["delivery_id"] for d in dead.json()) == sorted(ids)
    assert dead.json()[0]["last_status"] == 500 and dead.json()[0]["attempts"] == 2
    assert client.get(f"/v1/subscriptions/{made['id']}", headers=auth("subscriber")).json()["deliveries"] == {
        DEAD: 3}

    one = client.post(f"/v1/subscriptions/{made['id']}/redeliver", json={"delivery_ids": [ids[0]]},
                      headers=auth("subscriber"))
    assert one.json() == {"queued": 1}
    assert counts_by_status(engine, made["id"]) == {DEAD: 2, PENDING: 1}
    [again] = claim_due(engine, made["id"], 10, 30)
    assert again.delivery_id == ids[0] and again.attempts == 0
    # another subscription's delivery id is not redelivered through this one
    assert client.post(f"/v1/subscriptions/{made['id']}/redeliver", json={"delivery_ids": others},
                       headers=auth("admin")).json() == {"queued": 0}
    rest = client.post(f"/v1/subscriptions/{made['id']}/redeliver", json={}, headers=auth("admin"))
    assert rest.json() == {"queued": 2} and counts_by_status(engine, made["id"]) == {PENDING: 3}
    assert counts_by_status(engine, other["id"]) == {DEAD: 1}
    assert client.post("/v1/subscriptions/999/redeliver", json={}, headers=auth("admin")).status_code == 404


def test_delete_needs_a_pause_first_and_takes_the_deliveries(client: TestClient, auth: Auth,
                                                             engine: Engine) -> None:
    made = create(client, auth, event_types=[], urgencies=[])
    make_dead_deliveries(engine, made["id"], ["T-1", "T-2"])
    path = f"/v1/subscriptions/{made['id']}"
    refused = client.delete(path, headers=auth("subscriber"))
    assert refused.status_code == 409 and "pause it first" in refused.json()["detail"]
    client.patch(path, json={"active": False}, headers=auth("subscriber"))
    client.post(f"{path}/redeliver", json={}, headers=auth("subscriber"))
    claim_due(engine, made["id"], 1, 30)  # a dispatcher is attempting one right now
    busy = client.delete(path, headers=auth("subscriber"))
    assert busy.status_code == 409 and "being attempted" in busy.json()["detail"]
    with engine.begin() as conn:
        conn.execute(webhook_deliveries.update().values(lease_until=None))
    assert client.delete(path, headers=auth("subscriber")).status_code == 204
    assert client.get(path, headers=auth("subscriber")).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one() == 0
    assert client.delete(path, headers=auth("subscriber")).status_code == 404


def test_subscriptions_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths["/v1/subscriptions"])
    assert {"get", "patch", "delete"} <= set(paths["/v1/subscriptions/{subscription_id}"])
    assert "post" in paths["/v1/subscriptions/{subscription_id}/redeliver"]
