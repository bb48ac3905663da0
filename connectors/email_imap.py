"""Email over IMAP: one worker per (account, folder), IDLE when the server has it, polling when not.

imapclient is blocking, so each folder's session runs on its own single thread (every IMAP call of
that session is serialised there) while delivery and cursors stay on the event loop. The cursor of
a folder is `"{UIDVALIDITY}:{last_uid}"`, saved only after the sink accepted every message up to
that UID. A new UIDVALIDITY means the old UIDs mean nothing: the folder is read again from the
start, and because delivery keys come from the message itself (Message-ID, else a hash of its
bytes) what was already accepted is recognised downstream instead of doubled.

A message that cannot be parsed, or is larger than `max_message_bytes`, still reaches the sink, as a
minimal envelope flagged in `metadata["imap_problem"]` with `raw_ref` pointing at the original on
the server (RFC 5092 URL). The connector has no dead-letter store of its own: the sink is its only
durable output, so the flagged envelope is what makes the record durable before the cursor moves,
and the pipeline's dead-letter and review tooling see it like any other message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from imapclient import IMAPClient
from imapclient.imapclient import SocketTimeout

from connectors.base import Connector, InputError, Sink, deliver_batch
from connectors.config import ImapAccountConfig, ImapConfig
from connectors.cursors import CursorStore
from connectors.email_mime import parse_email
from connectors.metrics import ConnectorMetrics
from pipeline.envelope import Envelope, Sender

log = logging.getLogger(__name__)
T = TypeVar("T")

_PARTIAL_TEXT_BYTES = 256 * 1024  # of an oversized message, the start of its body is still read
_HEADER_FIELD = re.compile(rb"^(message-id|from|subject):[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def cursor_key(account: ImapAccountConfig, folder: str) -> str:
    return f"{account.username}@{account.host}/{folder}"


def parse_cursor(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    validity, _, last = value.partition(":")
    try:
        return int(validity), int(last)
    except ValueError:
        log.warning("imap: ignoring unreadable cursor %r", value)
        return None


def raw_ref(account: ImapAccountConfig, folder: str, uidvalidity: int, uid: int) -> str:
    """RFC 5092 IMAP URL of one message."""
    user = quote(account.username, safe="")
    return f"imap://{user}@{account.host}:{account.effective_port}/{quote(folder)};UIDVALIDITY={uidvalidity}/;UID={uid}"


def _header_fields(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0][:1_000_000]
    fields: dict[str, str] = {}
    for match in _HEADER_FIELD.finditer(head):
        name = match.group(1).decode().lower()
        fields.setdefault(name, " ".join(match.group(2).decode("utf-8", "replace").split()))
    return fields


def flagged_envelope(raw: bytes, account: str, ref: str, problem: str, size: int) -> Envelope:
    """The least a message that could not be parsed becomes: ids from its header when readable,
    else the same sha256 id `parse_email` would give, the text as far as it decodes, and the flag."""
    fields = _header_fields(raw)
    message_id = next(iter(re.findall(r"<[^<>\s]+>", fields.get("message-id", ""))), "") or \
        fields.get("message-id", "")[:500] or "<sha256:" + hashlib.sha256(raw).hexdigest() + ">"
    address = next(iter(re.findall(r"[^\s<>\"',;:]+@[^\s<>\"',;:]+", fields.get("from", ""))), "")
    sender = Sender(kind="email", id=address.lower()) if 0 < len(address) <= 320 else \
        Sender(kind="unknown", id=f"email:{message_id}"[:320])
    return Envelope(channel="email", account=account, message_id=message_id, conversation_id=message_id,
                    sender=sender, received_at=datetime.now(UTC), subject=fields.get("subject") or None,
                    text=raw[:65536].decode("utf-8", "replace"), raw_ref=ref,
                    metadata={"imap_problem": problem[:500], "imap_size": str(size)})


def refused_envelope(envelope: Envelope, reason: str) -> Envelope:
    """What is left when the sink refuses an envelope for good: its ids, sender, subject and the flag."""
    return Envelope(channel="email", account=envelope.account, message_id=envelope.message_id,
                    conversation_id=envelope.conversation_id, sender=envelope.sender,
                    received_at=envelope.received_at, subject=(envelope.subject or "")[:1000] or None, text="",
                    raw_ref=envelope.raw_ref, metadata={"imap_problem": f"refused by the sink: {reason}"[:500]})


def _flag(envelope: Envelope, **flags: str) -> Envelope:
    data = envelope.model_dump()
    data["metadata"] = {**envelope.metadata, **flags}
    return Envelope.model_validate(data)


@dataclass
class FetchedBatch:
    envelopes: list[Envelope]
    last_uid: int
    flagged: int


def envelope_for(raw: bytes, account: str, ref: str, size: int, truncated: bool,
                 trusted_authserv_ids: tuple[str, ...] = ()) -> tuple[Envelope, bool]:
    """(envelope, flagged). Whatever the bytes do to the parser, it is this message's problem only."""
    try:
        envelope = parse_email(raw, account, ref, trusted_authserv_ids=trusted_authserv_ids)
    except Exception as exc:
        problem = f"unparseable: {exc.__class__.__name__}: {exc}"
        return flagged_envelope(raw, account, ref, problem, size), True
    if truncated:
        return _flag(envelope, imap_problem=f"oversized: {size} bytes, only the header and the start of the body "
                                            "were read", imap_size=str(size)), True
    return envelope, False


