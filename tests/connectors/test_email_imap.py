"""The IMAP connector against an in-memory fake server: fast checks of the cursor, UIDVALIDITY,
IDLE, stop and reconnect logic. tests/integration/test_imap.py runs it against a real Dovecot."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import InputError
from connectors.cursors import MemoryCursorStore
from connectors.email_imap import (
    ImapAccountConfig,
    ImapConfig,
    ImapConnector,
    envelope_for,
    parse_cursor,
    raw_ref,
)
from pipeline.envelope import Envelope
from tests.connectors.conformance import FlakySink, restart_mid_stream


class FakeMailbox:
    """One folder's state, shared by every fake client (as a server's mailbox is)."""

    def __init__(self, idle: bool = True) -> None:
        self.lock = threading.Lock()
        self.uidvalidity = 1000
        self.messages: dict[int, bytes] = {}
        self.next_uid = 1
        self.idle = idle
        self.fail_next_connects = 0
        self.logins: list[tuple[str, str]] = []
        self.clients: list[FakeClient] = []

    def add(self, raw: bytes) -> None:
        with self.lock:
            self.messages[self.next_uid] = raw
            self.next_uid += 1
            for client in self.clients:
                client.pending.append((len(self.messages), b"EXISTS"))

    def renumber(self) -> None:
        """A new UIDVALIDITY: same messages, new UIDs."""
        with self.lock:
            self.uidvalidity += 1
            old = [self.messages[uid] for uid in sorted(self.messages)]
            self.messages = {i + 1: raw for i, raw in enumerate(old)}
            self.next_uid = len(old) + 1


class _Imap:
    def __init__(self) -> None:
        self.untagged_responses: dict[str, list[bytes]] = {}


class FakeClient:
    def __init__(self, box: FakeMailbox, host: str, port: int, ssl: bool = False, **_: Any) -> None:
        if box.fail_next_connects:
            box.fail_next_connects -= 1
            raise ConnectionRefusedError("fake server down")
        self.box = box
        self._imap = _Imap()
        self.pending: list[tuple[int, bytes]] = []
        self.idling = False
        self.closed = False
        box.clients.append(self)

    def login(self, user: str, password: str) -> None:
        self.box.logins.append(("login", user))

    def oauth2_login(self, user: str, token: str) -> None:
        self.box.logins.append(("xoauth2", user))

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        assert readonly, "the connector never changes flags"
        return {b"UIDVALIDITY": self.box.uidvalidity, b"EXISTS": len(self.box.messages)}

    def has_capability(self, name: str) -> bool:
        return name != "IDLE" or self.box.idle

    def search(self, criteria: list[str]) -> list[int]:
        assert not self.idling
        low = int(criteria[1].split(":")[0])
        with self.box.lock:
            uids = sorted(self.box.messages)
            self.pending.clear()
        hits = [u for u in uids if u >= low]
        return hits or uids[-1:]  # `n:*` always matches the highest message

    def fetch(self, uids: Sequence[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        out: dict[int, dict[bytes, Any]] = {}
        for uid in uids:
            raw = self.box.messages.get(uid)
            if raw is None:
                continue
            data: dict[bytes, Any] = {}
            for item in items:
                if item == "RFC822.SIZE":
                    data[b"RFC822.SIZE"] = len(raw)
                elif item == "BODY.PEEK[]":
                    data[b"BODY[]"] = raw
                elif item == "BODY.PEEK[HEADER]":
                    data[b"BODY[HEADER]"] = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                else:
                    data[b"BODY[TEXT]<0>"] = raw.split(b"\r\n\r\n", 1)[-1][:1000]
            out[uid] = data
        return out

    def idle(self) -> None:
        self.idling = True

    def idle_check(self, timeout: float | None = None) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + (timeout or 0)
        while time.monotonic() < deadline:
            with self.box.lock:
                if self.pending:
                    out, self.pending = list(self.pending), []
                    return out
            time.sleep(0.005)
        return []

    def idle_done(self) -> tuple[bytes, list[Any]]:
        self.idling = False
        return b"done", []

    def noop(self) -> tuple[bytes, list[Any]]:
        return b"ok", []

    def logout(self) -> None:
        self.closed = True

    def shutdown(self) -> None:
        self.closed = True


def mail(i: int) -> bytes:
    return f"Message-ID: <m{i}@fake>\r\nFrom: c{i}@example.com\r\nSubject: s{i}\r\n\r\nhello {i}\r\n".encode()


def cfg(**kw: Any) -> ImapConfig:
    account = ImapAccountConfig(host="imap.example", username="alice", password="pw", security="none",
                                folders=("INBOX",))
    return ImapConfig(enabled=True, accounts=(account,), reconnect_max_s=0.05, **kw)


def connector_for(box: FakeMailbox, cursors: MemoryCursorStore, **kw: Any) -> ImapConnector:
    return ImapConnector(cfg(**kw), cursors, client_factory=lambda *a, **k: FakeClient(box, *a, **k))


async def until(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


class RecordingSink:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        self.envelopes.extend(envelopes)


def test_config_wants_exactly_one_credential_and_a_short_idle() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ImapAccountConfig(host="h", username="u")
    with pytest.raises(ValidationError, match="exactly one"):
        ImapAccountConfig(host="h", username="u", password="p", oauth2_token="t")
    with pytest.raises(ValidationError):
        ImapConfig(idle_timeout_s=29 * 60)
    assert ImapAccountConfig(host="h", username="u", password="p").effective_port == 993
    assert ImapAccountConfig(host="h", username="u", password="p", security="starttls").effective_port == 143
    assert "p" not in repr(ImapAccountConfig(host="h", username="u", password="p").password)


def test_cursor_and_raw_ref_formats() -> None:
    assert parse_cursor("17:42") == (17, 42)
    assert parse_cursor(None) is None
    assert parse_cursor("garbage") is None
    account = ImapAccountConfig(host="h", username="a@b.c", password="p")
    assert raw_ref(account, "INBOX", 17, 42) == "imap://a%40b.c@h:993/INBOX;UIDVALIDITY=17/;UID=42"


def test_unparseable_and_oversized_mail_become_flagged_envelopes() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)  # parse_email refuses what is not mail at all
    bad, flagged = envelope_for(ole, "acc", "ref", len(ole), False)
    assert flagged and bad.metadata["imap_problem"].startswith("unparseable: InputError")
    assert bad.message_id.startswith("<sha256:") and bad.sender.kind == "unknown"
    empty, flagged = envelope_for(b"", "acc", "ref", 0, False)
    assert flagged and empty.message_id.startswith("<sha256:")
    big, flagged = envelope_for(mail(1), "acc", "ref", 99_000_000, True)
    assert flagged and big.metadata["imap_problem"].startswith("oversized") and big.metadata["imap_size"] == "99000000"
    ok, flagged = envelope_for(mail(2), "acc", "ref", 80, False)
    assert not flagged and ok.message_id == "<m2@fake>" and ok.raw_ref == "ref"


def test_delivers_each_message_once_and_saves_the_cursor_after_the_ack() -> None:
    box = FakeMailbox()
    for i in range(25):
        box.add(mail(i))
    cursors = MemoryCursorStore()

    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        connector = connector_for(box, cursors, fetch_batch=10)
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: len(sink.envelopes) == 25)
        box.add(mail(25))  # arrives during IDLE
        await until(lambda: len(sink.envelopes) == 26)
        assert connector.workers[0].mode == "idle"
        stop.set()
        await asyncio.wait_for(task, 2)
        await connector.close()
        return sink

    sink = asyncio.run(scenario())
    assert [e.message_id for e in sink.envelopes] == [f"<m{i}@fake>" for i in range(26)]
    assert cursors.load("imap", "alice@imap.example/INBOX") == "1000:26"


def test_resume_from_cursor_ignores_the_highest_message_that_star_returns() -> None:
    box = FakeMailbox()
    for i in range(5):
        box.add(mail(i))
    cursors = MemoryCursorStore()
    cursors.save("imap", "alice@imap.example/INBOX", "1000:5")

    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        connector = connector_for(box, cursors)
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await asyncio.sleep(0.3)
        box.add(mail(5))
        await until(lambda: len(sink.envelopes) == 1)
        stop.set()
        await asyncio.wait_for(task, 2)
        return sink

    assert [e.message_id for e in asyncio.run(scenario()).envelopes] == ["<m5@fake>"]


def test_new_uidvalidity_rereads_the_folder_with_the_same_keys() -> None:
    box = FakeMailbox()
    for i in range(10):
        box.add(mail(i))
    cursors = MemoryCursorStore()
    cursors.save("imap", "alice@imap.example/INBOX", "1000:10")
    box.renumber()

    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        connector = connector_for(box, cursors)
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: len(sink.envelopes) == 10)
        stop.set()
        await asyncio.wait_for(task, 2)
        return sink

    sink = asyncio.run(scenario())
    assert {e.message_id for e in sink.envelopes} == {f"<m{i}@fake>" for i in range(10)}
    assert cursors.load("imap", "alice@imap.example/INBOX") == "1001:10"


def test_stop_is_noticed_within_a_second_while_idling() -> None:
    box = FakeMailbox()
    box.add(mail(0))

    async def scenario() -> float:
        sink = RecordingSink()
        connector = connector_for(box, MemoryCursorStore(), idle_timeout_s=600)
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: len(sink.envelopes) == 1)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0
    assert all(client.closed for client in box.clients), "logged out"


def test_polling_when_the_server_has_no_idle_and_reconnecting_when_it_is_down() -> None:
    box = FakeMailbox(idle=False)
    box.fail_next_connects = 3

    async def scenario() -> ImapConnector:
        sink = RecordingSink()
        connector = connector_for(box, MemoryCursorStore(), poll_interval_s=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        box.add(mail(0))
        await until(lambda: len(sink.envelopes) == 1)
        box.add(mail(1))
        await until(lambda: len(sink.envelopes) == 2)
        assert connector.workers[0].mode == "poll"
        stop.set()
        await asyncio.wait_for(task, 2)
        return connector

    connector = asyncio.run(scenario())
    assert connector.metrics.errors == 3 and "fake server down" in connector.metrics.last_error


def test_a_refused_envelope_is_replaced_by_a_flagged_one_and_the_rest_flows() -> None:
    box = FakeMailbox()
    for i in range(6):
        box.add(mail(i))

    class Refusing(RecordingSink):
        async def accept(self, envelopes: Sequence[Envelope]) -> None:
            if any(e.message_id == "<m3@fake>" and "imap_problem" not in e.metadata for e in envelopes):
                raise InputError("too large")
            await super().accept(envelopes)

    async def scenario() -> tuple[Refusing, ImapConnector]:
        sink = Refusing()
        connector = connector_for(box, MemoryCursorStore())
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: len(sink.envelopes) == 6)
        stop.set()
        await asyncio.wait_for(task, 2)
        return sink, connector

    sink, connector = asyncio.run(scenario())
    assert [e.message_id for e in sink.envelopes] == [f"<m{i}@fake>" for i in range(6)]
    assert sink.envelopes[3].metadata["imap_problem"].startswith("refused by the sink: too large")
    assert connector.metrics.rejected == 1


@pytest.mark.parametrize("crash", [False, True])
def test_conformance_on_the_fake_server(crash: bool) -> None:
    box = FakeMailbox()
    total = 1000
    cursors = MemoryCursorStore()

    async def feed() -> None:
        for i in range(total):
            box.add(mail(i))
            if i % 50 == 0:
                await asyncio.sleep(0.005)

    async def scenario() -> None:
        report = await restart_mid_stream(lambda: connector_for(box, cursors, fetch_batch=20),
                                          {f"email:alice:<m{i}@fake>" for i in range(total)}, feed=feed,
                                          sink=FlakySink(seed=3), restarts=3, crash=crash, seed=5, timeout_s=30)
        if crash:
            report.assert_none_lost()
        else:
            report.assert_exactly_once()

    asyncio.run(scenario())
