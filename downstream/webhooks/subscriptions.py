"""Subscriptions: a URL, an event filter (event types, ticket urgencies), the signing secret and the
owner (the API token that created it; None for those made with `intake webhooks add`).
These functions are what the REST API, the console and `intake webhooks` call.

`owned_by` narrows a lookup to one owner's subscriptions: another owner's id is "not found", so a
subscriber cannot learn which ids exist. None means every subscription (admins, the CLI, the dispatcher).
A running dispatcher notices a change at its next subscription refresh: it stops that subscription's
worker and starts one with the new URL, filter or secret."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, Engine, Row, Select, delete, func, insert, select, update

from downstream.webhooks.signing import new_secret
from downstream.webhooks.tables import webhook_deliveries, webhook_subscriptions
from pipeline.envelope import utcnow

_EVENT_TYPE = re.compile(r"^ticket\.[a-z_]+$")
URGENCIES = ("critical", "high", "normal", "low")


class SubscriptionError(ValueError):
    """A subscription that cannot exist (bad URL, unknown filter value) or is not found."""


class SubscriptionBusy(SubscriptionError):
    """The subscription cannot be deleted now (active, or deliveries being attempted); the message says why."""


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise SubscriptionError(f"the scheme must be http or https, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise SubscriptionError("a host is required")
    return url.strip()


class SubscriptionSpec(BaseModel):
    """What a caller asks for; validated before anything is stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    url: str = Field(max_length=2000)
    event_types: tuple[str, ...] = ()
    urgencies: tuple[str, ...] = ()
    secret: str | None = Field(default=None, min_length=16, max_length=200)
    description: str = Field(default="", max_length=500)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _EVENT_TYPE.match(item):
                raise ValueError(f"{item!r} is not an event type such as ticket.created")
        return tuple(sorted(set(value)))

    @field_validator("urgencies")
    @classmethod
    def _urgencies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - set(URGENCIES)
        if unknown:
            raise ValueError(f"unknown urgency {sorted(unknown)}; known: {list(URGENCIES)}")
        return tuple(sorted(set(value)))


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    secret: str
    event_types: tuple[str, ...]
    urgencies: tuple[str, ...]
    description: str
    active: bool
    created_at: datetime
    owner: str | None = None

    def matches(self, event_type: str, urgency: str | None) -> bool:
        return ((not self.event_types or event_type in self.event_types)
                and (not self.urgencies or urgency in self.urgencies))

    def public(self) -> dict[str, Any]:
        """Everything but the secret, for listings."""
        return {"id": self.id, "url": self.url, "event_types": list(self.event_types),
                "urgencies": list(self.urgencies), "description": self.description, "active": self.active,
                "created_at": self.created_at.isoformat(), "owner": self.owner}


def _from_row(row: Row[Any]) -> Subscription:
    return Subscription(row.id, row.url, row.secret, tuple(row.event_types), tuple(row.urgencies), row.description,
                        row.active, row.created_at, row.owner)


def _narrowed(query: Select[Any], owned_by: str | None) -> Select[Any]:
    return query if owned_by is None else query.where(webhook_subscriptions.c.owner == owned_by)


def create_subscription(engine: Engine, spec: SubscriptionSpec, owner: str | None = None) -> Subscription:
    """Store a subscription owned by `owner` (an API token's name; None: admin-managed); a secret is
    generated when none is given (show it to the caller once)."""
    now = utcnow()
    values = {"url": spec.url, "secret": spec.secret or new_secret(), "event_types": list(spec.event_types),
              "urgencies": list(spec.urgencies), "description": spec.description, "active": True,
              "created_at": now, "updated_at": now, "owner": owner}
    with engine.begin() as conn:
        new_id = conn.execute(insert(webhook_subscriptions).values(**values)).inserted_primary_key[0]
    return Subscription(new_id, values["url"], values["secret"], spec.event_types, spec.urgencies,
                        spec.description, True, now, owner)


def active_subscriptions(conn: Connection) -> list[Subscription]:
    query = select(webhook_subscriptions).where(webhook_subscriptions.c.active.is_(True))
    return [_from_row(r) for r in conn.execute(query.order_by(webhook_subscriptions.c.id))]