class _FolderSession:
    """One logged-in IMAP connection with one folder selected (read-only: EXAMINE, BODY.PEEK)."""

    def __init__(self, cfg: ImapConfig, account: ImapAccountConfig, folder: str,
                 client_factory: Callable[..., IMAPClient]) -> None:
        self.cfg = cfg
        self.account = account
        self.folder = folder
        self.client_factory = client_factory
        self.client: IMAPClient | None = None
        self.uidvalidity = 0
        self.exists = 0
        self.idling = False

    def open(self) -> None:
        acc = self.account
        context = None
        if acc.security != "none":
            context = ssl.create_default_context(cafile=acc.ca_file)
            if not acc.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        timeout = SocketTimeout(connect=self.cfg.timeout_s, read=self.cfg.timeout_s)
        client = self.client_factory(acc.host, acc.effective_port, ssl=acc.security == "ssl", ssl_context=context,
                                     timeout=timeout)
        self.client = client
        if acc.security == "starttls":
            client.starttls(context)
        if acc.oauth2_token is not None:
            client.oauth2_login(acc.username, acc.oauth2_token.get_secret_value())
        else:
            assert acc.password is not None
            client.login(acc.username, acc.password.get_secret_value())
        selected = client.select_folder(self.folder, readonly=True)
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        self.exists = int(selected.get(b"EXISTS", 0))

    @property
    def has_idle(self) -> bool:
        assert self.client is not None
        return self.client.has_capability("IDLE")

    def new_uids(self, last_uid: int) -> list[int]:
        """UIDs above the cursor. `last+1:*` always matches the highest message, even when its UID
        is <= last, hence the filter. EXISTS the server sent along are taken: they are covered."""
        assert self.client is not None
        self._take_pending_exists()
        return sorted(uid for uid in self.client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)

    def _take_pending_exists(self) -> bool:
        """imaplib files untagged EXISTS that arrive with another command's answer under
        `untagged_responses`; the server will not repeat them in IDLE, so they are read here."""
        assert self.client is not None
        return self.client._imap.untagged_responses.pop("EXISTS", None) is not None

    def fetch(self, uids: Sequence[int], envelope_account: str) -> FetchedBatch:
        assert self.client is not None
        client = self.client
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in client.fetch(uids, ["RFC822.SIZE"]).items()}
        small = [uid for uid in uids if uid in sizes and sizes[uid] <= self.cfg.max_message_bytes]
        large = [uid for uid in uids if uid in sizes and sizes[uid] > self.cfg.max_message_bytes]
        raws: dict[int, tuple[bytes, bool]] = {}
        group: list[int] = []
        group_bytes = 0
        for uid in [*small, None]:
            if uid is None or (group and group_bytes + sizes[uid] > self.cfg.fetch_max_bytes):
                if group:
                    for got_uid, data in client.fetch(group, ["BODY.PEEK[]"]).items():
                        raws[got_uid] = (data.get(b"BODY[]") or b"", False)
                group, group_bytes = [], 0
            if uid is not None:
                group.append(uid)
                group_bytes += sizes[uid]
        if large:
            partial = f"BODY.PEEK[TEXT]<0.{_PARTIAL_TEXT_BYTES}>"
            for got_uid, data in client.fetch(large, ["BODY.PEEK[HEADER]", partial]).items():
                raws[got_uid] = ((data.get(b"BODY[HEADER]") or b"") + (data.get(b"BODY[TEXT]<0>") or b""), True)
        envelopes, flagged = [], 0
        for uid in uids:
            if uid not in raws:
                continue  # expunged between SEARCH and FETCH
            raw, truncated = raws[uid]
            ref = raw_ref(self.account, self.folder, self.uidvalidity, uid)
            envelope, was_flagged = envelope_for(raw, envelope_account, ref, sizes[uid], truncated,
                                                 self.account.trusted_authserv_ids)
            envelopes.append(envelope)
            flagged += was_flagged
        return FetchedBatch(envelopes, max(uids), flagged)

    def idle_start(self) -> bool:
        """Enter IDLE unless an EXISTS already came in (then the caller fetches first)."""
        assert self.client is not None
        if self._take_pending_exists():
            return False
        self.client.idle()
        self.idling = True
        return True

    def idle_wait(self, timeout_s: float) -> bool:
        """True when the IDLE should end: new mail, the server saying goodbye, or a dead socket
        (imapclient's idle_check answers [] at once on EOF instead of raising)."""
        assert self.client is not None
        started = time.monotonic()
        responses = self.client.idle_check(timeout=timeout_s)
        for response in responses:
            if len(response) >= 2 and response[1] == b"EXISTS":
                self.exists = int(response[0])
                return True
            if response and response[0] == b"BYE":
                return True
        return not responses and time.monotonic() - started < timeout_s / 2

    def idle_end(self) -> None:
        assert self.client is not None
        if self.idling:
            self.idling = False
            self.client.idle_done()

    def noop(self) -> None:
        assert self.client is not None
        self.client.noop()

    def close(self, logout: bool = True) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if logout:
                if self.idling:
                    self.idling = False
                    client.idle_done()
                client.logout()
            else:
                client.shutdown()
        except Exception as exc:  # the connection is going away either way
            log.debug("imap: closing %s: %r", self.folder, exc)
            with contextlib.suppress(Exception):
                client.shutdown()


