"""The IMAP connector against a real Dovecot (tests/integration/dovecot.py starts one per module)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.cursors import MemoryCursorStore
from connectors.email_imap import ImapAccountConfig, ImapConfig, ImapConnector
from connectors.email_mime import parse_email
from pipeline.config import Settings, StoreConfig
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.embedded import EmbeddedSink
from pipeline.envelope import Envelope
from pipeline.processor import Processor
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages
from tests.conftest import ROOT
from tests.connectors.conformance import FlakySink, restart_mid_stream
from tests.integration.dovecot import PASSWORD, DovecotServer, require_dovecot

pytestmark = pytest.mark.imap
EMAIL_DATA = ROOT.parent / "shared" / "data" / "email"
_UID = re.compile(r";UID=(\d+)$")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    require_dovecot()
    with DovecotServer(["alice", "bob"]) as server:
        yield server


@pytest.fixture
def folder(request: pytest.FixtureRequest) -> str:
    """A folder of its own per test, so tests sharing the server do not see each other's mail."""
    return re.sub(r"[^A-Za-z0-9]", "", request.node.name)[:40] + str(random.randrange(10**6))


def mail(i: int, folder: str = "", body: str = "", message_id: bool = True) -> bytes:
    head = f"Message-ID: <m{i}.{folder}@test.example>\r\n" if message_id else ""
    return (f"{head}From: Customer {i} <c{i}@example.com>\r\nTo: support@example.com\r\n"
            f"Subject: order {i}\r\nDate: Wed, 26 Nov 2025 10:00:00 +0000\r\n\r\n"
            f"{body or f'Where is my order {i}? It is late.'}\r\n").encode()


def key(i: int, folder: str, account: str = "alice") -> str:
    return f"email:{account}:<m{i}.{folder}@test.example>"


def account(server: DovecotServer, folders: Sequence[str], user: str = "alice", **kw: object) -> ImapAccountConfig:
    fields: dict[str, object] = {"host": server.host, "port": server.port, "security": "none", "username": user,
                                 "password": PASSWORD, "folders": tuple(folders)}
    fields.update(kw)
    return ImapAccountConfig.model_validate(fields)


def config(*accounts: ImapAccountConfig, **kw: object) -> ImapConfig:
    return ImapConfig.model_validate({"enabled": True, "accounts": accounts, "poll_interval_s": 30.0,
                                      "reconnect_max_s": 1.0, **kw})


