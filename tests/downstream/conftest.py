"""The API on a migrated SQLite store per test: a TestClient, a token per role, a ticket factory; and a
migrated PostgreSQL engine for the tests marked postgres."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from downstream.api.app import create_app
from downstream.api.tokens import create_token
from pipeline.config import Settings
from pipeline.store.api_schema import ROLES
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import customer_identities, customers, tickets
from tests.integration.conftest import pg_url  # noqa: F401 - the fixture: a fresh database per test

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
_numbers = itertools.count(1)


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:  # noqa: F811
    """An engine on a fresh PostgreSQL database, migrated to the current revision."""
    upgrade(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    with engine.begin() as conn:
        return {role: create_token(conn, f"test-{role}", role) for role in ROLES}


@pytest.fixture
def auth(tokens: dict[str, str]) -> Callable[[str], dict[str, str]]:
    def headers(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    return headers


@pytest.fixture
def add_customer(engine: Engine) -> Callable[..., int]:
    def make(name: str = "Ann", identity: tuple[str, str] | None = None) -> int:
        with engine.begin() as conn:
            cid = conn.execute(insert(customers).values(display_name=name, vip=False, created_at=T0)
                               .returning(customers.c.id)).scalar_one()
            kind, value = identity or ("email", f"{name.lower()}{cid}@example.com")
            conn.execute(insert(customer_identities).values(customer_id=cid, kind=kind, value=value, verified=False,
                                                            created_at=T0))
        return cid

    return make


@pytest.fixture
def add_ticket(engine: Engine, add_customer: Callable[..., int]) -> Callable[..., dict[str, Any]]:
    """Factory: a ticket row with a new customer unless `customer_id` is given; keywords override columns."""

    def make(**overrides: Any) -> dict[str, Any]:
        n = next(_numbers)
        row: dict[str, Any] = {
            "number": f"T-{n:06d}", "status": "open", "type": "complaint", "category": "delivery",
            "urgency": "normal", "language": "en", "channel": "email", "subject": f"ticket {n}",
            "message_count": 1, "repeat_count": 0, "sla_due_at": T0 + timedelta(hours=n),
            "created_at": T0 + timedelta(minutes=n), "updated_at": T0 + timedelta(minutes=n)} | overrides
        row.setdefault("customer_id", add_customer(f"c{n}"))
        with engine.begin() as conn:
            row["id"] = conn.execute(insert(tickets).values(row).returning(tickets.c.id)).scalar_one()
        return row

    return make
