"""A Telegram Bot API server on 127.0.0.1 for tests: `/bot<token>/<method>`, as documented at
https://core.telegram.org/bots/api (getMe, getUpdates, setWebhook, deleteWebhook, getWebhookInfo).

getUpdates keeps the documented semantics: an update is confirmed (and forgotten) once a call
passes an `offset` above its `update_id`; a call waits up to `timeout` seconds for updates; a newer
getUpdates ends a waiting one with 409; getUpdates while a webhook is set answers 409. Tests put
updates in with `enqueue` and make the next calls fail with `fail_next` (429 with retry_after, 5xx).

The server runs uvicorn in its own thread and event loop, so it answers whatever the test's loop does.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from tests.fakes.telegram_updates import JSON

TOKEN = "123456:AAE-fake_token_for_tests"
_INT_PARAMS = {"offset", "limit", "timeout", "max_connections"}
_LIST_PARAMS = {"allowed_updates"}
_BOOL_PARAMS = {"drop_pending_updates"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float                 # time.monotonic() when the server received it
    status: int | None = None  # None while a long poll waits


class FakeTelegram:
    def __init__(self, token: str = TOKEN, first_update_id: int = 804_100_000) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self._next_id = first_update_id
        self._lock = threading.Lock()
        self._updates: list[JSON] = []       # unconfirmed, in update_id order
        self._faults: dict[str, deque[tuple[int, JSON]]] = {}
        self._allowed: list[str] | None = None
        self._poller = 0                      # generation of the newest getUpdates
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] | None = None
        self.confirmed_below = 0
        self.enqueued_at: dict[int, float] = {}
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- what tests call -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def enqueue(self, *updates: JSON) -> list[int]:
        """Add updates (each `{"message": {...}}` or another update field); returns their update_ids."""
        ids = []
        with self._lock:
            now = time.monotonic()
            for update in updates:
                update_id = self._next_id
                self._next_id += 1
                self._updates.append({"update_id": update_id, **update})
                self.enqueued_at[update_id] = now
                ids.append(update_id)
        self._notify()
        return ids

    def fail_next(self, status: int, description: str | None = None, *, retry_after: int | None = None,
                  times: int = 1, method: str = "getUpdates") -> None:
        """The next `times` calls of `method` answer this error, as Telegram formats it."""
        body: JSON = {"ok": False, "error_code": status}
        if retry_after is not None:
            body["description"] = description or f"Too Many Requests: retry after {retry_after}"
            body["parameters"] = {"retry_after": retry_after}
        else:
            body["description"] = description or {500: "Internal Server Error", 502: "Bad Gateway"}.get(
                status, "Service Unavailable")
        with self._lock:
            self._faults.setdefault(method, deque()).extend([(status, body)] * times)

    @property
    def pending(self) -> list[JSON]:
        """Updates Telegram still holds: not yet confirmed by an offset."""
        with self._lock:
            return list(self._updates)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            ready.set()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), name="fake-telegram", daemon=True)
        self._thread.start()
        ready.wait(5)
        deadline = time.monotonic() + 5
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Telegram server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server and self._thread:
            self._server.should_exit = True
            self._notify()
            self._thread.join(10)

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API ---------------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._wake_pollers)

    def _wake_pollers(self) -> None:
        assert self._wake is not None
        self._wake.set()
        self._wake = asyncio.Event()

    def app(self) -> FastAPI:
        app = FastAPI()
        handlers = {"getMe": self._get_me, "getUpdates": self._get_updates, "setWebhook": self._set_webhook,
                    "deleteWebhook": self._delete_webhook, "getWebhookInfo": self._webhook_info}

        @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
        async def call(token: str, method: str, request: Request) -> JSONResponse:
            try:
                params = await _params(request)
            except ClientDisconnect:  # the client cancelled its call (a connector stopping)
                return JSONResponse({}, status_code=499)
            record = Call(method, params, time.monotonic())
            self.calls.append(record)
            if token != self.token:
                status, body = 401, _error(401, "Unauthorized")
            elif (handler := handlers.get(method)) is None:
                status, body = 404, _error(404, "Not Found: method not found")
            else:
                with self._lock:
                    fault = self._faults.get(method)
                    status, body = fault.popleft() if fault else (200, {})
                if not body:
                    status, body = await handler(params)
            record.status = status
            return JSONResponse(body, status_code=status)

        return app

    async def _get_me(self, params: dict[str, Any]) -> tuple[int, JSON]:
        return 200, _ok({"id": self.bot_id, "is_bot": True, "first_name": "Shop support",
                         "username": "shop_support_bot", "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False})

    async def _get_updates(self, params: dict[str, Any]) -> tuple[int, JSON]:
        if self.webhook:
            return 409, _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
        offset, limit, timeout = params.get("offset"), params.get("limit", 100), params.get("timeout", 0)
        if not 1 <= limit <= 100:
            limit = 100
        with self._lock:
            self._poller += 1
            me = self._poller
            if "allowed_updates" in params:  # an empty list means "all but chat_member"; absent: keep
                self._allowed = params["allowed_updates"] or None
            self._confirm(offset)
        self._wake_pollers()  # an older waiting getUpdates answers 409 now
        assert self._loop is not None
        deadline = self._loop.time() + max(timeout, 0)
        while True:
            with self._lock:
                if self._poller != me:
                    return 409, _error(409, "Conflict: terminated by other getUpdates request; "
                                            "make sure that only one bot instance is running")
                batch = self._deliverable(offset, limit)
            remaining = deadline - self._loop.time()
            if batch or remaining <= 0 or (self._server and self._server.should_exit):
                return 200, _ok(batch)
            assert self._wake is not None
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:  # -N: all but the last N updates are forgotten
            self._updates = self._updates[offset:]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self.confirmed_below = max(self.confirmed_below, offset)

    def _deliverable(self, offset: int | None, limit: int) -> list[JSON]:
        if self._allowed is not None:  # updates of types the bot does not want are never delivered
            self._updates = [u for u in self._updates if _update_type(u) in self._allowed]
        start = offset if offset is not None and offset > 0 else 0
        return [u for u in self._updates if u["update_id"] >= start][:limit]

    async def _set_webhook(self, params: dict[str, Any]) -> tuple[int, JSON]:
        url = params.get("url", "")
        if not url:
            return await self._delete_webhook(params)
        if not url.startswith("https://"):
            return 400, _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        with self._lock:
            self.webhook = {"url": url, "secret_token": params.get("secret_token"),
                            "allowed_updates": params.get("allowed_updates")}
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    async def _delete_webhook(self, params: dict[str, Any]) -> tuple[int, JSON]:
        with self._lock:
            had = self.webhook is not None
            self.webhook = None
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return 200, {"ok": True, "result": True,
                     "description": "Webhook was deleted" if had else "Webhook is already deleted"}

    async def _webhook_info(self, params: dict[str, Any]) -> tuple[int, JSON]:
        with self._lock:
            info: JSON = {"url": self.webhook["url"] if self.webhook else "", "has_custom_certificate": False,
                          "pending_update_count": len(self._updates)}
        return 200, _ok(info)


def _ok(result: Any) -> JSON:
    return {"ok": True, "result": result}


def _error(code: int, description: str) -> JSON:
    return {"ok": False, "error_code": code, "description": description}


def _update_type(update: JSON) -> str:
    return next(k for k in update if k != "update_id")


async def _params(request: Request) -> dict[str, Any]:
    """Parameters as the Bot API takes them: query string, form (what ptb sends: each value
    JSON-encoded unless a plain string) or a JSON body."""
    raw: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    kind = request.headers.get("content-type", "")
    if body and kind.startswith("application/json"):
        raw.update(json.loads(body))
    elif body:
        raw.update(parse_qsl(body.decode(), keep_blank_values=True))
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and key in _INT_PARAMS:
            value = int(value)
        elif isinstance(value, str) and key in _LIST_PARAMS:
            value = json.loads(value)
        elif isinstance(value, str) and key in _BOOL_PARAMS:
            value = value.lower() == "true"
        params[key] = value
    return params


@contextmanager
def running(token: str = TOKEN) -> Iterator[FakeTelegram]:
    with FakeTelegram(token) as fake:
        yield fake