def list_subscriptions(engine: Engine, active_only: bool = False, *, owned_by: str | None = None
                       ) -> list[Subscription]:
    query = _narrowed(select(webhook_subscriptions), owned_by)
    if active_only:
        query = query.where(webhook_subscriptions.c.active.is_(True))
    with engine.connect() as conn:
        return [_from_row(r) for r in conn.execute(query.order_by(webhook_subscriptions.c.id))]


def get_subscription(engine: Engine, subscription_id: int, *, owned_by: str | None = None) -> Subscription:
    query = _narrowed(select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id), owned_by)
    with engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    if row is None:
        raise SubscriptionError(f"no subscription {subscription_id}")
    return _from_row(row)


def set_active(engine: Engine, subscription_id: int, active: bool) -> Subscription:
    """Pause (False) or resume (True). A paused subscription gets no new deliveries; its pending
    ones wait, and go out after it is resumed."""
    with engine.begin() as conn:
        found = conn.execute(update(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
                             .values(active=active, updated_at=utcnow())).rowcount
    if not found:
        raise SubscriptionError(f"no subscription {subscription_id}")
    return get_subscription(engine, subscription_id)


def rotate_secret(engine: Engine, subscription_id: int, secret: str | None = None) -> Subscription:
    secret = secret or new_secret()
    with engine.begin() as conn:
        found = conn.execute(update(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
                             .values(secret=secret, updated_at=utcnow())).rowcount
    if not found:
        raise SubscriptionError(f"no subscription {subscription_id}")
    return get_subscription(engine, subscription_id)


def update_subscription(engine: Engine, subscription_id: int, spec: SubscriptionSpec, active: bool, *,
                        owned_by: str | None = None) -> Subscription:
    """Replace URL, filter, description and active flag; the secret too when `spec.secret` is set.
    Deliveries already recorded keep going to the subscription (to its new URL); the new filter
    applies to events read from now on. The owner never changes."""
    values: dict[str, object] = {"url": spec.url, "event_types": list(spec.event_types),
                                 "urgencies": list(spec.urgencies), "description": spec.description,
                                 "active": active, "updated_at": utcnow()}
    if spec.secret:
        values["secret"] = spec.secret
    subs = webhook_subscriptions
    query = update(subs).where(subs.c.id == subscription_id)
    if owned_by is not None:
        query = query.where(subs.c.owner == owned_by)
    with engine.begin() as conn:
        found = conn.execute(query.values(**values)).rowcount
    if not found:
        raise SubscriptionError(f"no subscription {subscription_id}")
    return get_subscription(engine, subscription_id)


def delete_subscription(engine: Engine, subscription_id: int, now: datetime | None = None, *,
                        owned_by: str | None = None) -> int:
    """Delete a paused subscription with all its deliveries; returns how many deliveries went with it.
    An active one is refused (pause it first, so the dispatcher stops its worker), and so is one
    with a delivery under a dispatcher's lease."""
    now = now or utcnow()
    subs, deliveries = webhook_subscriptions, webhook_deliveries
    with engine.begin() as conn:
        active = conn.execute(_narrowed(select(subs.c.active).where(subs.c.id == subscription_id), owned_by)
                              ).scalar_one_or_none()
        if active is None:
            raise SubscriptionError(f"no subscription {subscription_id}")
        if active:
            raise SubscriptionBusy(f"subscription {subscription_id} is active: pause it first")
        leased = conn.execute(select(func.count()).where(deliveries.c.subscription_id == subscription_id,
                                                         deliveries.c.lease_until > now)).scalar_one()
        if leased:
            raise SubscriptionBusy(f"{leased} deliveries of subscription {subscription_id} are being attempted: "
                                   "try again once the dispatcher has stopped its worker")
        removed = conn.execute(delete(deliveries).where(deliveries.c.subscription_id == subscription_id)).rowcount
        conn.execute(delete(subs).where(subs.c.id == subscription_id))
    return removed
