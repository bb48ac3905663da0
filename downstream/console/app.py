"""Mount the console on the API application: pages, static files, sign-in redirects and the
security headers every console response carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from downstream.console import classifier_pages, pages, webhook_pages
from downstream.console.session import SignInRequired

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def add_console(app: FastAPI) -> None:
    """Mount the console; create_app already does, so a second call changes nothing."""
    if getattr(app.state, "console_mounted", False):
        return
    app.state.console_mounted = True
    app.include_router(pages.router)
    app.include_router(classifier_pages.router)
    app.include_router(webhook_pages.router)
    app.mount("/console/static", StaticFiles(directory=Path(__file__).with_name("static")), name="console-static")

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.url.path.endswith(".json"):
            return Response(status_code=401)
        return RedirectResponse("/console/login", 303)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/console"):
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/console/", 307)
