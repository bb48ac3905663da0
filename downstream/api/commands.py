"""`intake api token create|revoke|list` and `intake api serve`: API tokens and the API server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.config import ConfigError, Settings, load_settings
from pipeline.store.api_schema import ROLES

_config = click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                       help="YAML settings file (default: config.yaml when present)")


def _settings(config: str | None) -> Settings:
    try:
        return load_settings(config or ("config.yaml" if Path("config.yaml").is_file() else None))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _migrated_engine(config: str | None):  # type: ignore[no-untyped-def]
    from pipeline.store.database import make_engine, upgrade

    settings = _settings(config)
    upgrade(settings.store.url)
    return make_engine(settings.store.url)


@click.group("api")
def api_group() -> None:
    """The REST API: its tokens and its server."""


@api_group.group("token")
def token_group() -> None:
    """API tokens (stored hashed; the secret is printed once, at creation)."""


@token_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@_config
def token_create(name: str, role: str, config: str | None) -> None:
    """Create a token NAME with ROLE; prints the secret (on stdout, alone, for scripts)."""
    from downstream.api.tokens import TokenError, create_token

    engine = _migrated_engine(config)
    try:
        with engine.begin() as conn:
            token = create_token(conn, name, role)
    except TokenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        engine.dispose()
    click.echo(token)
    click.echo(f"token {name!r} ({role}) created; it is not shown again", err=True)


@token_group.command("revoke")
@click.argument("name")
@_config
def token_revoke(name: str, config: str | None) -> None:
    """Revoke the active token NAME: the next request with it gets 401."""
    from downstream.api.tokens import revoke_token

    engine = _migrated_engine(config)
    with engine.begin() as conn:
        done = revoke_token(conn, name)
    engine.dispose()
    click.echo("revoked" if done else f"no active token named {name!r}")
    sys.exit(0 if done else 1)


@token_group.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="revoked tokens too")
@_config
def token_list(include_revoked: bool, config: str | None) -> None:
    """Tokens as JSON lines: id, name, role, created_at, revoked_at (never the secret)."""
    from downstream.api.tokens import list_tokens

    engine = _migrated_engine(config)
    with engine.connect() as conn:
        for row in list_tokens(conn, include_revoked):
            click.echo(json.dumps(row, default=str))
    engine.dispose()


@api_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@_config
def serve(host: str, port: int, config: str | None) -> None:
    """Serve the REST API (OpenAPI document at /openapi.json) until interrupted."""
    import uvicorn

    from downstream.api.app import create_app
    from pipeline.store.database import upgrade

    settings = _settings(config)
    upgrade(settings.store.url)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
