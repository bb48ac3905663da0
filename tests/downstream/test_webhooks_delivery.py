"""One HTTP attempt: what counts as delivered, the headers a receiver gets, failures as data."""

import asyncio
from datetime import UTC, datetime

import httpx

from downstream.webhooks.deliveries import ClaimedDelivery
from downstream.webhooks.delivery import attempt
from downstream.webhooks.signing import verify
from downstream.webhooks.subscriptions import Subscription

SUB = Subscription(1, "https://hooks.example/in", "whsec_delivery_test_secret", (), (), "", True,
                   datetime(2026, 1, 1, tzinfo=UTC))
DELIVERY = ClaimedDelivery(7, "5b0c6a7e-0000-5000-8000-000000000001", "e-1", "ticket.created", "OMN-1", 2, None,
                           '{"event_id": "e-1"}')


def run(handler, timeout_s: float = 2.0):
    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await attempt(client, SUB, DELIVERY, timeout_s, "test-agent")

    return asyncio.run(go())


def test_a_2xx_is_delivered_and_the_request_carries_what_the_receiver_needs():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(202)

    result = run(handler)
    assert result.ok and result.status == 202
    [request] = seen
    assert request.headers["Omnintake-Delivery-Id"] == DELIVERY.delivery_id
    assert request.headers["Omnintake-Attempt"] == "3" and request.headers["Content-Type"] == "application/json"
    assert request.content == DELIVERY.body.encode()
    verify(SUB.secret, request.headers["Omnintake-Signature"], request.content)


def test_redirects_errors_and_exceptions_are_failed_attempts():
    redirect = run(lambda r: httpx.Response(302, headers={"Location": "https://elsewhere.example/"}))
    assert not redirect.ok and redirect.status == 302
    server_error = run(lambda r: httpx.Response(500, text="database down" * 100))
    assert not server_error.ok and server_error.error.startswith("HTTP 500: database down")
    assert len(server_error.error) < 600

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    refused = run(refuse)
    assert not refused.ok and refused.status is None and "ConnectError" in refused.error

    def broken(request):
        raise RuntimeError("transport bug")

    assert "RuntimeError" in run(broken).error


def test_a_receiver_slower_than_the_timeout_is_a_failure():
    async def slow(request):
        await asyncio.sleep(1)
        return httpx.Response(200)

    result = run(slow, timeout_s=0.1)
    assert not result.ok and "no answer within 0.1 s" in result.error
