"""Console pages: the queue by urgency and SLA, a ticket with its messages and label reasons,
status changes, dead letters with reprocess, the rules editor, and live counters."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from classifiers.corrections import CorrectionError
from downstream.api.auth import WRITERS
from downstream.api.schemas import SettableStatus
from downstream.api.ticket_changes import TicketConflict, TicketNotFound, change_status
from downstream.api.ticket_labels import relabel
from downstream.api.ticket_queries import CursorError, TicketFilter, ticket_page
from downstream.api.tokens import Principal
from downstream.console import rules_editor
from downstream.console.counters import live_counters
from downstream.console.session import COOKIE, console_user, console_writer, csrf_token, principal_of
from downstream.console.tickets import ticket_detail
from pipeline.config import Settings
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.dlq_commands import reprocess
from pipeline.envelope import utcnow

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
QUEUE_STATUSES = ("open", "pending")
PAGE_SIZE = 50

router = APIRouter(prefix="/console", include_in_schema=False)


def render(request: Request, template: str, principal: Principal | None, **context: Any) -> HTMLResponse:
    token = request.cookies.get(COOKIE, "")
    return TEMPLATES.TemplateResponse(request, template, {
        "user": principal, "csrf": csrf_token(token) if token else "", "can_write": bool(
            principal and principal.role in WRITERS), "now": utcnow(), **context})


def back(url: str, notice: str = "") -> RedirectResponse:
    """303 to `url`, carrying a notice for the next page."""
    return RedirectResponse(url + (("&" if "?" in url else "?") + urlencode({"notice": notice}) if notice else ""), 303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", None, error=None)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form()]) -> Response:
    principal = principal_of(request, token.strip())
    if principal is None or principal.role == "subscriber":
        return render(request, "login.html", None, error="That token is unknown, revoked, or not for people.")
    answer = RedirectResponse("/console/", 303)
    answer.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/console",
                      secure=request.url.scheme == "https")
    return answer


@router.post("/logout")
def logout() -> Response:
    answer = RedirectResponse("/console/login", 303)
    answer.delete_cookie(COOKIE, path="/console")
    return answer


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, principal: Annotated[Principal, Depends(console_user)],
          status: str = "", urgency: str = "", type: str = "", channel: str = "", language: str = "",
          q: str = "", cursor: str | None = None) -> HTMLResponse:
    statuses = [status] if status else list(QUEUE_STATUSES)
    found = TicketFilter(status=statuses, urgency=[urgency] if urgency else [], type=[type] if type else [],
                         channel=[channel] if channel else [], language=[language] if language else [],
                         q=q.strip() or None)
    try:
        with request.app.state.engine.connect() as conn:
            rows, next_cursor = ticket_page(conn, found, "urgency", PAGE_SIZE, cursor or None)
    except CursorError:
        rows, next_cursor = [], None
    filters = {"status": status, "urgency": urgency, "type": type, "channel": channel, "language": language, "q": q}
    return render(request, "queue.html", principal, tickets=rows, next_cursor=next_cursor, filters=filters)


@router.get("/counters.json")
def counters(request: Request, _: Annotated[Principal, Depends(console_user)]) -> JSONResponse:
    with request.app.state.engine.connect() as conn:
        return JSONResponse(live_counters(conn, utcnow()))


@router.get("/tickets/{number}", response_class=HTMLResponse)
def ticket(request: Request, number: str, principal: Annotated[Principal, Depends(console_user)],
           notice: str = "") -> HTMLResponse:
    with request.app.state.engine.connect() as conn:
        detail = ticket_detail(conn, number)
    if detail is None:
        raise HTTPException(404, detail=f"no ticket {number}")
    return render(request, "ticket.html", principal, ticket=detail, notice=notice,
                 statuses=get_args(SettableStatus))


@router.post("/tickets/{number}/status")
def set_status(request: Request, number: str, status: Annotated[str, Form()],
               _: Annotated[Principal, Depends(console_writer)]) -> Response:
    if status not in get_args(SettableStatus):
        raise HTTPException(422, detail=f"status must be one of {', '.join(get_args(SettableStatus))}")
    try:
        with request.app.state.engine.begin() as conn:
            _, event = change_status(conn, number, status, utcnow())
    except TicketNotFound as exc:
        raise HTTPException(404, detail=f"no ticket {number}") from exc
    except TicketConflict as exc:
        return back(f"/console/tickets/{number}", str(exc))
    return back(f"/console/tickets/{number}", f"status set to {status}" if event else "")


@router.post("/tickets/{number}/labels")
def set_labels(request: Request, number: str, principal: Annotated[Principal, Depends(console_writer)],
               type: Annotated[str | None, Form()] = None, category: Annotated[str | None, Form()] = None,
               urgency: Annotated[str | None, Form()] = None) -> Response:
    """One click relabels one field; the correction is kept as training data with who and when."""
    settings: Settings = request.app.state.settings
    try:
        with request.app.state.engine.begin() as conn:
            _, event = relabel(conn, number, principal.name, utcnow(), settings.pipeline.sla_hours, type=type,
                               category=category, urgency=urgency)
    except TicketNotFound as exc:
        raise HTTPException(404, detail=f"no ticket {number}") from exc
    except (TicketConflict, CorrectionError) as exc:
        return back(f"/console/tickets/{number}", str(exc))
    changed = ", ".join(f"{k} {v}" for k, v in (("type", type), ("category", category), ("urgency", urgency)) if v)
    return back(f"/console/tickets/{number}", f"relabelled: {changed}" if event else "")


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letters(request: Request, principal: Annotated[Principal, Depends(console_user)],
                 notice: str = "") -> HTMLResponse:
    letters = SqlDeadLetterQueue(request.app.state.engine).list(200)
    shown = []
    for letter in letters:
        try:
            payload = letter.payload.decode()[:2000]
        except UnicodeDecodeError:
            payload = f"({len(letter.payload)} bytes, not UTF-8)"
        shown.append({"letter": letter, "payload": payload})
    return render(request, "dead_letters.html", principal, letters=shown, notice=notice)


@router.post("/dead-letters/reprocess")
async def reprocess_letters(request: Request, _: Annotated[Principal, Depends(console_writer)]) -> Response:
    ids = [str(i) for i in (await request.form()).getlist("id")]
    if not ids:
        return back("/console/dead-letters", "nothing selected")
    outcome = await asyncio.to_thread(reprocess, request.app.state.settings, ids)
    return back("/console/dead-letters", f"reprocessed: {outcome}")


@router.get("/rules", response_class=HTMLResponse)
def rules(request: Request, principal: Annotated[Principal, Depends(console_user)],
          lang: str = "", notice: str = "") -> HTMLResponse:
    files = rules_editor.rule_files()
    chosen = lang or (files[0] if files else "")
    source = rules_editor.read(chosen) if chosen in files else ""
    return render(request, "rules.html", principal, files=files, lang=chosen, source=source, errors=[],
                 notice=notice)


@router.post("/rules")
def save_rules(request: Request, principal: Annotated[Principal, Depends(console_writer)],
               lang: Annotated[str, Form()], source: Annotated[str, Form()],
               action: Annotated[str, Form()] = "validate") -> Response:
    if lang not in rules_editor.rule_files():
        raise HTTPException(404, detail=f"no rules file for {lang!r}")
    errors = rules_editor.validate(lang, source)
    if errors or action != "save":
        return render(request, "rules.html", principal, files=rules_editor.rule_files(), lang=lang, source=source,
                     errors=errors, notice="" if errors else "valid: not saved yet")
    rules_editor.save(lang, source, principal.name, utcnow())
    return back(f"/console/rules?lang={lang}", "saved: running pipelines pick the rules up without a restart")


def due_label(due: datetime, now: datetime) -> str:
    minutes = int((due - now).total_seconds() // 60)
    late = minutes < 0
    minutes = abs(minutes)
    span = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h" if minutes < 2880 else f"{minutes // 1440} d"
    return f"{span} late" if late else f"in {span}"


TEMPLATES.env.filters["due"] = due_label
