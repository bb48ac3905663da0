"""`intake webhooks ...` on a SQLite store: subscribe, list, pause, dead letters, redeliver."""

import json

from click.testing import CliRunner

from downstream.webhooks.commands import webhooks_group


def invoke(sqlite_url, *args):
    return CliRunner().invoke(webhooks_group, list(args), env={"INTAKE_STORE__URL": sqlite_url},
                              catch_exceptions=False)


def test_a_non_http_url_is_refused_with_exit_status_2(sqlite_url):
    result = invoke(sqlite_url, "add", "ftp://hooks.example/in")
    assert result.exit_code == 2 and "http or https" in result.output
    assert invoke(sqlite_url, "list", "--json").output == ""


def test_subscribe_list_pause_and_redeliver(sqlite_url):
    added = invoke(sqlite_url, "add", "https://hooks.example/in", "--event", "ticket.created", "--urgency", "high")
    assert added.exit_code == 0
    subscription = json.loads(added.output)
    assert subscription["secret"].startswith("whsec_") and subscription["event_types"] == ["ticket.created"]
    [listed] = [json.loads(line) for line in invoke(sqlite_url, "list", "--json").output.splitlines()]
    assert "secret" not in listed and listed["deliveries"] == {} and listed["owner"] is None
    owned = json.loads(invoke(sqlite_url, "add", "https://team.example/in", "--owner", "team-a").output)
    assert owned["owner"] == "team-a"
    paused = json.loads(invoke(sqlite_url, "pause", str(subscription["id"])).output)
    assert paused["active"] is False
    assert invoke(sqlite_url, "pause", "99").exit_code == 1
    assert invoke(sqlite_url, "deliveries", "--status", "dead", "--json").output == ""
    assert invoke(sqlite_url, "redeliver").exit_code == 2
    assert json.loads(invoke(sqlite_url, "redeliver", "--subscription", str(subscription["id"])).output) == {
        "queued": 0}


def _store_file(tmp_path, name):
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"store:\n  url: sqlite:///{tmp_path}/{name}.db\n")
    return config


def _listed_urls(result):
    assert result.exit_code == 0, result.output
    return [json.loads(line)["url"] for line in result.output.splitlines()]


def test_settings_come_from_config_then_intake_config_then_the_local_config_yaml(tmp_path, monkeypatch):
    """One loader (pipeline/cli_options.py) for every command group: --config wins, then $INTAKE_CONFIG,
    then ./config.yaml."""
    for name in ("explicit", "from_env", "config"):
        _store_file(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INTAKE_CONFIG", raising=False)
    monkeypatch.delenv("INTAKE_STORE__URL", raising=False)
    runner = CliRunner()
    runner.invoke(webhooks_group, ["add", "https://local.example/h"], catch_exceptions=False)
    runner.invoke(webhooks_group, ["add", "https://explicit.example/h", "--config", "explicit.yaml"])
    runner.invoke(webhooks_group, ["add", "https://env.example/h"], env={"INTAKE_CONFIG": "from_env.yaml"})
    assert _listed_urls(runner.invoke(webhooks_group, ["list", "--json"])) == ["https://local.example/h"]
    assert _listed_urls(runner.invoke(webhooks_group, ["list", "--json", "--config", "explicit.yaml"],
                                      env={"INTAKE_CONFIG": "from_env.yaml"})) == ["https://explicit.example/h"]
    assert _listed_urls(runner.invoke(webhooks_group, ["list", "--json"], env={"INTAKE_CONFIG": "from_env.yaml"})
                        ) == ["https://env.example/h"]


def test_a_missing_or_invalid_config_is_named_with_exit_status_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("store:\n  pool: [1\n")
    for args in (["--config", str(tmp_path / "absent.yaml")], ["--config", str(tmp_path / "bad.yaml")]):
        result = CliRunner().invoke(webhooks_group, ["list", *args])
        assert result.exit_code == 2 and args[1] in result.output, result.output
