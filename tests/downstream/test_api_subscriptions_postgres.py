"""/v1/subscriptions on a real PostgreSQL: the whole life of a subscription, dead letters included."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from downstream.api.app import create_app
from downstream.api.tokens import create_token
from downstream.webhooks.deliveries import counts_by_status
from downstream.webhooks.tables import PENDING
from pipeline.config import Settings, StoreConfig
from tests.downstream.webhook_helpers import make_dead_deliveries

pytestmark = pytest.mark.postgres


def test_subscription_life_on_postgres(pg_url: str, pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        subscriber = {"Authorization": f"Bearer {create_token(conn, 's', 'subscriber')}"}
        viewer = {"Authorization": f"Bearer {create_token(conn, 'v', 'viewer')}"}
    with TestClient(create_app(Settings(store=StoreConfig(url=pg_url)), pg_engine)) as client:
        assert client.post("/v1/subscriptions", json={"url": "ftp://x.example"}, headers=subscriber
                           ).json()["detail"][0]["loc"] == ["body", "url"]
        made = client.post("/v1/subscriptions", json={"url": "https://crm.example/h", "urgencies": ["normal"]},
                           headers=subscriber).json()
        assert client.get("/v1/subscriptions", headers=viewer).status_code == 403
        ids = make_dead_deliveries(pg_engine, made["id"], ["T-1", "T-2"])
        dead = client.get(f"/v1/subscriptions/{made['id']}/dead-deliveries", headers=subscriber).json()
        assert sorted(d["delivery_id"] for d in dead) == sorted(ids)
        assert client.post(f"/v1/subscriptions/{made['id']}/redeliver", json={}, headers=subscriber
                           ).json() == {"queued": 2}
        assert counts_by_status(pg_engine, made["id"]) == {PENDING: 2}
        paused = client.patch(f"/v1/subscriptions/{made['id']}", json={"active": False, "urgencies": []},
                              headers=subscriber).json()
        assert paused["active"] is False and paused["urgencies"] == [] and paused["deliveries"] == {PENDING: 2}
        assert client.delete(f"/v1/subscriptions/{made['id']}", headers=subscriber).status_code == 204
        assert client.get("/v1/subscriptions", headers=subscriber).json() == []


def test_subscribers_see_only_their_own_on_postgres(pg_url: str, pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        team_a = {"Authorization": f"Bearer {create_token(conn, 'team-a', 'subscriber')}"}
        team_b = {"Authorization": f"Bearer {create_token(conn, 'team-b', 'subscriber')}"}
        admin = {"Authorization": f"Bearer {create_token(conn, 'root', 'admin')}"}
    with TestClient(create_app(Settings(store=StoreConfig(url=pg_url)), pg_engine)) as client:
        a_id = client.post("/v1/subscriptions", json={"url": "https://a.example/h"}, headers=team_a).json()["id"]
        b_id = client.post("/v1/subscriptions", json={"url": "https://b.example/h"}, headers=team_b).json()["id"]
        make_dead_deliveries(pg_engine, a_id, ["T-1"])
        assert [s["id"] for s in client.get("/v1/subscriptions", headers=team_b).json()] == [b_id]
        assert [s["owner"] for s in client.get("/v1/subscriptions", headers=admin).json()] == ["team-a", "team-b"]
        assert client.get(f"/v1/subscriptions/{a_id}", headers=team_b).status_code == 404
        assert client.post(f"/v1/subscriptions/{a_id}/redeliver", json={}, headers=team_b).status_code == 404
        assert client.patch(f"/v1/subscriptions/{a_id}", json={"active": False}, headers=team_b).status_code == 404
        assert counts_by_status(pg_engine, a_id) == {"dead": 1}
        assert client.patch(f"/v1/subscriptions/{a_id}", json={"active": False}, headers=team_a).status_code == 200
        assert client.delete(f"/v1/subscriptions/{a_id}", headers=team_b).status_code == 404
        assert client.delete(f"/v1/subscriptions/{a_id}", headers=admin).status_code == 204
