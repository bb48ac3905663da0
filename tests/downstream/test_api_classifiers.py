"""/v1/classifiers: operators and admins promote, roll back and shadow; the control row follows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from classifiers.control import read_control
from classifiers.models import ModelMetadata, ModelStore


class _SavedModel:
    def save(self, path: Path) -> None:
        path.mkdir(parents=True)
        (path / "weights").write_text("fake")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    monkeypatch.setenv("INTAKE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr("classifiers.active_model.load_version", lambda store, version: None)  # fake weights
    models = ModelStore()
    for n, name in enumerate(("v1", "v2"), start=1):
        models.save(name, _SavedModel(), ModelMetadata(name, "type", ["complaint", "praise"], "sha256:x", 10, 0,
                                                       f"2026-11-2{n}T00:00:00+00:00", metrics={"accuracy": 0.9}))
    return models


def test_operator_promotes_shadows_and_rolls_back(client: TestClient, auth: Callable[[str], dict[str, str]],
                                                  store: ModelStore, engine: Engine) -> None:
    promoted = client.post("/v1/classifiers/promote", json={"version": "v1"}, headers=auth("operator"))
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["active"] == "v1" and promoted.json()["control_generation"] == 1
    client.post("/v1/classifiers/promote", json={"version": "v2"}, headers=auth("admin"))
    shadowed = client.post("/v1/classifiers/shadow", json={"version": "v1"}, headers=auth("operator"))
    assert (shadowed.json()["active"], shadowed.json()["shadow"]) == ("v2", "v1")
    with engine.connect() as conn:
        control = read_control(conn)
    assert control is not None and (control.active_version, control.shadow_version, control.generation) == (
        "v2", "v1", 3)
    back = client.post("/v1/classifiers/rollback", headers=auth("operator"))
    assert back.json()["active"] == "v1" and store.active() == "v1"
    assert back.json()["shadow"] is None  # v1 was the shadow: it cannot shadow itself
    assert client.post("/v1/classifiers/shadow", json={"version": None}, headers=auth("operator")).json()[
        "shadow"] is None
    with engine.connect() as conn:
        control = read_control(conn)
    assert control is not None and (control.active_version, control.shadow_version) == ("v1", None)
    assert [h["action"] for h in store.history()] == ["promote", "promote", "shadow", "rollback", "shadow", "shadow"]


def test_readers_see_versions_but_only_operators_and_admins_change_them(
        client: TestClient, auth: Callable[[str], dict[str, str]], store: ModelStore) -> None:
    listed = client.get("/v1/classifiers", headers=auth("viewer"))
    assert listed.status_code == 200 and [v["version"] for v in listed.json()["versions"]] == ["v1", "v2"]
    assert listed.json()["versions"][0]["metrics"] == {"accuracy": 0.9} and listed.json()["active"] is None
    assert client.get("/v1/classifiers").status_code == 401
    for role in ("viewer", "subscriber"):
        assert client.post("/v1/classifiers/promote", json={"version": "v1"}, headers=auth(role)).status_code == 403
        assert client.post("/v1/classifiers/rollback", headers=auth(role)).status_code == 403
    assert client.post("/v1/classifiers/promote", json={"version": "v1"}).status_code == 401
    assert store.active() is None


def test_unknown_version_and_nothing_to_roll_back(client: TestClient, auth: Callable[[str], dict[str, str]],
                                                  store: ModelStore, engine: Engine) -> None:
    missing = client.post("/v1/classifiers/promote", json={"version": "nope"}, headers=auth("operator"))
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert client.post("/v1/classifiers/rollback", headers=auth("operator")).status_code == 409
    unnamed = client.post("/v1/classifiers/promote", json={"version": None}, headers=auth("operator"))
    assert unnamed.status_code == 422 and unnamed.json()["detail"][0]["loc"] == ["body", "version"]
    with engine.connect() as conn:
        assert read_control(conn) is None


def test_a_version_of_another_task_needs_replace_task(client: TestClient, auth: Callable[[str], dict[str, str]],
                                                     store: ModelStore) -> None:
    store.save("u1", _SavedModel(), ModelMetadata("u1", "urgency", ["low", "high"], "sha256:x", 10, 0,
                                                  "2026-11-23T00:00:00+00:00"))
    client.post("/v1/classifiers/promote", json={"version": "v1"}, headers=auth("operator"))
    refused = client.post("/v1/classifiers/promote", json={"version": "u1"}, headers=auth("operator"))
    assert refused.status_code == 409 and "predicts urgency" in refused.json()["detail"]
    assert store.active() == "v1"
    replaced = client.post("/v1/classifiers/promote", json={"version": "u1", "replace_task": True},
                           headers=auth("operator"))
    assert replaced.status_code == 200 and replaced.json()["active"] == "u1"