class _FolderWorker:
    def __init__(self, connector: ImapConnector, account: ImapAccountConfig, folder: str) -> None:
        self.connector = connector
        self.cfg = connector.cfg
        self.account = account
        self.folder = folder
        self.key = cursor_key(account, folder)
        self.label = self.key
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{folder}")
        self.session = _FolderSession(self.cfg, account, folder, connector.client_factory)
        self.lag = 0
        self.mode = ""  # "idle" or "poll" once connected

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                await self.call(self.session.open)
                backoff = 0.5
                await self._serve(sink, stop)
            except (asyncio.CancelledError, InputError):
                raise
            except Exception as exc:  # connection dropped, server restarting, login refused, timeouts
                self.connector.metrics.error(exc)
                log.warning("imap %s: %r; reconnecting in %.1f s", self.label, exc, backoff)
                await self.call(self.session.close, False)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self.cfg.reconnect_max_s)
                continue
            await self.call(self.session.close, True)

    async def _serve(self, sink: Sink, stop: asyncio.Event) -> None:
        cursors, metrics = self.connector.cursors, self.connector.metrics
        saved = parse_cursor(await asyncio.to_thread(cursors.load, self.connector.name, self.key))
        validity = self.session.uidvalidity
        last_uid = saved[1] if saved and saved[0] == validity else 0
        if saved and saved[0] != validity:
            log.warning("imap %s: UIDVALIDITY changed %d -> %d; reading the folder again", self.label, saved[0],
                        validity)
        idle = await self.call(lambda: self.session.has_idle)
        self.mode = "idle" if idle else "poll"
        while not stop.is_set():
            uids = await self.call(self.session.new_uids, last_uid)
            self._set_lag(len(uids))
            for start in range(0, len(uids), self.cfg.fetch_batch):
                if stop.is_set():
                    return
                batch = uids[start:start + self.cfg.fetch_batch]
                fetched = await self.call(self.session.fetch, batch, self.account.account)
                metrics.received += len(fetched.envelopes)
                metrics.rejected += fetched.flagged
                if not await self._hand_over(sink, fetched.envelopes, stop):
                    return
                last_uid = fetched.last_uid
                await asyncio.to_thread(cursors.save, self.connector.name, self.key, f"{validity}:{last_uid}")
                self._set_lag(len(uids) - start - len(batch))
            if uids:
                continue  # more may have come meanwhile: search again before waiting
            if stop.is_set():
                return
            if idle:
                await self._idle(stop)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.cfg.poll_interval_s)
                if not stop.is_set():
                    await self.call(self.session.noop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """IDLE until new mail, stop, or renewal time; each wait is short so stop is seen within ~0.5 s."""
        if not await self.call(self.session.idle_start):
            return
        renew_at = time.monotonic() + self.cfg.idle_timeout_s
        while not stop.is_set() and time.monotonic() < renew_at:
            if await self.call(self.session.idle_wait, 0.5):
                break
        await self.call(self.session.idle_end)

    async def _hand_over(self, sink: Sink, envelopes: list[Envelope], stop: asyncio.Event) -> bool:
        """True once every envelope is durably accepted (or, refused for good, counted as rejected)."""
        metrics = self.connector.metrics
        if not envelopes:
            return True
        return await deliver_batch(sink, envelopes, stop, metrics, stand_in=refused_envelope)

    def _set_lag(self, waiting: int) -> None:
        self.lag = waiting
        self.connector.update_lag()

    async def close(self) -> None:
        """Drop the connection once the call in hand (an idle_check lasts at most 0.5 s) is over."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call(self.session.close, False), 5)
        self.executor.shutdown(wait=False, cancel_futures=True)


class ImapConnector(Connector):
    name = "imap"

    def __init__(self, cfg: ImapConfig, cursors: CursorStore,
                 client_factory: Callable[..., IMAPClient] = IMAPClient) -> None:
        """`client_factory` takes IMAPClient's arguments; tests pass a fake server's client."""
        self.cfg = cfg
        self.cursors = cursors
        self.client_factory = client_factory
        self.metrics = ConnectorMetrics(self.name)
        self.workers: list[_FolderWorker] = []

    def update_lag(self) -> None:
        self.metrics.lag = float(sum(worker.lag for worker in self.workers))

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        self.workers = [_FolderWorker(self, account, folder)
                        for account in self.cfg.accounts for folder in account.folders]
        if not self.workers:
            log.warning("imap: no accounts configured")
            await stop.wait()
            return
        async with asyncio.TaskGroup() as group:
            for worker in self.workers:
                group.create_task(worker.run(sink, stop), name=f"imap:{worker.label}")

    async def close(self) -> None:
        await asyncio.gather(*(worker.close() for worker in self.workers))

