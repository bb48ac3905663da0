"""Change or delete a webhook subscription (downstream/webhooks/subscriptions.py creates, lists,
pauses and resumes them). A running dispatcher notices a change at its next subscription refresh:
it stops that subscription's worker and starts one with the new URL, filter or secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select, update

from downstream.webhooks.subscriptions import Subscription, SubscriptionError, SubscriptionSpec, get_subscription
from downstream.webhooks.tables import webhook_deliveries, webhook_subscriptions
from pipeline.envelope import utcnow


class SubscriptionBusy(SubscriptionError):
    """The subscription cannot be deleted now (active, or deliveries being attempted); the message says why."""


def update_subscription(engine: Engine, subscription_id: int, spec: SubscriptionSpec, active: bool) -> Subscription:
    """Replace URL, filter, description and active flag; the secret too when `spec.secret` is set.
    Deliveries already recorded keep going to the subscription (to its new URL); the new filter
    applies to events read from now on."""
    values: dict[str, object] = {"url": spec.url, "event_types": list(spec.event_types),
                                 "urgencies": list(spec.urgencies), "description": spec.description,
                                 "active": active, "updated_at": utcnow()}
    if spec.secret:
        values["secret"] = spec.secret
    with engine.begin() as conn:
        found = conn.execute(update(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
                             .values(**values)).rowcount
    if not found:
        raise SubscriptionError(f"no subscription {subscription_id}")
    return get_subscription(engine, subscription_id)


def delete_subscription(engine: Engine, subscription_id: int, now: datetime | None = None) -> int:
    """Delete a paused subscription with all its deliveries; returns how many deliveries went with it.
    An active one is refused (pause it first, so the dispatcher stops its worker), and so is one
    with a delivery under a dispatcher's lease."""
    now = now or utcnow()
    subs, deliveries = webhook_subscriptions, webhook_deliveries
    with engine.begin() as conn:
        active = conn.execute(select(subs.c.active).where(subs.c.id == subscription_id)).scalar_one_or_none()
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
