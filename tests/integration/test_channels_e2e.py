"""A channel end to end through real processes: Dovecot -> `intake run` (IMAP connector, Kafka,
PostgreSQL) -> tickets; the intake process is SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest
import yaml
from sqlalchemy import func, select

from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import connector_cursors, messages
from tests.integration.dovecot import PASSWORD, DovecotServer, require_dovecot
from tests.integration.processes import start, stored, wait_until, write_config

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.imap, pytest.mark.slow]

LINES = ["My order {i} arrived broken, I want a refund", "Где мой заказ {i}? Жду уже неделю",
         "Đơn hàng {i} giao trễ quá, tôi rất bực", "订单{i}还没到，太慢了", "Η παραγγελία {i} δεν ήρθε ακόμα"]


def mail(i: int) -> bytes:
    return (f"Message-ID: <e2e-{i}@customer.example>\r\nFrom: Customer {i % 300} <c{i % 300}@example.com>\r\n"
            f"To: support@shop.example\r\nSubject: order {i}\r\nDate: Wed, 26 Nov 2025 10:00:00 +0000\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{LINES[i % len(LINES)].format(i=i)}\r\n").encode()


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    require_dovecot()
    with DovecotServer(["support"]) as server:
        yield server


def test_imap_to_tickets_survives_sigkill_of_the_intake(kafka_settings, dovecot, tmp_path):
    total = 2_000
    upgrade(kafka_settings.store.url)
    engine = make_engine(kafka_settings.store.url)
    config = write_config(kafka_settings, tmp_path / "config.yaml")
    data = yaml.safe_load(config.read_text())
    data["connectors"]["imap"] = {"enabled": True, "reconnect_max_s": 1.0, "fetch_batch": 50, "accounts": [
        {"host": dovecot.host, "port": dovecot.port, "security": "none", "username": "support",
         "password": PASSWORD, "folders": ["INBOX"]}]}
    config.write_text(yaml.safe_dump(data))
    dovecot.append(mail(i) for i in range(total // 2))
    later = threading.Thread(target=dovecot.append, args=((mail(i) for i in range(total // 2, total)),))
    log = tmp_path / "intake.log"
    first = start(config, log)
    try:
        later.start()
        wait_until(lambda: stored(engine) >= total // 4, 180, "a quarter of the mail stored")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = stored(engine)
        second = start(config, log)
        try:
            later.join(120)
            wait_until(lambda: stored(engine) >= total, 240, "every mail stored")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    with engine.connect() as conn:
        keys = conn.execute(select(func.count(func.distinct(messages.c.delivery_key)))).scalar()
        rows = conn.execute(select(func.count()).select_from(messages)).scalar()
        cursor = conn.execute(select(connector_cursors.c.value).where(connector_cursors.c.connector == "imap")).all()
    engine.dispose()
    assert killed_at < total, "the kill came mid-stream"
    assert rows == keys == total, f"{rows} rows, {keys} distinct of {total}"
    assert len(cursor) == 1 and cursor[0].value.endswith(f":{total}")
