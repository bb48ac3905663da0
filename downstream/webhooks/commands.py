"""`intake webhooks ...`: subscriptions, deliveries and dead letters, redelivery, and the dispatcher.
Registered in pipeline/cli.py with `main.add_command(webhooks_group)`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from downstream.webhooks.config import WebhooksConfig
from pipeline.cli_options import cli_settings, config_option, migrated_engine, store_engine
from pipeline.config import Settings


def webhooks_config(settings: Settings, override_file: str | None = None) -> WebhooksConfig:
    """The `webhooks:` section of the settings, or a YAML file holding just that section."""
    if override_file is None:
        return getattr(settings, "webhooks", None) or WebhooksConfig()
    try:
        return WebhooksConfig.model_validate(yaml.safe_load(Path(override_file).read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        click.echo(f"error: {override_file}: {exc}", err=True)
        sys.exit(2)


def _echo_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str, ensure_ascii=False))
        return
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")) for c in columns))


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook subscriptions, deliveries, dead letters and the dispatcher."""


@webhooks_group.command("add")
@click.argument("url")
@click.option("--event", "event_types", multiple=True, help="event type to send (repeat; default: all)")
@click.option("--urgency", "urgencies", multiple=True, help="ticket urgency to send (repeat; default: all)")
@click.option("--secret", default=None, help="signing secret (default: generated and printed once)")
@click.option("--description", default="")
@click.option("--owner", default=None,
              help="name of the API token that may manage it through the API (default: none, admins only)")
@config_option
def add(url: str, event_types: tuple[str, ...], urgencies: tuple[str, ...], secret: str | None, description: str,
        owner: str | None, config: str | None) -> None:
    """Subscribe URL; prints the subscription with its secret as JSON."""
    from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription

    try:
        spec = SubscriptionSpec(url=url, event_types=event_types, urgencies=urgencies, secret=secret,
                                description=description)
    except ValidationError as exc:
        for error in exc.errors():
            click.echo(f"error: {'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        sys.exit(2)
    subscription = create_subscription(store_engine(config), spec, owner=owner)
    click.echo(json.dumps({**subscription.public(), "secret": subscription.secret}))


@webhooks_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@config_option
def list_command(as_json: bool, config: str | None) -> None:
    """Subscriptions (without secrets) with their delivery counts."""
    from downstream.webhooks.deliveries import counts_by_status
    from downstream.webhooks.subscriptions import list_subscriptions

    engine = store_engine(config)
    rows = [{**s.public(), "deliveries": counts_by_status(engine, s.id)} for s in list_subscriptions(engine)]
    _echo_rows(rows, as_json, ["id", "active", "owner", "url", "event_types", "urgencies", "deliveries"])


@webhooks_group.command("pause")
@click.argument("subscription_id", type=int)
@config_option
def pause(subscription_id: int, config: str | None) -> None:
    """Stop recording new deliveries for a subscription (pending ones wait)."""
    _set_active(subscription_id, False, config)


@webhooks_group.command("resume")
@click.argument("subscription_id", type=int)
@config_option
def resume(subscription_id: int, config: str | None) -> None:
    _set_active(subscription_id, True, config)


def _set_active(subscription_id: int, active: bool, config: str | None) -> None:
    from downstream.webhooks.subscriptions import SubscriptionError, set_active

    try:
        click.echo(json.dumps(set_active(store_engine(config), subscription_id, active).public()))
    except SubscriptionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@webhooks_group.command("deliveries")
@click.option("--subscription", "subscription_id", type=int, default=None)
@click.option("--status", type=click.Choice(["pending", "delivered", "dead"]), default=None,
              help="dead: the dead letters")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@config_option
def deliveries(subscription_id: int | None, status: str | None, limit: int, as_json: bool,
               config: str | None) -> None:
    """Deliveries, newest first."""
    from downstream.webhooks.deliveries import list_deliveries

    rows = list_deliveries(store_engine(config), subscription_id, status, limit)
    _echo_rows(rows, as_json, ["delivery_id", "subscription_id", "status", "attempts", "event_type",
                               "ticket_number", "last_error"])


@webhooks_group.command("redeliver")
@click.argument("delivery_ids", nargs=-1)
@click.option("--subscription", "subscription_id", type=int, default=None,
              help="without delivery ids: every dead letter of this subscription")
@config_option
def redeliver_command(delivery_ids: tuple[str, ...], subscription_id: int | None, config: str | None) -> None:
    """Queue dead (or delivered) deliveries again; they keep their delivery ids."""
    from downstream.webhooks.deliveries import redeliver

    if not delivery_ids and subscription_id is None:
        click.echo("error: give delivery ids or --subscription", err=True)
        sys.exit(2)
    click.echo(json.dumps({"queued": redeliver(store_engine(config), delivery_ids, subscription_id)}))


@webhooks_group.command("run")
@click.option("--webhooks-config", "webhooks_config_file", type=click.Path(dir_okay=False, exists=True),
              default=None, help="YAML with the webhooks section alone (overrides the settings' one)")
@config_option
def run(webhooks_config_file: str | None, config: str | None) -> None:
    """Deliver ticket events to the subscriptions until SIGTERM; with `ops.enabled`, serve /metrics,
    /healthz and /readyz on the ops port meanwhile."""
    from connectors.http_intake import serve_until
    from downstream.webhooks.dispatcher import WebhookDispatcher, make_source
    from pipeline.logs import configure
    from pipeline.ops_server import build_ops_app, store_check
    from pipeline.service import install_signal_handlers

    settings = cli_settings(config)
    cfg = webhooks_config(settings, webhooks_config_file)
    configure(settings.logging)
    engine = migrated_engine(settings)

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)

        async def dispatch() -> None:
            try:
                await WebhookDispatcher(engine, cfg, make_source(engine, cfg, settings)).run(stop)
            finally:
                stop.set()  # the ops server goes with it

        if not settings.ops.enabled:
            return await dispatch()
        ops = build_ops_app({"store": store_check(engine)})
        await asyncio.gather(dispatch(), serve_until(ops, settings.ops.host, settings.ops.port, stop))

    asyncio.run(main())


if __name__ == "__main__":
    webhooks_group()
