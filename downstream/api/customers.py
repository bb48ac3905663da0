"""/v1/customers and /v1/merges: a customer with their identities, merge and un-merge (pipeline.identity)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import Connection, select

from downstream.api.auth import READERS, WRITERS, require_role
from downstream.api.schemas import Customer, Merge, MergeOutcome, MergeRequest
from downstream.api.store import ReadConnection
from pipeline.envelope import utcnow
from pipeline.identity import IdentityError, MergeResult, list_merges, merge, unmerge
from pipeline.store.schema import OPEN_STATUSES, customer_identities, customers, tickets

router = APIRouter(tags=["customers"])


def _customer(conn: Connection, customer_id: int) -> dict[str, Any]:
    row = conn.execute(select(customers).where(customers.c.id == customer_id)).mappings().first()
    if row is None:
        raise HTTPException(404, detail=f"no customer {customer_id}")
    identities = conn.execute(select(customer_identities).where(customer_identities.c.customer_id == customer_id)
                              .order_by(customer_identities.c.id)).mappings()
    open_tickets = conn.execute(select(tickets.c.number).where(
        tickets.c.customer_id == customer_id, tickets.c.status.in_(OPEN_STATUSES)).order_by(tickets.c.id)).scalars()
    return dict(row) | {"identities": [dict(i) for i in identities], "open_tickets": list(open_tickets)}


@router.get("/v1/customers", response_model=list[Customer], dependencies=[Depends(require_role(*READERS))])
def find_customers(conn: ReadConnection, identity: Annotated[str, Query(
        min_length=3, max_length=400, pattern=r"^[a-z_]+:.+$",
        description="kind:value, e.g. email:ann@example.com or phone:+4930123")]) -> list[dict[str, Any]]:
    """The customer holding an identity (an empty list when nobody does)."""
    kind, value = identity.split(":", 1)
    found = conn.execute(select(customer_identities.c.customer_id).where(
        customer_identities.c.kind == kind, customer_identities.c.value == value.strip().lower())).scalar()
    return [_customer(conn, found)] if found is not None else []


@router.get("/v1/customers/{customer_id}", response_model=Customer, dependencies=[Depends(require_role(*READERS))])
def get_customer(conn: ReadConnection, customer_id: int) -> dict[str, Any]:
    return _customer(conn, customer_id)


@router.get("/v1/customers/{customer_id}/merges", response_model=list[Merge],
            dependencies=[Depends(require_role(*READERS))])
def customer_merges(conn: ReadConnection, customer_id: int) -> list[dict[str, Any]]:
    """Merges this customer took part in (automatic and by operators), newest first."""
    return list_merges(conn, customer_id)


def _outcome(conn: Connection, result: MergeResult) -> dict[str, Any]:
    ids = [t for t in (result.kept_ticket, result.merged_ticket) if t is not None]
    numbers = dict(conn.execute(select(tickets.c.id, tickets.c.number).where(tickets.c.id.in_(ids))).tuples().all())
    return {"merge_id": result.merge_id, "source": result.source, "target": result.target,
            "kept_ticket": numbers.get(result.kept_ticket), "merged_ticket": numbers.get(result.merged_ticket)}


@router.post("/v1/customers/{customer_id}/merge", response_model=MergeOutcome,
             dependencies=[Depends(require_role(*WRITERS))])
def merge_customer(request: Request, customer_id: int, body: MergeRequest) -> dict[str, Any]:
    """Merge this customer into `into`: identities, tickets and messages move; two open tickets become one."""
    try:
        with request.app.state.engine.begin() as conn:
            return _outcome(conn, merge(conn, customer_id, body.into, utcnow(), reason=body.reason))
    except IdentityError as exc:
        raise HTTPException(409, detail=str(exc)) from exc


@router.post("/v1/merges/{merge_id}/undo", response_model=MergeOutcome, dependencies=[Depends(require_role(*WRITERS))])
def undo_merge(request: Request, merge_id: int) -> dict[str, Any]:
    """Un-merge: everything the merge moved goes back; an absorbed ticket reopens."""
    try:
        with request.app.state.engine.begin() as conn:
            return _outcome(conn, unmerge(conn, merge_id, utcnow()))
    except IdentityError as exc:
        status = 404 if "does not exist" in str(exc) else 409
        raise HTTPException(status, detail=str(exc)) from exc
