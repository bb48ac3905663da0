"""/v1/subscriptions ownership on SQLite: a subscriber token sees, changes, deletes and redelivers
only the subscriptions it created (another's id is a 404, like an unknown one); admin sees all."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from downstream.api.tokens import create_token
from downstream.webhooks.deliveries import counts_by_status
from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription, get_subscription
from downstream.webhooks.tables import DEAD
from tests.downstream.webhook_helpers import make_dead_deliveries

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def other_subscriber(engine: Engine) -> dict[str, str]:
    with engine.begin() as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'other-team', 'subscriber')}"}


def _create(client: TestClient, headers: dict[str, str], url: str) -> int:
    answer = client.post("/v1/subscriptions", json={"url": url}, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_each_subscriber_sees_only_its_own_and_admin_sees_all(client: TestClient, auth: Auth, engine: Engine,
                                                              other_subscriber: dict[str, str]) -> None:
    mine = _create(client, auth("subscriber"), "https://mine.example/h")
    theirs = _create(client, other_subscriber, "https://theirs.example/h")
    cli_made = create_subscription(engine, SubscriptionSpec(url="https://ops.example/h")).id
    assert get_subscription(engine, mine).owner == "test-subscriber"
    assert get_subscription(engine, theirs).owner == "other-team" and get_subscription(engine, cli_made).owner is None

    listed = client.get("/v1/subscriptions", headers=auth("subscriber")).json()
    assert [(s["id"], s["owner"]) for s in listed] == [(mine, "test-subscriber")]
    assert [s["id"] for s in client.get("/v1/subscriptions", headers=other_subscriber).json()] == [theirs]
    assert [s["id"] for s in client.get("/v1/subscriptions", headers=auth("admin")).json()] == [mine, theirs,
                                                                                                 cli_made]
    assert client.get(f"/v1/subscriptions/{mine}", headers=auth("admin")).status_code == 200
    assert client.get(f"/v1/subscriptions/{cli_made}", headers=auth("admin")).json()["owner"] is None


@pytest.mark.parametrize("target", ["theirs", "cli_made", "unknown"])
def test_another_owners_subscription_answers_404_like_an_unknown_one(
        client: TestClient, auth: Auth, engine: Engine, other_subscriber: dict[str, str], target: str) -> None:
    ids = {"theirs": _create(client, other_subscriber, "https://theirs.example/h"),
           "cli_made": create_subscription(engine, SubscriptionSpec(url="https://ops.example/h")).id,
           "unknown": 999}
    sid = ids[target]
    if target != "unknown":
        make_dead_deliveries(engine, sid, ["T-1"])
    path = f"/v1/subscriptions/{sid}"
    mine = auth("subscriber")
    answers = [client.get(path, headers=mine), client.get(f"{path}/dead-deliveries", headers=mine),
               client.patch(path, json={"active": False, "url": "https://stolen.example/h"}, headers=mine),
               client.delete(path, headers=mine), client.post(f"{path}/redeliver", json={}, headers=mine)]
    assert [a.status_code for a in answers] == [404] * 5
    assert answers[0].json() == {"detail": f"no subscription {sid}"}  # the same words as for an unknown id
    if target != "unknown":
        untouched = get_subscription(engine, sid)
        assert untouched.active and untouched.url != "https://stolen.example/h"
        assert counts_by_status(engine, sid) == {DEAD: 1}  # not redelivered


def test_owner_manages_its_own_and_admin_manages_anyones(client: TestClient, auth: Auth, engine: Engine,
                                                         other_subscriber: dict[str, str]) -> None:
    theirs = _create(client, other_subscriber, "https://theirs.example/h")
    make_dead_deliveries(engine, theirs, ["T-1", "T-2"])
    path = f"/v1/subscriptions/{theirs}"
    assert len(client.get(f"{path}/dead-deliveries", headers=other_subscriber).json()) == 2
    assert client.post(f"{path}/redeliver", json={}, headers=other_subscriber).json() == {"queued": 2}
    changed = client.patch(path, json={"active": False, "description": "paused by admin"}, headers=auth("admin"))
    assert changed.status_code == 200 and changed.json()["owner"] == "other-team"  # the owner stays
    assert get_subscription(engine, theirs).description == "paused by admin"
    assert client.delete(path, headers=auth("subscriber")).status_code == 404
    assert client.delete(path, headers=other_subscriber).status_code == 204
    assert client.get("/v1/subscriptions", headers=auth("admin")).json() == []


def test_migration_0008_goes_down_and_up_keeping_the_subscriptions(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from pipeline.store.database import alembic_config, make_engine, upgrade

    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    engine = make_engine(url)
    made = create_subscription(engine, SubscriptionSpec(url="https://a.example/h"), owner="team-a")
    command.downgrade(alembic_config(url), "0007")
    assert "owner" not in {c["name"] for c in inspect(engine).get_columns("webhook_subscriptions")}
    upgrade(url)
    assert get_subscription(engine, made.id).owner is None  # the owner went with the column: admin-managed now
    engine.dispose()
