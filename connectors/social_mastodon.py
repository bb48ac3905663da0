"""Mastodon mentions by polling `GET /api/v1/notifications?types[]=mention`.

The cursor is the id of the newest notification the sink accepted; it is saved only after that. We
page forward with `min_id` ("immediately newer than") rather than `since_id`, which answers the
newest page and would skip whatever lay between after a long outage. The first run reads the
retained backlog from the oldest (`backlog`), or starts from the newest page. Public and unlisted posts are
public; followers-only and direct posts are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.base import Connector, InputError, Sink, deliver_batch
from connectors.config import MastodonConfig
from connectors.cursors import CursorStore
from connectors.metrics import ConnectorMetrics
from connectors.social_webhooks import attachment, text_or_placeholder
from pipeline.envelope import Envelope, Sender

log = logging.getLogger(__name__)
_BREAKS = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@[\w.-]+(?:@[\w.-]+)?)+\s*")


def plain_text(content: str) -> str:
    return html.unescape(_TAGS.sub("", _BREAKS.sub("\n", content))).strip()


def _newest_first(ids: Sequence[str]) -> list[str]:
    return sorted(ids, key=lambda i: (len(i), i), reverse=True)  # snowflake ids: longer is newer


def to_envelope(notification: dict[str, Any], cfg: MastodonConfig) -> Envelope | None:
    """None for what we do not take (other types, our own posts); `InputError` when malformed."""
    status, author = notification.get("status"), notification.get("account")
    if notification.get("type") != "mention":
        return None
    if not isinstance(status, dict) or not isinstance(author, dict) or not status.get("id") or not author.get("id"):
        raise InputError(f"notification {notification.get('id')} has no status or account id")
    if cfg.own_account_id and str(author["id"]) == cfg.own_account_id:
        return None
    text = plain_text(str(status.get("content") or ""))
    media = [(str(m.get("type") or "file"), m.get("url")) for m in status.get("media_attachments") or []
             if isinstance(m, dict)]
    spoiler = str(status.get("spoiler_text") or "")
    customer = _LEADING_MENTIONS.sub("", text) or None
    created = status.get("created_at") or notification.get("created_at")
    try:
        when = datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else datetime.now(UTC)
    except ValueError as exc:
        raise InputError(f"status {status['id']}: created_at {created!r} is not ISO 8601") from exc
    reply = status.get("in_reply_to_id")
    visibility = str(status.get("visibility") or "public")
    return Envelope(
        channel="social", account=cfg.account, message_id=f"status:{status['id']}",
        conversation_id=f"status:{reply or status['id']}", in_reply_to=f"status:{reply}" if reply else None,
        sender=Sender(kind="mastodon_account", id=str(author.get("acct") or author["id"]),
                      name=author.get("display_name") or None, handle=author.get("username") or None),
        received_at=when if when.tzinfo else when.replace(tzinfo=UTC), subject=spoiler or None,
        text=text_or_placeholder(text, media), customer_text=customer if customer != text else None,
        language_hint=status.get("language") or None, public=visibility in ("public", "unlisted"),
        attachments=tuple(attachment(kind, url) for kind, url in media),
        raw_ref=status.get("url") or status.get("uri") or None,
        metadata={"platform": "mastodon", "notification_id": str(notification.get("id")), "visibility": visibility})


class MastodonConnector(Connector):
    name = "social_mastodon"

    def __init__(self, cfg: MastodonConfig, cursors: CursorStore, client: httpx.AsyncClient | None = None) -> None:
        self.cfg = cfg
        self.cursors = cursors
        self.client = client or httpx.AsyncClient(
            base_url=cfg.instance_url, timeout=30,
            headers={"Authorization": f"Bearer {cfg.access_token.get_secret_value()}"})
        self.metrics = ConnectorMetrics(self.name)
        self.cursor_key = f"min_id:{cfg.instance_url}:{cfg.account}"

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        cursor = self.cursors.load(self.name, self.cursor_key) or ("0" if self.cfg.backlog else None)
        backoff = self.cfg.retry_initial_s
        while not stop.is_set():
            try:
                page = await self._fetch(cursor)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code in (401, 403):
                    log.error("mastodon: the access token was refused; fix connectors.social_mastodon.access_token")
                    raise
                wait = _retry_after(exc.response) or backoff
                self.metrics.error(exc)
                log.warning("mastodon: HTTP %d; retrying in %.1f s", exc.response.status_code, wait)
                await _sleep(stop, wait)
                backoff = min(backoff * 2, self.cfg.retry_max_s)
                continue
            except (httpx.TransportError, ValueError) as exc:
                self.metrics.error(exc)
                log.warning("mastodon: %r; retrying in %.1f s", exc, backoff)
                await _sleep(stop, backoff)
                backoff = min(backoff * 2, self.cfg.retry_max_s)
                continue
            backoff = self.cfg.retry_initial_s
            if not page:
                await _sleep(stop, self.cfg.poll_interval_s)
                continue
            if not await self._hand_over(sink, page, stop):
                return  # not accepted before stop: the same page is read again next run
            cursor = _newest_first([str(n["id"]) for n in page])[0]
            self.cursors.save(self.name, self.cursor_key, cursor)
            if len(page) < self.cfg.page_limit:
                await _sleep(stop, self.cfg.poll_interval_s)

    async def close(self) -> None:
        await self.client.aclose()

    async def _fetch(self, cursor: str | None) -> list[dict[str, Any]]:
        params: list[tuple[str, str | int]] = [("types[]", "mention"), ("limit", self.cfg.page_limit)]
        if cursor:
            params.append(("min_id", cursor))
        answer = await self.client.get("/api/v1/notifications", params=params)
        answer.raise_for_status()
        page = answer.json()
        if not isinstance(page, list) or not all(isinstance(n, dict) and n.get("id") for n in page):
            raise ValueError("notifications answer is not a list of notifications")
        return page

    async def _hand_over(self, sink: Sink, page: list[dict[str, Any]], stop: asyncio.Event) -> bool:
        envelopes = []
        for notification in page:
            try:
                envelope = to_envelope(notification, self.cfg)
            except (InputError, ValueError) as exc:
                self.metrics.rejected += 1
                self.metrics.error(exc)
                log.error("mastodon: notification %s skipped: %s", notification.get("id"), exc)
                continue
            if envelope is not None:
                envelopes.append(envelope)
        if not envelopes:
            return True
        self.metrics.received += len(envelopes)
        return await deliver_batch(sink, envelopes, stop, self.metrics)


def _retry_after(response: httpx.Response) -> float | None:
    """429 answers say when to come back: Retry-After, or Mastodon's X-RateLimit-Reset time."""
    if response.status_code != 429:
        return None
    with contextlib.suppress(ValueError):
        return float(response.headers.get("retry-after", ""))
    with contextlib.suppress(ValueError):
        reset = datetime.fromisoformat(response.headers.get("x-ratelimit-reset", "").replace("Z", "+00:00"))
        return max((reset - datetime.now(UTC)).total_seconds(), 0.0)
    return None


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
