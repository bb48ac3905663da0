"""`intake api token create|list|revoke`: the secret printed once works, revoked it is refused."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from downstream.api.app import create_app
from downstream.api.commands import api_group


@pytest.fixture
def runner(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> CliRunner:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("INTAKE_STORE__URL", sqlite_url)
    monkeypatch.chdir(tmp_path)  # no config.yaml here: settings come from the environment
    return CliRunner()


def test_create_use_list_revoke(runner: CliRunner, settings, engine) -> None:  # type: ignore[no-untyped-def]
    created = runner.invoke(api_group, ["token", "create", "crm", "--role", "operator"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("omni_") and "\n" not in token
    listed = [json.loads(line) for line in runner.invoke(api_group, ["token", "list"]).stdout.splitlines()]
    assert [(t["name"], t["role"]) for t in listed] == [("crm", "operator")] and token not in json.dumps(listed)
    with TestClient(create_app(settings, engine)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/tickets", headers=headers).status_code == 200
        assert runner.invoke(api_group, ["token", "revoke", "crm"]).exit_code == 0
        assert client.get("/v1/tickets", headers=headers).status_code == 401
    assert runner.invoke(api_group, ["token", "revoke", "crm"]).exit_code == 1
    assert runner.invoke(api_group, ["token", "list"]).stdout == ""
    assert len(runner.invoke(api_group, ["token", "list", "--all"]).stdout.splitlines()) == 1


def test_bad_role_and_duplicate_name(runner: CliRunner) -> None:
    assert runner.invoke(api_group, ["token", "create", "x", "--role", "root"]).exit_code == 2
    assert runner.invoke(api_group, ["token", "create", "x", "--role", "viewer"]).exit_code == 0
    again = runner.invoke(api_group, ["token", "create", "x", "--role", "admin"])
    assert again.exit_code == 1 and "revoke it first" in again.stderr
