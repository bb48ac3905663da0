"""The console on a migrated SQLite store: sign-in, the queue, a ticket with hostile text, status
changes with CSRF, dead letters, the rules editor, counters and the security headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from downstream.api.app import create_app
from pipeline.config import Settings
from pipeline.deadletters import DeadLetter, SqlDeadLetterQueue
from pipeline.processor import Processor, RawRecord
from pipeline.store.schema import ticket_events, tickets

HOSTILE = ('<script>alert("x")</script><img src=x onerror=alert(1)> refund \u202egnp.exe now '
           '<a href="javascript:alert(2)">click</a>')


@pytest.fixture
def console(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, token: str) -> None:
    answer = client.post("/console/login", data={"token": token})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{32})"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


@pytest.fixture
def hostile_ticket(processor: Processor, record: Callable[..., RawRecord], engine: Engine) -> dict[str, Any]:
    result = processor.process([record(HOSTILE, customer="mallory", subject='<b onmouseover="x()">hi</b>')])
    assert result.stored == 1
    with engine.connect() as conn:
        return dict(conn.execute(select(tickets)).mappings().one())


def test_pages_need_a_sign_in(console: TestClient) -> None:
    for path in ("/console/", "/console/dead-letters", "/console/rules", "/console/tickets/T-1", "/console/webhooks"):
        answer = console.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login", path
    assert console.get("/console/counters.json").status_code == 401


def test_wrong_token_and_subscriber_token_cannot_sign_in(console: TestClient, tokens: dict[str, str]) -> None:
    for token in ("omni_not-a-token", tokens["subscriber"]):
        answer = console.post("/console/login", data={"token": token})
        assert answer.status_code == 200
        assert "unknown, revoked, or not for people" in answer.text
        assert "omnintake_console" not in answer.headers.get("set-cookie", "")


def test_queue_sorted_by_urgency_then_sla(console: TestClient, tokens: dict[str, str],
                                          add_ticket: Callable[..., dict[str, Any]]) -> None:
    low = add_ticket(urgency="low")
    critical = add_ticket(urgency="critical")
    add_ticket(status="closed", urgency="critical", number="T-CLOSED")
    sign_in(console, tokens["viewer"])
    page = console.get("/console/")
    assert page.status_code == 200
    assert page.text.index(critical["number"]) < page.text.index(low["number"])
    assert "T-CLOSED" not in page.text
    assert "T-CLOSED" in console.get("/console/?status=closed").text


def test_hostile_message_is_shown_as_text(console: TestClient, tokens: dict[str, str],
                                          hostile_ticket: dict[str, Any]) -> None:
    sign_in(console, tokens["viewer"])
    page = console.get(f"/console/tickets/{hostile_ticket['number']}")
    assert page.status_code == 200
    assert "<script>" not in page.text and "<img src=x" not in page.text and 'href="javascript' not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "&lt;b onmouseover=" in page.text
    assert 'dir="auto"' in page.text  # right-to-left overrides stay inside the message body
    headers = page.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text.split("</head>")[1]  # no inline script at all


def test_viewer_sees_no_forms_and_cannot_post(console: TestClient, tokens: dict[str, str],
                                              hostile_ticket: dict[str, Any]) -> None:
    sign_in(console, tokens["viewer"])
    number = hostile_ticket["number"]
    page = console.get(f"/console/tickets/{number}")
    assert f"/console/tickets/{number}/status" not in page.text
    csrf = csrf_of(console.get("/console/rules").text)  # a valid CSRF field: the role alone must refuse
    answer = console.post(f"/console/tickets/{number}/status", data={"status": "resolved", "csrf": csrf})
    assert answer.status_code == 403 and "may only read" in answer.text


def test_status_change_needs_csrf_and_writes_an_event(console: TestClient, tokens: dict[str, str],
                                                      hostile_ticket: dict[str, Any], engine: Engine) -> None:
    sign_in(console, tokens["operator"])
    number = hostile_ticket["number"]
    assert console.post(f"/console/tickets/{number}/status", data={"status": "resolved"}).status_code == 403
    assert console.post(f"/console/tickets/{number}/status",
                        data={"status": "resolved", "csrf": "0" * 32}).status_code == 403
    csrf = csrf_of(console.get(f"/console/tickets/{number}").text)
    answer = console.post(f"/console/tickets/{number}/status", data={"status": "resolved", "csrf": csrf})
    assert answer.status_code == 303
    with engine.connect() as conn:
        assert conn.execute(select(tickets.c.status).where(tickets.c.number == number)).scalar_one() == "resolved"
        kinds = conn.execute(select(ticket_events.c.type).where(ticket_events.c.ticket_number == number)).scalars()
        assert "ticket.status_changed" in list(kinds)


def test_dead_letters_listed_and_reprocessed(console: TestClient, tokens: dict[str, str], engine: Engine,
                                             settings: Settings, envelope_dict: Callable[..., dict[str, Any]]) -> None:
    import json

    SqlDeadLetterQueue(engine).put([DeadLetter(json.dumps(envelope_dict("<i>stuck</i> order")).encode(),
                                               "classify", "boom", "RuntimeError", 3, "test/1")])
    sign_in(console, tokens["operator"])
    page = console.get("/console/dead-letters")
    assert "RuntimeError: boom" in page.text and "&lt;i&gt;stuck&lt;/i&gt;" in page.text
    [letter_id] = re.findall(r'name="id" value="(\d+)"', page.text)
    answer = console.post("/console/dead-letters/reprocess", data={"id": letter_id, "csrf": csrf_of(page.text)})
    assert answer.status_code == 303
    assert SqlDeadLetterQueue(engine).get([letter_id])[0].reprocessed


def test_rules_editor_names_the_error_and_does_not_save(console: TestClient, tokens: dict[str, str]) -> None:
    sign_in(console, tokens["operator"])
    page = console.get("/console/rules?lang=en")
    assert page.status_code == 200 and "types:" in page.text
    broken = "lang: en\ntypes:\n  complaint:\n    - regex: '(unclosed'\n"
    answer = console.post("/console/rules", data={"lang": "en", "source": broken, "action": "save",
                                                  "csrf": csrf_of(page.text)})
    assert answer.status_code == 200
    assert 'role="alert"' in answer.text and "en.yaml" in answer.text
    assert console.get("/console/rules?lang=en").text == page.text  # unchanged on disk


def test_counters(console: TestClient, tokens: dict[str, str], add_ticket: Callable[..., dict[str, Any]]) -> None:
    add_ticket(urgency="critical")
    add_ticket(urgency="high", status="pending")
    add_ticket(urgency="high", status="closed")
    sign_in(console, tokens["viewer"])
    counters = console.get("/console/counters.json").json()
    assert counters["open"] == 2
    assert counters["by_urgency"] == {"critical": 1, "high": 1, "normal": 0, "low": 0}
    assert counters["overdue"] == 2  # the factory's SLA times are in 2026-11-20


class _SavedModel:
    def save(self, path) -> None:  # type: ignore[no-untyped-def]
        path.mkdir(parents=True)
        (path / "weights").write_text("fake")


def test_classifiers_page_promotes_and_shadows(console: TestClient, tokens: dict[str, str], engine: Engine,
                                               tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from classifiers.control import read_control
    from classifiers.models import ModelMetadata, ModelStore

    monkeypatch.setenv("INTAKE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr("classifiers.active_model.load_version", lambda store, version: None)  # fake weights
    store = ModelStore()
    metrics = {"n": 10, "accuracy": 0.9, "macro_f1": 0.85,
               "per_class": {"complaint": {"precision": 1.0, "recall": 0.8, "f1": 0.889, "support": 5}},
               "per_language": {"en": {"accuracy": 0.9, "n": 10}},
               "confusion": {"labels": ["complaint", "praise"], "matrix": [[4, 1], [0, 5]]},
               "worst_mistakes": [{"text": "<b>meh</b>", "lang": "en", "gold": "complaint", "predicted": "praise",
                                   "confidence": 0.61}]}
    for name in ("v1", "v2"):
        store.save(name, _SavedModel(), ModelMetadata(name, "type", ["complaint", "praise"], "sha256:x", 10, 0,
                                                      f"2026-11-2{name[1]}T00:00:00+00:00", metrics=metrics))
    sign_in(console, tokens["operator"])
    page = console.get("/console/classifiers?version=v1")
    assert page.status_code == 200
    assert 'class="shade8">5</td>' in page.text and "&lt;b&gt;meh&lt;/b&gt;" in page.text
    csrf = csrf_of(page.text)
    answer = console.post("/console/classifiers", data={"action": "promote", "version": "v2", "csrf": csrf})
    assert answer.status_code == 303
    assert "active%3A+v2" in answer.headers["location"] or "active: v2" in answer.headers["location"]
    console.post("/console/classifiers", data={"action": "shadow", "version": "v1", "csrf": csrf})
    assert (store.active(), store.shadow()) == ("v2", "v1")
    with engine.connect() as conn:
        control = read_control(conn)
    assert control is not None and (control.active_version, control.shadow_version) == ("v2", "v1")
    console.post("/console/classifiers", data={"action": "rollback", "csrf": csrf})
    assert store.active() is None
    bad = console.post("/console/classifiers", data={"action": "promote", "version": "nope", "csrf": csrf})
    assert bad.status_code == 303 and "nope" in bad.headers["location"]

    store.save("u1", _SavedModel(), ModelMetadata("u1", "urgency", ["low", "high"], "sha256:x", 10, 0,
                                                  "2026-11-23T00:00:00+00:00", metrics=metrics))
    console.post("/console/classifiers", data={"action": "promote", "version": "v1", "csrf": csrf})
    page = console.get("/console/classifiers")
    assert 'value="promote-replace-task"' in page.text and "Promote (replace type)" in page.text
    refused = console.post("/console/classifiers", data={"action": "promote", "version": "u1", "csrf": csrf})
    assert "predicts+urgency" in refused.headers["location"] or "predicts urgency" in refused.headers["location"]
    assert store.active() == "v1"
    console.post("/console/classifiers", data={"action": "promote-replace-task", "version": "u1", "csrf": csrf})
    assert store.active() == "u1"


def test_relabel_in_one_click_updates_ticket_event_and_corrections(
        console: TestClient, tokens: dict[str, str], hostile_ticket: dict[str, Any], engine: Engine) -> None:
    from classifiers.corrections import corrections_for_task
    from pipeline.store.operator_schema import label_corrections

    sign_in(console, tokens["operator"])
    number = hostile_ticket["number"]
    csrf = csrf_of(console.get(f"/console/tickets/{number}").text)
    answer = console.post(f"/console/tickets/{number}/labels", data={"urgency": "critical", "csrf": csrf})
    assert answer.status_code == 303 and "relabelled" in answer.headers["location"]
    answer = console.post(f"/console/tickets/{number}/labels", data={"type": "spam", "csrf": csrf})
    assert answer.status_code == 303
    refused = console.post(f"/console/tickets/{number}/labels", data={"category": "billing", "csrf": csrf})
    assert "only+complaints+have+a+category" in refused.headers["location"]
    with engine.connect() as conn:
        ticket = conn.execute(select(tickets).where(tickets.c.number == number)).mappings().one()
        events = conn.execute(select(ticket_events.c.payload).where(
            ticket_events.c.ticket_number == number, ticket_events.c.type == "ticket.reclassified")
            .order_by(ticket_events.c.id)).scalars().all()
        corrections = conn.execute(select(label_corrections.c.type, label_corrections.c.urgency,
                                          label_corrections.c.corrected_by)).all()
    assert (ticket["type"], ticket["category"], ticket["urgency"]) == ("spam", None, "critical")
    assert ticket["sla_due_at"] == ticket["created_at"] + timedelta(hours=4)
    assert [e["changes"].get("urgency") for e in events] == [[hostile_ticket["urgency"], "critical"], None]
    assert events[1]["changes"]["type"] == [hostile_ticket["type"], "spam"]
    assert len(corrections) == 2 and all(c.corrected_by == "test-operator" for c in corrections)
    assert [label for *_, label in corrections_for_task(engine, "type")] == ["spam"]


def test_one_application_serves_api_and_console(settings: Settings, engine: Engine, tokens: dict[str, str]) -> None:
    from downstream.console.app import add_console

    app = create_app(settings, engine)
    routes = len(app.routes)
    add_console(app)  # already mounted by create_app: a second call adds nothing
    assert len(app.routes) == routes
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/").headers["location"] == "/console/"
        assert client.get("/console/login").status_code == 200
        assert client.get("/v1/tickets").status_code == 401
        assert "/console/login" not in client.get("/openapi.json").json()["paths"]


def test_webhooks_page_shows_backlog_and_dead_deliveries_escaped(console: TestClient, tokens: dict[str, str],
                                                               engine: Engine) -> None:
    from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription, set_active
    from tests.downstream.webhook_helpers import make_dead_deliveries

    quiet = create_subscription(engine, SubscriptionSpec(url="https://quiet.example/h"))
    set_active(engine, quiet.id, False)
    loud = create_subscription(engine, SubscriptionSpec(url='https://x.example/"><script>alert(1)</script>',
                                                        description="<img src=x onerror=alert(2)>"))
    ids = make_dead_deliveries(engine, loud.id, ["T-1", "T-2"])
    sign_in(console, tokens["viewer"])
    page = console.get("/console/webhooks")
    assert page.status_code == 200
    assert '<a href="/console/webhooks">Webhooks</a>' in page.text
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<img src=x" not in page.text and "HTTP 500 &lt;b&gt;no&lt;/b&gt;" in page.text
    assert "paused" in page.text and all(i in page.text for i in ids)  # the one with dead deliveries is shown
    assert 'name="delivery"' not in page.text and "Redeliver selected" not in page.text  # a viewer only reads
    assert "No dead deliveries." in console.get(f"/console/webhooks?subscription={quiet.id}").text


def test_webhooks_redeliver_needs_csrf_and_a_writer(console: TestClient, tokens: dict[str, str],
                                                    engine: Engine) -> None:
    from downstream.webhooks.deliveries import counts_by_status
    from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription
    from downstream.webhooks.tables import DEAD, PENDING
    from tests.downstream.webhook_helpers import make_dead_deliveries

    sub = create_subscription(engine, SubscriptionSpec(url="https://crm.example/h"))
    ids = make_dead_deliveries(engine, sub.id, ["T-1", "T-2", "T-3"])
    sign_in(console, tokens["viewer"])
    viewer_csrf = csrf_of(console.get("/console/webhooks").text)
    refused = console.post("/console/webhooks/redeliver", data={"csrf": viewer_csrf, "subscription": str(sub.id),
                                                                "all": "1"})
    assert refused.status_code == 403 and counts_by_status(engine, sub.id) == {DEAD: 3}

    sign_in(console, tokens["operator"])
    page = console.get(f"/console/webhooks?subscription={sub.id}").text
    assert 'name="delivery"' in page and "Redeliver all 3 dead" in page
    stale = console.post("/console/webhooks/redeliver", data={"csrf": "0" * 32, "subscription": str(sub.id),
                                                              "all": "1"})
    assert stale.status_code == 403 and counts_by_status(engine, sub.id) == {DEAD: 3}
    csrf = csrf_of(page)
    one = console.post("/console/webhooks/redeliver", data={"csrf": csrf, "subscription": str(sub.id),
                                                            "delivery": ids[0]})
    assert one.status_code == 303 and "1+deliveries+queued" in one.headers["location"]
    assert counts_by_status(engine, sub.id) == {DEAD: 2, PENDING: 1}
    nothing = console.post("/console/webhooks/redeliver", data={"csrf": csrf, "subscription": str(sub.id)})
    assert "nothing+selected" in nothing.headers["location"]
    everything = console.post("/console/webhooks/redeliver", data={"csrf": csrf, "subscription": str(sub.id),
                                                                   "all": "1"})
    assert "2+deliveries+queued" in everything.headers["location"]
    assert counts_by_status(engine, sub.id) == {PENDING: 3}
