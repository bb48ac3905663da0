"""`intake api token create|revoke|list` and `intake api serve`: API tokens and the API server."""

from __future__ import annotations

import json
import sys

import click

from pipeline.cli_options import cli_settings, config_option, migrated_engine, store_engine
from pipeline.store.api_schema import ROLES


@click.group("api")
def api_group() -> None:
    """The REST API: its tokens and its server."""


@api_group.group("token")
def token_group() -> None:
    """API tokens (stored hashed; the secret is printed once, at creation)."""


@token_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@config_option
def token_create(name: str, role: str, config: str | None) -> None:
    """Create a token NAME with ROLE; prints the secret (on stdout, alone, for scripts)."""
    from downstream.api.tokens import TokenError, create_token

    engine = store_engine(config)
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
@config_option
def token_revoke(name: str, config: str | None) -> None:
    """Revoke the active token NAME: the next request with it gets 401."""
    from downstream.api.tokens import revoke_token

    engine = store_engine(config)
    with engine.begin() as conn:
        done = revoke_token(conn, name)
    engine.dispose()
    click.echo("revoked" if done else f"no active token named {name!r}")
    sys.exit(0 if done else 1)


@token_group.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="revoked tokens too")
@config_option
def token_list(include_revoked: bool, config: str | None) -> None:
    """Tokens as JSON lines: id, name, role, created_at, revoked_at (never the secret)."""
    from downstream.api.tokens import list_tokens

    engine = store_engine(config)
    with engine.connect() as conn:
        for row in list_tokens(conn, include_revoked):
            click.echo(json.dumps(row, default=str))
    engine.dispose()


@api_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@config_option
def serve(host: str, port: int, config: str | None) -> None:
    """Serve the REST API (OpenAPI document at /openapi.json) until interrupted."""
    import uvicorn

    from downstream.api.app import create_app

    settings = cli_settings(config)
    migrated_engine(settings).dispose()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
