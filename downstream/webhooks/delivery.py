"""One HTTP attempt of one delivery: signed POST with httpx, a hard timeout over the whole request,
the answer reduced to success (any 2xx) or a failure with its reason. Redirects are failures."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from downstream.webhooks.deliveries import ClaimedDelivery
from downstream.webhooks.signing import SIGNATURE_HEADER, signature_header
from downstream.webhooks.subscriptions import Subscription

_KEEP_RESPONSE_BYTES = 512
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status: int | None
    error: str
    response_s: float | None = None  # request sent to answer read; None when no answer came back


def request_headers(subscription: Subscription, delivery: ClaimedDelivery, body: bytes, user_agent: str,
                    timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": "application/json", "User-Agent": user_agent,
            SIGNATURE_HEADER: signature_header(subscription.secret, timestamp, body),
            "Omnintake-Delivery-Id": delivery.delivery_id, "Omnintake-Event-Id": delivery.event_id,
            "Omnintake-Event-Type": delivery.event_type, "Omnintake-Attempt": str(delivery.attempts + 1)}


async def attempt(client: httpx.AsyncClient, subscription: Subscription, delivery: ClaimedDelivery,
                  timeout_s: float, user_agent: str) -> AttemptResult:
    body = delivery.body.encode()
    headers = request_headers(subscription, delivery, body, user_agent)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", subscription.url, content=body, headers=headers) as response:
                excerpt = b""
                async for chunk in response.aiter_bytes():  # a little of the answer for the operator, no more
                    excerpt += chunk
                    if len(excerpt) >= _KEEP_RESPONSE_BYTES:
                        break
    except TimeoutError:
        return AttemptResult(False, None, f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return AttemptResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
    except Exception as exc:  # anything else from the transport is this attempt's failure, not the worker's
        log.exception("webhook attempt to %s failed unexpectedly", subscription.url)
        return AttemptResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
    response_s = time.perf_counter() - started
    if 200 <= response.status_code < 300:
        return AttemptResult(True, response.status_code, "", response_s)
    text = excerpt[:_KEEP_RESPONSE_BYTES].decode("utf-8", "replace")
    return AttemptResult(False, response.status_code, f"HTTP {response.status_code}: {text}", response_s)
