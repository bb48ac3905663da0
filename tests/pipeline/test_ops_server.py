from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from pipeline import metrics
from pipeline.ops_server import build_ops_app, store_check


def test_ready_when_every_check_passes(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/ops.db")
    client = TestClient(build_ops_app({"store": store_check(engine)}))
    assert client.get("/healthz").json() == {"status": "ok"}
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": ["store"]}


def test_not_ready_names_the_failing_dependency() -> None:
    async def kafka_down() -> None:
        raise ConnectionError("no broker at 127.0.0.1:1")

    client = TestClient(build_ops_app({"kafka": kafka_down}))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["failures"] == {"kafka": "ConnectionError: no broker at 127.0.0.1:1"}


def test_metrics_exposes_pipeline_counters() -> None:
    metrics.OUTCOMES.labels("stored").inc(3)
    body = TestClient(build_ops_app({})).get("/metrics").text
    assert "omnintake_pipeline_outcomes_total{outcome=\"stored\"}" in body
    assert "omnintake_consumer_lag" in body
