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
    assert "secret" not in listed and listed["deliveries"] == {}
    paused = json.loads(invoke(sqlite_url, "pause", str(subscription["id"])).output)
    assert paused["active"] is False
    assert invoke(sqlite_url, "pause", "99").exit_code == 1
    assert invoke(sqlite_url, "deliveries", "--status", "dead", "--json").output == ""
    assert invoke(sqlite_url, "redeliver").exit_code == 2
    assert json.loads(invoke(sqlite_url, "redeliver", "--subscription", str(subscription["id"])).output) == {
        "queued": 0}
