"""Tokens: 401 without or with a bad / revoked token, 403 for the wrong role, health open, secrets never stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from downstream.api.tokens import TokenError, create_token, hash_token, revoke_token
from pipeline.store.api_schema import api_tokens


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


@pytest.mark.parametrize("path", ["/v1/tickets", "/v1/tickets/T-000001", "/v1/customers/1", "/v1/dead-letters",
                                  "/v1/customers?identity=email:a@b.c"])
def test_every_resource_needs_a_token(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_no_route_but_health_is_open(client: TestClient) -> None:
    """Walk the OpenAPI document: every operation except health answers 401 without a token."""
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        if path in ("/healthz", "/readyz"):
            continue
        concrete = path.replace("{number}", "T-1").replace("{customer_id}", "1").replace(
            "{merge_id}", "1").replace("{letter_id}", "1")
        for method in operations:
            assert client.request(method, concrete).status_code == 401, (method, path)


def test_invalid_and_malformed_tokens_are_401(client: TestClient, tokens: dict[str, str]) -> None:
    for header in ("Bearer omni_not-a-token", "Basic dXNlcjpwYXNz", "Bearer", tokens["viewer"]):
        assert client.get("/v1/tickets", headers={"Authorization": header}).status_code == 401, header


def test_revoked_token_is_401(client: TestClient, engine: Engine, tokens: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.get("/v1/tickets", headers=headers).status_code == 200
    with engine.begin() as conn:
        assert revoke_token(conn, "test-viewer")
    assert client.get("/v1/tickets", headers=headers).status_code == 401


def test_roles(client: TestClient, auth, add_ticket) -> None:  # type: ignore[no-untyped-def]
    ticket = add_ticket()
    path = f"/v1/tickets/{ticket['number']}/status"
    assert client.get("/v1/tickets", headers=auth("subscriber")).status_code == 403
    assert client.post(path, json={"status": "closed"}, headers=auth("viewer")).status_code == 403
    assert client.post("/v1/dead-letters/reprocess", json={"ids": ["1"]}, headers=auth("viewer")).status_code == 403
    assert client.post("/v1/customers/1/merge", json={"into": 2}, headers=auth("subscriber")).status_code == 403
    assert client.get("/v1/tickets", headers=auth("viewer")).status_code == 200
    assert client.post(path, json={"status": "pending"}, headers=auth("operator")).status_code == 200
    assert client.post(path, json={"status": "closed"}, headers=auth("admin")).status_code == 200


def test_token_is_stored_hashed_and_names_are_unique_while_active(engine: Engine) -> None:
    with engine.begin() as conn:
        token = create_token(conn, "crm", "viewer")
        stored = conn.execute(select(api_tokens.c.token_hash)).scalars().all()
        assert stored == [hash_token(token)] and token not in stored
        with pytest.raises(TokenError, match="revoke it first"):
            create_token(conn, "crm", "admin")
        with pytest.raises(TokenError, match="role must be one of"):
            create_token(conn, "other", "root")
        assert revoke_token(conn, "crm")
        assert not revoke_token(conn, "crm")
        assert create_token(conn, "crm", "admin") != token
