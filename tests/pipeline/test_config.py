import subprocess
import sys

import pytest

from pipeline.config import ConfigError, load_settings
from tests.conftest import ROOT


def test_shipped_config_is_the_embedded_default():
    settings = load_settings(ROOT / "config.yaml", environ={})
    assert settings.transport == "embedded"
    assert settings.store.url.startswith("sqlite:")


def test_environment_overrides_nested_keys():
    settings = load_settings(ROOT / "config.yaml", environ={
        "INTAKE_TRANSPORT": "kafka", "INTAKE_STORE__URL": "postgresql+psycopg://u:p@h/db",
        "INTAKE_KAFKA__PARTITIONS": "12"})
    assert settings.transport == "kafka"
    assert settings.store.url == "postgresql+psycopg://u:p@h/db"
    assert settings.kafka.partitions == 12


@pytest.mark.parametrize("yaml_text, key", [
    ("transport: carrier-pigeon\n", "transport"),
    ("kafka:\n  partitions: 0\n", "kafka.partitions"),
    ("pipeline:\n  ticket_prefix: 'lower'\n", "pipeline.ticket_prefix"),
    ("store:\n  urll: x\n", "store.urll"),
])
def test_invalid_config_names_the_key(tmp_path, yaml_text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert key in str(info.value)


def test_cli_exits_with_the_key_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kafka:\n  partitions: -3\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "kafka.partitions" in proc.stderr


def test_config_errors_never_echo_secrets(tmp_path):
    (tmp_path / "c.yaml").write_text("connectors:\n  imap:\n    enabled: true\n    accounts:\n"
                                     "      - host: imap.example\n        username: u\n"
                                     "        password: hunter2-secret\n        oauth2_token: tok-123\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.yaml", environ={})
    assert "connectors.imap.accounts.0" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "tok-123" not in str(caught.value)