class RecordingSink:
    """Accepts everything and keeps every envelope in arrival order, with the time it arrived."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.arrived: list[float] = []

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        now = time.monotonic()
        self.envelopes.extend(envelopes)
        self.arrived.extend(now for _ in envelopes)

    @property
    def keys(self) -> Counter[str]:
        return Counter(e.delivery_key for e in self.envelopes)


async def until(predicate, timeout_s: float = 60.0, task: asyncio.Task[None] | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if task is not None and task.done():
            task.result()
            raise AssertionError("the connector returned early")
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def stop_connector(connector: ImapConnector, task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, 10)
    await connector.close()


def test_every_sample_mail_arrives_once(dovecot: DovecotServer, folder: str) -> None:
    if not EMAIL_DATA.is_dir():  # data, not a service: absent in a user's clone, skipped like the others
        pytest.skip(f"{EMAIL_DATA} is absent (a clone without ../shared)")
    files = sorted(p for p in EMAIL_DATA.rglob("*") if p.is_file() and p.name != "README.md")
    assert dovecot.append((p.read_bytes() for p in files), folder) == len(files)

    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        connector = ImapConnector(config(account(dovecot, [folder])), MemoryCursorStore())
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: len(sink.envelopes) >= len(files), 120, task)
        await asyncio.sleep(0.5)  # nothing more may come
        await stop_connector(connector, task, stop)
        return sink

    sink = asyncio.run(scenario())
    uids = Counter(int(_UID.search(e.raw_ref or "").group(1)) for e in sink.envelopes)  # type: ignore[union-attr]
    assert sorted(uids) == list(range(1, len(files) + 1)), "every mail once, by its UID"
    assert max(uids.values()) == 1
    for path, envelope in zip(files, sink.envelopes, strict=True):  # UIDs follow APPEND order
        if path.read_bytes().startswith(b"\xd0\xcf\x11\xe0"):  # an Outlook .msg is no RFC 822 mail: the
            continue  # server stores it with its bare newlines made CRLF, so only its arrival counts
        try:
            expected = parse_email(path.read_bytes(), "alice").message_id
        except Exception:
            assert "imap_problem" in envelope.metadata, path
            continue
        if not expected.startswith("<sha256:"):  # a hash id hashes the server's bytes (CRLF), not the file's
            assert envelope.message_id == expected, path


def test_conformance_5000_appended_while_running(dovecot: DovecotServer, folder: str) -> None:
    _conformance(dovecot, folder, crash=False)


def test_conformance_crash_loses_nothing(dovecot: DovecotServer, folder: str) -> None:
    _conformance(dovecot, folder, crash=True)


def _conformance(dovecot: DovecotServer, folder: str, crash: bool) -> None:
    total = 5000
    cursors = MemoryCursorStore()
    cfg = config(account(dovecot, [folder]), fetch_batch=50)
    dovecot.append([mail(0, folder)], folder)

    def feed_all() -> None:
        client = dovecot.client()
        try:
            for i in range(1, total):
                client.append(folder, mail(i, folder))
                if i % 250 == 0:
                    time.sleep(0.05)  # let the connector catch up now and then
        finally:
            client.logout()

    async def scenario() -> None:
        report = await restart_mid_stream(lambda: ImapConnector(cfg, cursors), {key(i, folder) for i in range(total)},
                                          feed=lambda: asyncio.to_thread(feed_all), restarts=3, crash=crash,
                                          seed=7 if crash else 11, timeout_s=180)
        if crash:
            report.assert_none_lost()
        else:
            report.assert_exactly_once()
        assert report.sink_failures > 0, "the flaky sink failed some accepts"
        assert len(report.stops) == 4
        _, last = cursors.load("imap", f"alice@{dovecot.host}/{folder}").split(":")  # type: ignore[union-attr]
        assert int(last) == total

    asyncio.run(scenario())


def test_uidvalidity_change_rereads_without_doubling_downstream(dovecot: DovecotServer, folder: str,
                                                                tmp_path: Path) -> None:
    """The folder's UIDVALIDITY changes mid-stream: the connector reads it all again; the keys come
    from the messages (Message-ID, or the hash of mails without one), so the store keeps each once."""
    first, second = 300, 100
    with_ids = [mail(i, folder) for i in range(first)]
    without_ids = [mail(i, folder, body=f"no id here {i} {folder}", message_id=False) for i in range(first, first + 20)]
    dovecot.append([*with_ids, *without_ids], folder)
    url = f"sqlite:///{tmp_path}/imap.db"
    upgrade(url)
    engine = make_engine(url)
    cursors = MemoryCursorStore()

    class Counting(EmbeddedSink):
        seen: Counter[str]

        async def accept(self, envelopes: Sequence[Envelope]) -> None:
            await super().accept(envelopes)
            self.seen.update(e.delivery_key for e in envelopes)

    sink = Counting(Processor(Settings(store=StoreConfig(url=url)), engine), SqlDeadLetterQueue(engine))
    sink.seen = Counter()
    connector = ImapConnector(config(account(dovecot, [folder]), fetch_batch=20), cursors)
    cursor_key = f"alice@{dovecot.host}/{folder}"

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: sum(sink.seen.values()) >= 100, 60, task)
        old_validity = int(cursors.load("imap", cursor_key).split(":")[0])  # type: ignore[union-attr]
        await asyncio.to_thread(dovecot.doveadm, "mailbox", "update", "--uid-validity", str(old_validity + 7),
                                "-u", "alice", folder)
        await asyncio.to_thread(dovecot.append, [mail(i, folder) for i in range(first + 20, first + 20 + second)],
                                folder)
        await until(lambda: len(sink.seen) >= first + 20 + second
                    and cursors.load("imap", cursor_key).startswith(f"{old_validity + 7}:"), 90, task)  # type: ignore[union-attr]
        await until(lambda: cursors.load("imap", cursor_key) == f"{old_validity + 7}:{first + 20 + second}", 30, task)
        await stop_connector(connector, task, stop)

    asyncio.run(scenario())
    expected = {key(i, folder) for i in range(first)} | {key(i, folder) for i in range(first + 20, first + 20 + second)}
    assert expected <= set(sink.seen), "no gap"
    assert len(sink.seen) == first + 20 + second, "the 20 mails without Message-ID kept their hash keys"
    assert sum(sink.seen.values()) > len(sink.seen), "the folder was read again after the change"
    with engine.connect() as conn:
        stored = conn.execute(select(messages.c.delivery_key, func.count()).group_by(messages.c.delivery_key)).all()
    engine.dispose()
    assert len(stored) == first + 20 + second
    assert max(count for _, count in stored) == 1, "no delivery key stored twice"


def _latencies(server: DovecotServer, cfg: ImapConfig, folder: str, rounds: int) -> tuple[list[float], ImapConnector]:
    server.append([mail(0, folder)], folder)
    connector = ImapConnector(cfg, MemoryCursorStore())

    async def scenario() -> list[float]:
        sink = RecordingSink()
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: len(sink.envelopes) == 1, 30, task)
        client = await asyncio.to_thread(server.client)
        out = []
        try:
            for i in range(1, rounds + 1):
                await asyncio.sleep(0.3)
                started = time.monotonic()
                await asyncio.to_thread(client.append, folder, mail(i, folder))
                await until(lambda n=i: len(sink.envelopes) > n, 30, task)
                out.append(sink.arrived[-1] - started)
        finally:
            await asyncio.to_thread(client.logout)
            await stop_connector(connector, task, stop)
        return out

    return asyncio.run(scenario()), connector


def test_idle_delivers_well_under_the_poll_interval(dovecot: DovecotServer, folder: str) -> None:
    latencies, connector = _latencies(dovecot, config(account(dovecot, [folder]), poll_interval_s=30), folder, 8)
    assert connector.workers[0].mode == "idle"
    assert max(latencies) < 2.0, latencies


def test_polling_fallback_without_idle(folder: str) -> None:
    require_dovecot()
    with DovecotServer(["alice"], idle=False) as server:
        latencies, connector = _latencies(server, config(account(server, [folder]), poll_interval_s=0.5), folder, 4)
    assert connector.workers[0].mode == "poll"
    assert max(latencies) < 3.0, latencies


def test_several_accounts_and_folders(dovecot: DovecotServer, folder: str) -> None:
    """alice with a password on two folders, bob with an XOAUTH2 token (Dovecot's oauth2 passdb
    asks the harness's introspection server)."""
    other = folder + "x"
    dovecot.append([mail(i, folder) for i in range(30)], "INBOX")
    dovecot.append([mail(i, other) for i in range(30)], other)
    dovecot.append([mail(i, folder) for i in range(30)], "INBOX", user="bob")
    alice = account(dovecot, ["INBOX", other])
    bob = account(dovecot, ["INBOX"], user="bob", password=None, oauth2_token="token-bob", name="bob-support")
    cursors = MemoryCursorStore()
    connector = ImapConnector(config(alice, bob), cursors)

    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        wanted = ({key(i, folder) for i in range(30)} | {key(i, other) for i in range(30)}
                  | {key(i, folder, "bob-support") for i in range(30)})
        await until(lambda: wanted <= set(sink.keys), 60, task)
        await stop_connector(connector, task, stop)
        return sink

    sink = asyncio.run(scenario())
    assert max(sink.keys.values()) == 1
    saved = {k for (_, k) in cursors.values}
    assert {f"alice@{dovecot.host}/INBOX", f"alice@{dovecot.host}/{other}", f"bob@{dovecot.host}/INBOX"} <= saved
    assert len(connector.workers) == 3


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_login_with_the_servers_ca(dovecot: DovecotServer, folder: str, security: str) -> None:
    dovecot.append([mail(i, folder) for i in range(3)], folder)
    port = dovecot.ssl_port if security == "ssl" else dovecot.port

    def run(ca_file: str | None) -> tuple[RecordingSink, ImapConnector]:
        acc = account(dovecot, [folder], security=security, port=port, ca_file=ca_file)
        connector = ImapConnector(config(acc), MemoryCursorStore())

        async def scenario() -> RecordingSink:
            sink = RecordingSink()
            stop = asyncio.Event()
            task = asyncio.create_task(connector.run(sink, stop))
            with pytest.raises(AssertionError) if ca_file is None else _nothing():
                await until(lambda: len(sink.envelopes) >= 3, 3 if ca_file is None else 30, task)
            await stop_connector(connector, task, stop)
            return sink

        return asyncio.run(scenario()), connector

    sink, _ = run(str(dovecot.ca_file))
    assert set(sink.keys) == {key(i, folder) for i in range(3)}
    refused, connector = run(None)  # the self-signed certificate is not in the system's trust store
    assert not refused.envelopes
    assert connector.metrics.errors >= 1 and "CERTIFICATE_VERIFY_FAILED" in connector.metrics.last_error


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_server_killed_and_restarted_mid_stream(dovecot: DovecotServer, folder: str) -> None:
    total = 1500
    dovecot.append([mail(i, folder) for i in range(1000)], folder)
    cursors = MemoryCursorStore()
    connector = ImapConnector(config(account(dovecot, [folder]), fetch_batch=25), cursors)
    sink = FlakySink(fail_rate=0.0, delay_s=0.005)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: sink.distinct >= 300, 60, task)
        await asyncio.to_thread(dovecot.stop, True)
        await asyncio.sleep(1.5)
        assert not task.done()
        await asyncio.to_thread(dovecot.start)
        await asyncio.to_thread(dovecot.append, [mail(i, folder) for i in range(1000, total)], folder)
        await until(lambda: sink.distinct >= total, 90, task)
        await stop_connector(connector, task, stop)

    asyncio.run(scenario())
    assert set(sink.accepted) == {key(i, folder) for i in range(total)}
    assert max(sink.accepted.values()) == 1
    assert connector.metrics.errors >= 1, "the connection really dropped"


