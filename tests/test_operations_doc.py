"""docs/operations.md stays true: its metric tables name exactly the metrics the registry exposes,
and its alert rules load in Prometheus's promtool and fire on the series they are written for."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric

from pipeline.metrics import REGISTRY
from tests.conftest import ROOT

DOC = ROOT / "docs" / "operations.md"

RULE_TESTS = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'omnintake_webhook_deliveries_total{subscription="1",outcome="delivered"}'
        values: '0+10x40'
      - series: 'omnintake_webhook_deliveries_total{subscription="1",outcome="dead"}'
        values: '0x20 1x20'
      - series: 'omnintake_webhook_deliveries_total{subscription="2",outcome="delivered"}'
        values: '0+1x40'
      - series: 'omnintake_webhook_deliveries_total{subscription="2",outcome="failed"}'
        values: '0+5x40'
      - series: 'omnintake_consumer_lag{topic="raw",partition="0"}'
        values: '500x40'
      - series: 'omnintake_pipeline_messages_total{step="store",channel="email"}'
        values: '100x40'
      - series: 'omnintake_dead_letters_total{stage="classify"}'
        values: '0+3x40'
    alert_rule_test:
      - eval_time: 25m
        alertname: OmnintakeWebhookDeadDeliveries
        exp_alerts:
          - exp_labels: {severity: warning, subscription: "1"}
            exp_annotations:
              summary: "subscription 1: 1 deliveries given up"
              description: "intake webhooks deliveries --subscription 1 --status dead; then redeliver"
      - eval_time: 40m
        alertname: OmnintakeWebhookReceiverFailing
        exp_alerts:
          - exp_labels: {severity: warning, subscription: "2"}
            exp_annotations: {summary: "subscription 2: most attempts fail; its backlog is growing"}
      - eval_time: 30m
        alertname: OmnintakePipelineStalled
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations: {summary: "nothing stored for 10 minutes while records are waiting"}
      - eval_time: 40m
        alertname: OmnintakeDeadLetters
        exp_alerts:
          - exp_labels: {severity: warning, stage: classify}
            exp_annotations: {summary: "stage classify: 3 dead letters a minute (intake dlq list)"}
      - eval_time: 40m
        alertname: OmnintakeConsumerLagHigh
        exp_alerts: []
"""


def exposed_name(family: Metric) -> str:
    return f"{family.name}_total" if family.type == "counter" else family.name


def test_the_metric_tables_name_exactly_the_registered_metrics() -> None:
    table_rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `omnintake_")]
    documented = {re.match(r"\| `(omnintake_[a-z_]+)", row).group(1) for row in table_rows}  # type: ignore[union-attr]
    registered = {exposed_name(family) for family in REGISTRY.collect()}
    assert documented == registered


def test_the_alert_rules_load_and_fire_in_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:  # CI installs it (deploy/test-tools.sh): there a missing tool is a failure
        (pytest.fail if os.environ.get("CI") else pytest.skip)("promtool is missing: deploy/test-tools.sh install")
    rules = re.search(r"```yaml\n(groups:.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert rules, "no alert rules block in docs/operations.md"
    (tmp_path / "rules.yml").write_text(rules.group(1))
    (tmp_path / "tests.yml").write_text(RULE_TESTS)
    for command in (["check", "rules", "rules.yml"], ["test", "rules", "tests.yml"]):
        done = subprocess.run([promtool, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
