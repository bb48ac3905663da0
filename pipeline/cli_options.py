"""The `--config` option and the settings / store loaders that the command groups share
(`intake api`, `intake webhooks`, `intake classifiers`).

Which settings file: `--config`, else $INTAKE_CONFIG, else ./config.yaml when present, else the defaults
(environment variables INTAKE_* apply on top in every case, see pipeline/config.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

DEFAULT_CONFIG = "config.yaml"

config_option = click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None,
    help=f"YAML settings file (default: $INTAKE_CONFIG, else ./{DEFAULT_CONFIG} when present)")


class SettingsError(click.ClickException):
    """The settings cannot be loaded; the message names the file or key. Exit code 2, as for a usage error."""

    exit_code = 2


def config_path(config: str | None) -> str | None:
    """The settings file to read, or None for the defaults."""
    if config:
        return config
    return os.environ.get("INTAKE_CONFIG") or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None)


def cli_settings(config: str | None) -> Settings:
    try:
        return load_settings(config_path(config))
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None


def migrated_engine(settings: Settings) -> Engine:
    """The configured store, migrated to the current revision."""
    from pipeline.store.database import make_engine, upgrade

    try:
        upgrade(settings.store.url)
    except Exception as exc:  # a wrong URL, a refused connection, a missing driver: all the operator's to fix
        raise click.ClickException(f"the store is unreachable: {exc.__class__.__name__}: {exc}") from None
    return make_engine(settings.store.url)


def store_engine(config: str | None) -> Engine:
    """The store of the settings `config` names (see config_path), migrated to the current revision."""
    return migrated_engine(cli_settings(config))