def test_bad_mail_does_not_block_the_folder(dovecot: DovecotServer, folder: str) -> None:
    outlook = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 40  # not mail: parse_email raises
    corrupt = (b"Message-ID: <corrupt." + folder.encode() + b"@test.example>\r\nFrom: c@example.com"
               b"\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain; "
               b"charset=nonsense-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\xff\xfe\r\n--z")
    big_header = (b"Message-ID: <header." + folder.encode() + b"@test.example>\r\nFrom: h@example.com\r\n"
                  + b"".join(b"X-Filler-%d: %s\r\n" % (n, b"y" * 990) for n in range(200))
                  + b"Subject: big header\r\n\r\nbody after a 200 KB header\r\n")
    empty_body = b"Message-ID: <empty." + folder.encode() + b"@test.example>\r\nFrom: e@example.com\r\n\r\n"
    attachment = (b"Message-ID: <big." + folder.encode() + b"@test.example>\r\nFrom: b@example.com\r\n"
                  b"Subject: invoice attached\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
                  b"Content-Type: text/plain\r\n\r\nPlease see the attached scan, it is urgent.\r\n--b1\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"scan.bin\""
                  b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  + (b"QUFB" * 19 + b"\r\n") * (50 * 1024 * 1024 // 78) + b"--b1--\r\n")
    bad = [corrupt, big_header, empty_body, attachment, outlook]
    stream = [raw for i, b in enumerate(bad) for raw in (mail(i, folder), b)] + [mail(99, folder)]
    dovecot.append(stream, folder)
    cfg = config(account(dovecot, [folder]), max_message_bytes=10 * 1024 * 1024)
    connector = ImapConnector(cfg, MemoryCursorStore())

    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await until(lambda: len(sink.envelopes) >= len(stream), 120, task)
        await stop_connector(connector, task, stop)
        return sink

    sink = asyncio.run(scenario())
    by_id = {e.message_id: e for e in sink.envelopes}
    assert len(sink.envelopes) == len(stream) == len(by_id)
    assert {f"<m{i}.{folder}@test.example>" for i in (0, 1, 2, 3, 4, 99)} <= set(by_id)
    assert f"<corrupt.{folder}@test.example>" in by_id  # parsed with defects, or flagged: either way delivered
    unparseable = [e for e in sink.envelopes if e.metadata.get("imap_problem", "").startswith("unparseable")]
    assert len(unparseable) == 1 and unparseable[0].message_id.startswith("<sha256:")
    assert by_id[f"<header.{folder}@test.example>"].text.startswith("body after a 200 KB header")
    assert by_id[f"<empty.{folder}@test.example>"].text == ""
    big = by_id[f"<big.{folder}@test.example>"]
    assert big.metadata["imap_problem"].startswith("oversized")
    assert int(big.metadata["imap_size"]) > 45 * 1024 * 1024
    assert "urgent" in big.text
    assert connector.metrics.rejected == 2
