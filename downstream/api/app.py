"""The application: the REST API (one router per resource, health without a token, everything else with
one) and the operator console under /console, served together."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from sqlalchemy import Engine, text

from downstream.api import classifier_versions, customers, deadletters, subscriptions, tickets
from downstream.api.schemas import Health
from downstream.console.app import add_console
from pipeline.config import Settings
from pipeline.store.database import make_engine

API_VERSION = "1"


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The API and the console on the configured store; pass `engine` to share one (tests, the service)."""
    app = FastAPI(title="Omnintake API", version=API_VERSION,
                  description="Tickets, customers, dead letters, webhook subscriptions and classifier versions of "
                              "Omnintake. Every endpoint but /healthz and /readyz needs `Authorization: Bearer "
                              "<token>`; roles: viewer, operator, admin, subscriber. The operator console is "
                              "served under /console.")
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.store.url)
    for module in (tickets, customers, deadletters, subscriptions, classifier_versions):
        app.include_router(module.router)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Health, tags=["health"], responses={503: {"description": "store unreachable"}})
    def readyz(request: Request) -> dict[str, str]:
        """The store answers a query."""
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to reach the store means not ready, whatever the driver raised
            raise HTTPException(503, detail=f"store unreachable: {type(exc).__name__}") from exc
        return {"status": "ready"}

    add_console(app)
    return app
