"""`intake webhooks run` with `ops.enabled` as a real process: /healthz, /readyz and /metrics on the
ops port carry the dispatcher's figures; SIGTERM stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import yaml

from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription
from pipeline.config import OpsConfig, RelayConfig, Settings, StoreConfig
from tests.conftest import ROOT
from tests.downstream.webhook_helpers import append_jsonl, free_port, ticket_event

START_TIMEOUT_S = 90.0  # imports alone take seconds on a busy machine


def metric_lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_the_dispatcher_process_serves_its_metrics_and_health(sqlite_url, engine, tmp_path):
    events_file = tmp_path / "ticket-events.jsonl"
    port = free_port()
    settings = Settings(store=StoreConfig(url=sqlite_url), relay=RelayConfig(jsonl_path=str(events_file)),
                        ops=OpsConfig(enabled=True, port=port))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    nobody = f"http://127.0.0.1:{free_port()}/hooks"  # connection refused: the delivery waits for a retry
    sub = create_subscription(engine, SubscriptionSpec(url=nobody))
    append_jsonl(events_file, [ticket_event("T1", 0), ticket_event("T1", 1)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    log = tmp_path / "dispatcher.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "downstream.webhooks.commands", "run", "--config",
                                    str(config)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        backlog = f'omnintake_webhook_backlog{{subscription="{sub.id}"}}'
        failed = f'omnintake_webhook_deliveries_total{{outcome="failed",subscription="{sub.id}"}}'
        deadline = time.monotonic() + START_TIMEOUT_S
        text = ""
        # the ticket's second event waits behind the first, which failed and waits for its retry
        while not (metric_lines(text, backlog) == [f"{backlog} 2.0"] and metric_lines(text, failed)):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no webhook figures on /metrics:\n{text}\n{log.read_text()}"
            time.sleep(0.3)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                continue
        [failed_line] = metric_lines(text, failed)
        assert float(failed_line.split()[-1]) >= 1
        assert f'omnintake_webhook_deliveries_total{{outcome="delivered",subscription="{sub.id}"}}' not in text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"] == ["store"]
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, log.read_text()
