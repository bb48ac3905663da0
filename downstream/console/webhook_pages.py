"""Console page of the webhooks: each subscription with its state and backlog, its dead deliveries,
and redelivery of some or all of them (downstream/webhooks does the work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from downstream.api.tokens import Principal
from downstream.console.pages import back, render
from downstream.console.session import console_user, console_writer
from downstream.webhooks.deliveries import counts_by_status, list_deliveries, redeliver
from downstream.webhooks.subscriptions import list_subscriptions
from downstream.webhooks.tables import DEAD

router = APIRouter(prefix="/console/webhooks", include_in_schema=False)
DEAD_SHOWN = 100


@router.get("", response_class=HTMLResponse)
def webhooks_page(request: Request, principal: Annotated[Principal, Depends(console_user)],
                  subscription: int | None = None, notice: str = "") -> HTMLResponse:
    engine = request.app.state.engine
    rows = [{"sub": s, "counts": counts_by_status(engine, s.id)} for s in list_subscriptions(engine)]
    # the one asked for, else the first with dead deliveries, else the first
    chosen = next((r for r in rows if r["sub"].id == subscription), None) or next(
        (r for r in rows if r["counts"].get(DEAD)), rows[0] if rows else None)
    dead = list_deliveries(engine, chosen["sub"].id, DEAD, DEAD_SHOWN) if chosen else []
    return render(request, "webhooks.html", principal, subscriptions=rows, chosen=chosen, dead=dead,
                  notice=notice)


@router.post("/redeliver")
async def redeliver_dead(request: Request, _: Annotated[Principal, Depends(console_writer)]) -> Response:
    """The selected dead deliveries of a subscription, or all of them (`all` in the form)."""
    form = await request.form()
    subscription = str(form.get("subscription", ""))
    if not subscription.isdigit():
        return back("/console/webhooks", "no subscription chosen")
    page = f"/console/webhooks?subscription={subscription}"
    ids = [str(i) for i in form.getlist("delivery")]
    if not ids and form.get("all") is None:
        return back(page, "nothing selected")
    queued = redeliver(request.app.state.engine, ids, int(subscription))
    return back(page, f"{queued} deliveries queued again (same delivery ids, a fresh retry budget)")
