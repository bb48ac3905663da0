"""Real services: Kafka (deploy/kafka.sh start) and PostgreSQL (deploy/postgres.sh start).

Each test gets its own topics, consumer group and database. Outside CI a missing service skips
the test; in CI (CI set) it fails, because a service test that skips there proves nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from pipeline.config import KafkaConfig, Settings, StoreConfig, TopicsConfig

KAFKA = os.environ.get("INTAKE_TEST_KAFKA", "127.0.0.1:9092")
POSTGRES = os.environ.get("INTAKE_TEST_POSTGRES", "postgresql+psycopg://intake:intake@127.0.0.1:5432/intake")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port} (start it with deploy/{name.lower()}.sh start)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def kafka_cfg() -> KafkaConfig:
    host, port = KAFKA.rsplit(":", 1)
    require("Kafka", host, int(port))
    run = uuid.uuid4().hex[:10]
    return KafkaConfig(bootstrap_servers=KAFKA, group_id=f"test-{run}", partitions=6, batch_max_records=200,
                       session_timeout_ms=10000,
                       topics=TopicsConfig(raw=f"test.{run}.raw.v1", events=f"test.{run}.events.v1",
                                           dead_letters=f"test.{run}.dlq.v1"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = make_url(POSTGRES)
    require("Postgres", url.host or "127.0.0.1", url.port or 5432)
    name = f"intake_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    for attempt in range(5):  # FORCE cannot end a session another role holds open (an autovacuum worker)
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            break
        except DBAPIError as exc:
            if attempt == 4:
                print(f"test database {name} left behind: {exc.orig}")
            time.sleep(1)
    admin.dispose()


@pytest.fixture
def kafka_settings(kafka_cfg: KafkaConfig, pg_url: str) -> Settings:
    return Settings(transport="kafka", kafka=kafka_cfg, store=StoreConfig(url=pg_url))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
