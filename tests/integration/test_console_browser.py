"""The console in a real headless Chromium (Debian's, driven by Playwright) against the API on a
real PostgreSQL store holding the team's sample messages: sign in, read the queue, open a ticket,
change it in one click, and find the change in the database and, once the exactly-once relay has run,
on the ticket-events Kafka topic (read committed). Screenshots are kept as artifacts in
test-artifacts/console/."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from sqlalchemy import Engine, func, select

from downstream.api.app import create_app
from downstream.api.tokens import create_token
from pipeline.config import KafkaConfig, Settings, StoreConfig
from pipeline.processor import Processor, RawRecord
from pipeline.relay import ExactlyOnceKafkaTarget, OutboxRelay
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import ticket_events, tickets
from tests.conftest import ROOT, SAMPLES
from tests.integration.test_relay_crash import read_committed

ARTIFACTS = ROOT / "test-artifacts" / "console"
RELAY_TIMEOUT_S = 60.0
pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.kafka]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    import os

    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: deploy/test-tools.sh install")
    pytest.skip("Chromium is missing: deploy/test-tools.sh install")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def store(pg_url: str) -> Iterator[tuple[Settings, Engine]]:
    upgrade(pg_url)
    settings = Settings(store=StoreConfig(url=pg_url))
    engine = make_engine(pg_url)
    records = [RawRecord(json.dumps(message).encode(), f"sample/{path.name}/{i}")
               for path in sorted((SAMPLES / "chat").glob("*.json"))
               for i, message in enumerate(json.loads(path.read_text()))]
    processor = Processor(settings, engine)
    try:
        result = processor.process(records)
    finally:
        processor.close()
    assert result.stored + result.duplicates == len(records) and not result.dead_letters
    yield settings, engine
    engine.dispose()


@pytest.fixture
def server(store: tuple[Settings, Engine]) -> Iterator[str]:
    settings, engine = store
    app = create_app(settings, engine)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "the console server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)


def _unpublished(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(ticket_events.c.published_at.is_(None))).scalar_one()


async def relay_outbox(engine: Engine, kafka: KafkaConfig) -> list:  # type: ignore[type-arg]
    """Run the relay until the outbox is empty, then read the events topic back (committed records only)."""
    relay = OutboxRelay(engine, ExactlyOnceKafkaTarget(kafka), batch_size=200, poll_interval_s=0.05,
                        lock_name=kafka.topics.events)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RELAY_TIMEOUT_S
    try:
        while await asyncio.to_thread(_unpublished, engine):
            assert not running.done(), "the relay stopped on its own"
            assert loop.time() < deadline, "the relay did not empty the outbox in time"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await running
    return await read_committed(kafka, kafka.topics.events)


def test_operator_works_a_ticket_in_the_browser(server: str, store: tuple[Settings, Engine],
                                                 kafka_cfg: KafkaConfig) -> None:
    from playwright.sync_api import sync_playwright

    _, engine = store
    with engine.begin() as conn:
        token = create_token(conn, "browser-operator", "operator")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

        page.goto(f"{server}/console/")
        assert page.url.endswith("/console/login")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_selector("#queue tbody tr.row")
        page.wait_for_function("document.querySelector('[data-key=open]').textContent !== '–'")
        page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)

        rows = page.locator("#queue tbody tr.row")
        assert rows.count() >= 5
        first_urgency = rows.first.locator(".badge").inner_text()
        assert first_urgency == "critical", "the queue starts with the most urgent ticket"
        number = rows.first.locator("a").inner_text()

        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/console/tickets/{number}")
        assert page.locator("article.message pre.body").count() >= 1
        page.screenshot(path=str(ARTIFACTS / "ticket.png"), full_page=True)

        page.click("button[data-relabel='urgency:high']")
        page.wait_for_selector("p.notice")
        assert "relabelled: urgency high" in page.locator("p.notice").inner_text()
        assert page.locator("#label-urgency").inner_text() == "high"
        page.click("form.choices button[name=status][value=pending]")
        page.wait_for_selector("p.notice >> text=status set to pending")
        page.screenshot(path=str(ARTIFACTS / "ticket-after-change.png"), full_page=True)
        browser.close()

    assert not errors, errors
    with engine.connect() as conn:
        row = conn.execute(select(tickets.c.status, tickets.c.urgency).where(tickets.c.number == number)).one()
        assert tuple(row) == ("pending", "high")
        kinds = list(conn.execute(select(ticket_events.c.type).where(ticket_events.c.ticket_number == number))
                     .scalars())
    assert kinds.count("ticket.reclassified") == 1 and kinds.count("ticket.status_changed") == 1

    records = asyncio.run(relay_outbox(engine, kafka_cfg))
    on_stream = [json.loads(r.value) for r in records if r.key == number.encode()]
    relabels = [e for e in on_stream if e["type"] == "ticket.reclassified"]
    assert len(relabels) == 1, f"ticket.reclassified for {number} on the stream {len(relabels)} times"
    assert relabels[0]["ticket"]["urgency"] == "high" and relabels[0]["changes"]["urgency"][1] == "high"
    # keyed by ticket, in outbox order: the relabel before the status change, after the ticket was created
    kinds_on_stream = [e["type"] for e in on_stream]
    assert kinds_on_stream.index("ticket.reclassified") < kinds_on_stream.index("ticket.status_changed")
    assert kinds_on_stream[0] == "ticket.created"
