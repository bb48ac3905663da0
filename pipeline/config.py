"""Typed settings, loaded from YAML with `INTAKE_` environment overrides, validated at start-up.

Environment overrides use `__` for nesting: `INTAKE_TRANSPORT=kafka`,
`INTAKE_STORE__URL=postgresql+psycopg://...`, `INTAKE_KAFKA__BOOTSTRAP_SERVERS=host:9092`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from classifiers.language import LanguageConfig
from connectors.config import ConnectorsConfig
from downstream.webhooks.config import WebhooksConfig

ENV_PREFIX = "INTAKE_"
NOT_SETTINGS = {"INTAKE_CONFIG", "INTAKE_MODELS_DIR"}  # read by their own code, not keys of Settings
_SECRETISH = re.compile(r"secret|password|token|api_key", re.I)


class ConfigError(Exception):
    """The configuration is invalid; the message names the key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicsConfig(_Frozen):
    raw: str = "omnintake.messages.raw.v1"
    events: str = "omnintake.tickets.events.v1"
    dead_letters: str = "omnintake.messages.dlq.v1"


class KafkaConfig(_Frozen):
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "omnintake-pipeline"
    topics: TopicsConfig = TopicsConfig()
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    batch_max_records: int = Field(default=1000, ge=1)
    fetch_timeout_ms: int = Field(default=200, ge=1)
    session_timeout_ms: int = Field(default=30000, ge=1000)
    drain_timeout_s: float = Field(default=20.0, gt=0)


class StoreConfig(_Frozen):
    url: str = "sqlite:///var/omnintake.db"
    echo: bool = False


class SlaConfig(_Frozen):
    critical: float = Field(default=4, gt=0, description="hours")
    high: float = Field(default=24, gt=0)
    normal: float = Field(default=72, gt=0)
    low: float = Field(default=168, gt=0)


class PipelineConfig(_Frozen):
    max_message_bytes: int = Field(default=1_048_576, ge=1024)
    max_attempts: int = Field(default=3, ge=1)
    stage_workers: int = Field(default=1, ge=0, description="processes for the per-message stages (kafka mode)")
    store_shards: int = Field(default=2, ge=1, le=16, description="parallel store transactions per batch (PostgreSQL)")
    dedup_window_hours: float = Field(default=24, gt=0)
    ticket_prefix: str = Field(default="OMN", pattern=r"^[A-Z][A-Z0-9]{1,9}$")
    sla_hours: SlaConfig = SlaConfig()
    vip_senders: tuple[str, ...] = ()


class RelayConfig(_Frozen):
    enabled: bool = True
    jsonl_path: str = "var/ticket-events.jsonl"
    poll_interval_s: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=500, ge=1)


class OpsConfig(_Frozen):
    """/metrics, /healthz and /readyz of `intake run` (off unless configured: tests run many processes)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=1, le=65535)


class LoggingConfig(_Frozen):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = False


class Settings(_Frozen):
    transport: Literal["embedded", "kafka"] = "embedded"
    store: StoreConfig = StoreConfig()
    kafka: KafkaConfig = KafkaConfig()
    pipeline: PipelineConfig = PipelineConfig()
    language: LanguageConfig = LanguageConfig()
    connectors: ConnectorsConfig = ConnectorsConfig()
    relay: RelayConfig = RelayConfig()
    ops: OpsConfig = OpsConfig()
    logging: LoggingConfig = LoggingConfig()
    webhooks: WebhooksConfig = WebhooksConfig()


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a section")
        node[path[-1]] = yaml.safe_load(raw) if raw else raw
    return data


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        # echo scalars only: a section's input may hold secrets (passwords, tokens, app secrets)
        shown = "input" in item and not isinstance(item["input"], dict | list) and not _SECRETISH.search(key)
        lines.append(f"  {key}: {item['msg']}" + (f" (got {item['input']!r})" if shown else ""))
    return "\n".join(lines)


def load_settings(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("INTAKE_CONFIG")
    data: dict[str, Any] = {}
    source = "defaults"
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {file} does not exist")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {file}: the top level must be a mapping")
        data = loaded or {}
        source = str(file)
    data = _apply_env(data, environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
