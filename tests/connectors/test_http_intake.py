import json

from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.base import HttpIntakeConfig
from connectors.http_intake import build_app
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
