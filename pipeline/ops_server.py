"""The ops server of `intake run`: GET /metrics (Prometheus: pipeline and connectors), /healthz
(the process answers) and /readyz (every dependency answers: the store, and Kafka when that is the
transport). Readiness failures are 503 with the reasons, so an orchestrator stops routing to us."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text

from pipeline import metrics

ReadinessCheck = Callable[[], Awaitable[None]]  # raises when not ready
CHECK_TIMEOUT_S = 2.0


def store_check(engine: Engine) -> ReadinessCheck:
    def ping() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def check() -> None:
        await asyncio.to_thread(ping)

    return check


def build_ops_app(checks: Mapping[str, ReadinessCheck]) -> FastAPI:
    app = FastAPI(title="Omnintake ops", version="1", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def ready() -> JSONResponse:
        failures: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            except Exception as exc:  # any failure means not ready; the reason goes to the caller
                failures[name] = f"{exc.__class__.__name__}: {exc}"[:300]
        if failures:
            return JSONResponse({"status": "unavailable", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ready", "checks": sorted(checks)})

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
