import asyncio
import json
import socket

import httpx
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.base import HttpIntakeConfig
from connectors.http_intake import HttpIntakeConnector, build_app
from tests.connectors.conformance import restart_mid_stream
from tests.connectors.test_dropfolder import RecordingSink


def client(keys=("s3cret",)):
    sink = RecordingSink()
    cfg = HttpIntakeConfig(api_keys=tuple(SecretStr(k) for k in keys))
    return TestClient(build_app(cfg, sink)), sink


def test_requires_the_api_key(envelope_dict):
    http, sink = client()
    assert http.post("/v1/messages", json=envelope_dict()).status_code == 401
    assert http.post("/v1/messages", json=envelope_dict(), headers={"X-Api-Key": "wrong"}).status_code == 401
    assert sink.envelopes == []
    assert http.get("/healthz").status_code == 200


def test_accepts_messages_and_honours_the_idempotency_key(envelope_dict):
    http, sink = client()
    headers = {"X-Api-Key": "s3cret", "Idempotency-Key": "form-77"}
    body = [envelope_dict(channel="web", text="Where is my order?"), envelope_dict(channel="web")]
    first = http.post("/v1/messages", content=json.dumps(body), headers=headers)
    second = http.post("/v1/messages", content=json.dumps(body), headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["accepted"] == 2 and second.json()["replayed"] is True
    assert len(sink.envelopes) == 2


def test_rejects_invalid_messages_with_the_field_named(envelope_dict):
    http, sink = client(keys=())
    answer = http.post("/v1/messages", json=envelope_dict(channel="pigeon"))
    assert answer.status_code == 422 and "channel" in answer.json()["detail"]
    assert sink.envelopes == []


def test_a_reused_idempotency_key_with_another_body_is_refused(envelope_dict):
    http, sink = client(keys=())
    headers = {"Idempotency-Key": "k-1"}
    assert http.post("/v1/messages", json=envelope_dict(text="first"), headers=headers).status_code == 202
    answer = http.post("/v1/messages", json=envelope_dict(text="second"), headers=headers)
    assert answer.status_code == 422 and len(sink.envelopes) == 1


def test_an_unavailable_sink_answers_503_and_stores_nothing(envelope_dict):
    sink = RecordingSink(fail=True)
    http = TestClient(build_app(HttpIntakeConfig(), sink))
    answer = http.post("/v1/messages", json=envelope_dict())
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def post_until_accepted(client: httpx.AsyncClient, url: str, body: list[dict], key: str) -> None:
    """What a well-behaved caller does: retry on 503 and on a refused connection, same Idempotency-Key."""
    while True:
        try:
            answer = await client.post(url, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            await asyncio.sleep(0.02)
            continue
        if answer.status_code == 202:
            return
        assert answer.status_code == 503, answer.text
        await asyncio.sleep(0.01)


def test_conformance_server_restarted_mid_stream_of_5000_messages(envelope_dict):
    port = free_port()
    batches = [[envelope_dict(channel="web", text=f"form {b}-{i}", customer=f"c{i}") for i in range(50)]
               for b in range(100)]
    expected = {f"web:{m['account']}:{m['message_id']}" for batch in batches for m in batch}

    async def feed():
        async with httpx.AsyncClient(timeout=10) as client:
            for number, batch in enumerate(batches):
                await post_until_accepted(client, f"http://127.0.0.1:{port}/v1/messages", batch, f"batch-{number}")

    def make():
        return HttpIntakeConnector(HttpIntakeConfig(port=port))

    report = asyncio.run(restart_mid_stream(make, expected, feed=feed, restarts=3, seed=11))
    report.assert_exactly_once()
    assert report.sink_failures > 0
    assert len(report.stops) == 4 and all(0 < n < 5000 for n in report.stops[:3]), report.stops


def test_metrics_endpoint_exposes_every_connector(envelope_dict):
    http, _ = client(keys=())
    assert http.post("/v1/messages", json=envelope_dict(channel="web")).status_code == 202
    text = http.get("/metrics").text
    name = 'omnintake_connector_published_total{connector="http_intake"}'
    published = [line for line in text.splitlines() if line.startswith(name)]
    assert published and float(published[0].split()[-1]) >= 1


def test_with_http_intake_disabled_only_the_channel_routes_are_served(envelope_dict):
    from connectors.transcripts import TranscriptRoutes, TranscriptsConfig

    sink = RecordingSink()
    http = TestClient(build_app(HttpIntakeConfig(enabled=False), sink, [TranscriptRoutes(TranscriptsConfig())]))
    assert http.post("/v1/messages", json=envelope_dict()).status_code == 404
    assert http.post("/v1/transcripts?format=vtt&call_id=c1",
                     content="WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n").status_code == 202
    assert len(sink.envelopes) == 1
