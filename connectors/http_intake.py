"""HTTP intake for web forms and other systems: POST JSON messages, API-key auth, Idempotency-Key.

`202 Accepted` is answered only after the sink durably accepted the messages. Replaying a
request with the same Idempotency-Key (or the same message ids) stores nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.base import Connector, HttpIntakeConfig, HttpRoutes, InputError, Sink
from connectors.json_messages import parse_messages
from connectors.metrics import ConnectorMetrics
from pipeline import metrics as pipeline_metrics
from pipeline.envelope import Envelope

log = logging.getLogger(__name__)


async def hand_over(sink: Sink, envelopes: Sequence[Envelope], metrics: ConnectorMetrics) -> None:
    """Accept for an HTTP caller, or answer so it knows what to do: 422 when the messages are
    refused for good, 503 with Retry-After when they were not accepted and a retry will do."""
    metrics.received += len(envelopes)
    try:
        await sink.accept(envelopes)
    except InputError as exc:
        metrics.rejected += 1
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    except Exception as exc:
        metrics.error(exc)
        log.error("%s could not hand over %d messages: %r", metrics.connector, len(envelopes), exc)
        raise HTTPException(status_code=503, detail="temporarily unavailable, retry",
                            headers={"Retry-After": "5"}) from exc
    metrics.accepted(len(envelopes))


def messages_router(cfg: HttpIntakeConfig, sink: Sink, metrics: ConnectorMetrics) -> APIRouter:
    """POST /v1/messages: JSON envelopes from web forms and other systems."""
    router = APIRouter()
    keys = [k.get_secret_value() for k in cfg.api_keys]
    seen: dict[str, dict[str, Any]] = {}

    @router.post("/v1/messages", status_code=202)
    async def post_messages(request: Request, x_api_key: str | None = Header(default=None),
                            idempotency_key: str | None = Header(default=None)) -> JSONResponse:
        if keys and not any(hmac.compare_digest(x_api_key or "", k) for k in keys):
            raise HTTPException(status_code=401, detail="missing or wrong X-Api-Key")
        body = await request.body()
        digest = hashlib.sha256(body).hexdigest()
        if idempotency_key and idempotency_key in seen:
            if seen[idempotency_key]["body_sha256"] != digest:
                raise HTTPException(status_code=422, detail="Idempotency-Key was used with a different body")
            return JSONResponse(seen[idempotency_key] | {"replayed": True}, status_code=202)
        if len(body) > cfg.max_body_bytes:
            raise HTTPException(status_code=413, detail=f"body over {cfg.max_body_bytes} bytes")
        try:
            envelopes = parse_messages(body)
        except InputError as exc:
            metrics.rejected += 1
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        await hand_over(sink, envelopes, metrics)
        answer = {"accepted": len(envelopes), "envelope_ids": [e.envelope_id for e in envelopes],
                  "body_sha256": digest}
        if idempotency_key:
            seen[idempotency_key] = answer
            if len(seen) > 10000:
                seen.pop(next(iter(seen)))
        return JSONResponse(answer, status_code=202)

    return router


def build_app(cfg: HttpIntakeConfig, sink: Sink, routes: Sequence[HttpRoutes] = (),
              metrics: ConnectorMetrics | None = None) -> FastAPI:
    """The intake server: POST /v1/messages (when `cfg.enabled`), the routes of every HTTP channel,
    /healthz and /metrics."""
    app = FastAPI(title="Omnintake HTTP intake", version="1")
    if cfg.enabled:
        app.include_router(messages_router(cfg, sink, metrics or ConnectorMetrics("http_intake")))
    for route in routes:
        app.include_router(route.router(sink))

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(pipeline_metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


class HttpIntakeConnector(Connector):
    name = "http_intake"

    def __init__(self, cfg: HttpIntakeConfig, routes: Sequence[HttpRoutes] = ()) -> None:
        self.cfg = cfg
        self.routes = list(routes)
        self.metrics = ConnectorMetrics(self.name)

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        log.info("HTTP intake on http://%s:%d/v1/messages", self.cfg.host, self.cfg.port)
        await serve_until(build_app(self.cfg, sink, self.routes, self.metrics), self.cfg.host, self.cfg.port, stop)


async def serve_until(app: FastAPI, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve `app` with uvicorn until `stop` is set; the service, not uvicorn, owns the signals."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving
