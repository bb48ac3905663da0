"""Dead letters through the API on the embedded store: list, inspect (bytes kept as sent), reprocess."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient


def test_list_inspect_reprocess(client: TestClient, auth, processor, envelope_dict) -> None:  # type: ignore[no-untyped-def]
    from pipeline.deadletters import SqlDeadLetterQueue
    from pipeline.processor import RawRecord

    broken = envelope_dict("My parcel never came", "dora")
    del broken["sender"]  # invalid: goes to the dead letters
    garbage = b"\xff\xfe not json"
    result = processor.process([RawRecord(json.dumps(broken).encode(), "t/1"), RawRecord(garbage, "t/2")])
    SqlDeadLetterQueue(processor.engine).put(result.dead_letters)

    listed = client.get("/v1/dead-letters", headers=auth("viewer")).json()
    assert len(listed) == 2 and all(d["stage"] and d["error"] and not d["reprocessed"] for d in listed)
    by_payload = {}
    for d in listed:
        detail = client.get(f"/v1/dead-letters/{d['id']}", headers=auth("viewer")).json()
        by_payload[detail["payload_text"]] = detail
    assert by_payload[None]["payload_base64"]  # not UTF-8: only base64
    assert json.loads(next(t for t in by_payload if t))["text"] == "My parcel never came"
    assert client.get("/v1/dead-letters/424242", headers=auth("viewer")).status_code == 404
    assert client.get("/v1/dead-letters/x:y", headers=auth("viewer")).status_code == 404

    ids = [d["id"] for d in listed]
    outcome = client.post("/v1/dead-letters/reprocess", json={"ids": [*ids, "99999"]}, headers=auth("operator"))
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["found"] == 2 and outcome.json()["missing"] == ["99999"]
    assert outcome.json()["dead_again"] == 2  # still broken: they come back as new dead letters
    assert all(d["reprocessed"] for d in client.get("/v1/dead-letters", headers=auth("viewer")).json()
               if d["id"] in ids)
    empty = client.post("/v1/dead-letters/reprocess", json={"ids": []}, headers=auth("operator"))
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "ids"]
