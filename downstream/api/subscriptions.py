"""/v1/subscriptions: webhook subscriptions (create, list, get, change, pause, delete), their dead
deliveries, and redelivery (roles subscriber and admin).

A subscription belongs to the token (by name) that created it. A subscriber token sees, changes,
deletes and redelivers only its own; another's id answers 404, as an unknown one does, so ids do
not leak. Admin tokens see and manage all of them, including those made with `intake webhooks add`
(no owner). A new token with a revoked token's name takes over its subscriptions. The secret is
shown once, when it is created or rotated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from downstream.api.auth import ADMIN, SUBSCRIBER, require_role
from downstream.api.tokens import Principal
from downstream.webhooks.deliveries import counts_by_status, list_deliveries, redeliver
from downstream.webhooks.signing import new_secret
from downstream.webhooks.subscriptions import (
    Subscription,
    SubscriptionBusy,
    SubscriptionError,
    SubscriptionSpec,
    create_subscription,
    delete_subscription,
    get_subscription,
    list_subscriptions,
    update_subscription,
)
from downstream.webhooks.tables import DEAD

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])

Caller = Annotated[Principal, Depends(require_role(SUBSCRIBER))]


def _owned_by(caller: Principal) -> str | None:
    """Whose subscriptions the caller may touch: None (all) for admins, else the token's own."""
    return None if caller.role == ADMIN else caller.name


class SubscriptionOut(BaseModel):
    id: int
    url: str
    event_types: list[str] = Field(description="the event types sent; empty: every type")
    urgencies: list[str] = Field(description="the ticket urgencies sent; empty: every urgency")
    description: str
    active: bool = Field(description="false: paused; new events are not recorded and pending ones wait")
    created_at: datetime
    owner: str | None = Field(description="name of the API token that created it; null: made by an admin's CLI")
    deliveries: dict[str, int] = Field(description="deliveries by status: pending (the backlog), delivered, dead")


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="the signing secret; shown only when it is created or rotated")


class SubscriptionPatch(BaseModel):
    """The fields to change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    event_types: list[str] | None = None
    urgencies: list[str] | None = None
    description: str | None = None
    active: bool | None = Field(None, description="false pauses the subscription, true resumes it")
    secret: str | None = Field(None, description="a new signing secret (16 to 200 characters)")
    rotate_secret: bool = Field(False, description="generate a new signing secret; the answer shows it once")


class DeadDelivery(BaseModel):
    delivery_id: str
    event_id: str
    event_type: str
    ticket_number: str
    attempts: int
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="HTTP status of the last attempt; null when none came back")
    last_error: str | None
    dead_at: datetime | None


class RedeliverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delivery_ids: list[str] = Field(default_factory=list, max_length=1000,
                                    description="these deliveries (dead or delivered); empty: every dead one")


class Redelivered(BaseModel):
    queued: int = Field(description="deliveries queued again with a fresh retry budget")


def _out(engine: Engine, sub: Subscription, with_secret: bool = False) -> dict[str, Any]:
    shown = sub.public() | {"deliveries": counts_by_status(engine, sub.id)}
    return shown | {"secret": sub.secret} if with_secret else shown


def _found(engine: Engine, subscription_id: int, caller: Principal) -> Subscription:
    try:
        return get_subscription(engine, subscription_id, owned_by=_owned_by(caller))
    except SubscriptionError as exc:
        raise HTTPException(404, detail=str(exc)) from exc


@router.post("", status_code=201, response_model=SubscriptionWithSecret)
def create(request: Request, caller: Caller, body: SubscriptionSpec) -> dict[str, Any]:
    """A new subscription owned by the calling token; without a `secret`, one is generated. Only http
    and https URLs are accepted."""
    engine = request.app.state.engine
    return _out(engine, create_subscription(engine, body, owner=caller.name), with_secret=True)


@router.get("", response_model=list[SubscriptionOut])
def list_all(request: Request, caller: Caller,
             active: Annotated[bool | None, Query(description="only active (true) or paused (false) ones")] = None
             ) -> list[dict[str, Any]]:
    engine = request.app.state.engine
    return [_out(engine, s) for s in list_subscriptions(engine, owned_by=_owned_by(caller))
            if active is None or s.active == active]


@router.get("/{subscription_id}", response_model=SubscriptionOut, responses={404: {"description": "not found"}})
def get_one(request: Request, caller: Caller, subscription_id: int) -> dict[str, Any]:
    engine = request.app.state.engine
    return _out(engine, _found(engine, subscription_id, caller))


@router.patch("/{subscription_id}", response_model=SubscriptionWithSecret | SubscriptionOut,
              responses={404: {"description": "not found"}})
def change(request: Request, caller: Caller, subscription_id: int, body: SubscriptionPatch) -> dict[str, Any]:
    """Change URL, filter, description or secret, pause or resume. A running dispatcher follows within
    its subscription refresh interval."""
    engine = request.app.state.engine
    current = _found(engine, subscription_id, caller)
    merged = {"url": current.url, "event_types": current.event_types, "urgencies": current.urgencies,
              "description": current.description} | body.model_dump(
        exclude_unset=True, exclude={"active", "rotate_secret"}, exclude_none=True)
    if body.rotate_secret:
        merged["secret"] = new_secret()
    try:
        spec = SubscriptionSpec.model_validate(merged)
    except ValidationError as exc:  # named as a body field, as FastAPI names its own validation errors
        raise RequestValidationError([e | {"loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
                                     ) from exc
    active = current.active if body.active is None else body.active
    try:
        updated = update_subscription(engine, subscription_id, spec, active, owned_by=_owned_by(caller))
    except SubscriptionError as exc:  # deleted in between
        raise HTTPException(404, detail=str(exc)) from exc
    return _out(engine, updated, with_secret=spec.secret is not None)


@router.delete("/{subscription_id}", status_code=204,
               responses={404: {"description": "not found"}, 409: {"description": "active, or deliveries in flight"}})
def remove(request: Request, caller: Caller, subscription_id: int) -> Response:
    """Delete a paused subscription with its deliveries (pause it first with `{"active": false}`)."""
    try:
        delete_subscription(request.app.state.engine, subscription_id, owned_by=_owned_by(caller))
    except SubscriptionBusy as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except SubscriptionError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    return Response(status_code=204)


@router.get("/{subscription_id}/dead-deliveries", response_model=list[DeadDelivery],
            responses={404: {"description": "not found"}})
def dead_deliveries(request: Request, caller: Caller, subscription_id: int,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Deliveries that failed for the whole retry period, newest first."""
    engine = request.app.state.engine
    _found(engine, subscription_id, caller)
    return list_deliveries(engine, subscription_id, DEAD, limit)


@router.post("/{subscription_id}/redeliver", response_model=Redelivered,
             responses={404: {"description": "not found"}})
def redeliver_dead(request: Request, caller: Caller, subscription_id: int, body: RedeliverRequest
                   ) -> dict[str, int]:
    """Queue the given deliveries again, or every dead one; they keep their delivery id, so the
    receiver can still drop repeats. A redelivered event may arrive after later events of its ticket."""
    engine = request.app.state.engine
    _found(engine, subscription_id, caller)
    return {"queued": redeliver(engine, body.delivery_ids, subscription_id)}
