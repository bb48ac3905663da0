"""Webhook test kit: ticket events in the stream's format, and a real local receiver (uvicorn on
127.0.0.1) that checks signatures and can answer slowly, fail with 500, go down and come back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine

from downstream.webhooks.config import RetryPolicy
from downstream.webhooks.deliveries import StreamEvent, claim_due, delivery_id, mark_failed, record_events
from downstream.webhooks.signing import SIGNATURE_HEADER, SignatureError, verify
from downstream.webhooks.subscriptions import get_subscription
from pipeline.envelope import utcnow
from pipeline.events import TicketEvent, event_id

T0 = datetime(2030, 1, 1, tzinfo=UTC)  # after any subscription a test creates


def ticket_event(ticket: str, seq: int, kind: str = "ticket.message_appended",
                 urgency: str = "normal") -> dict[str, Any]:
    """A valid event (checked against the published model); `seq` is its place in the ticket's history."""
    snapshot = {"number": ticket, "customer_id": 1, "status": "open", "type": "complaint", "category": "delivery",
                "urgency": urgency, "language": "en", "channel": "email", "subject": f"seq {seq}",
                "message_count": seq + 1, "repeat_count": 0, "sla_due_at": T0, "created_at": T0, "updated_at": T0}
    event = TicketEvent(event_id=event_id(f"{ticket}:{seq}", kind), type=kind, occurred_at=T0, ticket=snapshot)
    return json.loads(event.model_dump_json())


def append_jsonl(path: Path, events: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Arrival:
    at: float
    delivery_id: str
    event_id: str
    ticket: str
    seq: int
    status: int


@dataclass
class Receiver:
    """An ASGI webhook endpoint. `mode`: ok, slow (answers after `delay_s`) or fail (HTTP 500)."""

    secret: str
    mode: str = "ok"
    delay_s: float = 0.3
    arrivals: list[Arrival] = field(default_factory=list)
    bad_signatures: int = 0
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # the sender died mid-request (a SIGKILL): no request
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            verify(self.secret, headers.get(SIGNATURE_HEADER.lower(), ""), body)
        except SignatureError:
            self.bad_signatures += 1
            return await _answer(send, 400)
        event = json.loads(body)
        status = 500 if self.mode == "fail" else 200
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        self.arrivals.append(Arrival(time.monotonic(), headers["omnintake-delivery-id"], event["event_id"],
                                     event["ticket"]["number"], int(event["ticket"]["subject"].split()[1]), status))
        await _answer(send, status)

    async def start(self) -> None:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Down: connections are refused until `start` again."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None

    def accepted(self) -> list[Arrival]:
        return [a for a in self.arrivals if a.status == 200]


async def _answer(send: Any, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"no"})


def order_violations(receiver: Receiver) -> int:
    """Requests for a ticket's event before its previous event (seq - 1) was accepted."""
    next_expected: dict[str, int] = {}
    violations = 0
    for a in receiver.arrivals:
        expected = next_expected.get(a.ticket, 0)
        if a.seq > expected:
            violations += 1
        if a.status == 200 and a.seq == expected:
            next_expected[a.ticket] = expected + 1
    return violations


def duplicates(receiver: Receiver) -> int:
    ids = [a.delivery_id for a in receiver.accepted()]
    return len(ids) - len(set(ids))


def make_dead_deliveries(engine: Engine, subscription_id: int, tickets: list[str]) -> list[str]:
    """One event per ticket, recorded for the subscription and failed until it is a dead letter; their delivery ids."""
    policy = RetryPolicy(first_delay_s=1, jitter=0, retry_for_s=1)
    events = [StreamEvent.parse(json.dumps(ticket_event(t, 0))) for t in tickets]
    subscription = get_subscription(engine, subscription_id)
    with engine.begin() as conn:
        record_events(conn, events, [subscription])
    now = utcnow()
    for attempt_at in (now, now + timedelta(seconds=2)):
        for claimed in claim_due(engine, subscription_id, len(tickets), 30, attempt_at):
            mark_failed(engine, claimed, 500, "HTTP 500 <b>no</b>", policy, attempt_at)
    return [delivery_id(subscription_id, e.event_id) for e in events]
