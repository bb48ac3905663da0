"""Telegram bot chats: long polling with `telegram.Bot.get_updates`, or a webhook on the intake server.

Polling moves the offset (last accepted update_id + 1) into the cursor store only after the sink
accepted the batch; the next getUpdates sends it, which is what confirms the updates to Telegram.
Until then Telegram keeps them, so a crash reads the unacknowledged tail again (harmless: same
delivery keys). ptb's `Application`/`Updater` is not used: it confirms before our sink has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from connectors.base import Connector, Sink, deliver_batch
from connectors.config import TelegramConfig
from connectors.cursors import CursorStore
from connectors.http_intake import hand_over
from connectors.metrics import ConnectorMetrics
from connectors.telegram_updates import Skip, to_envelope

# Opt in to ptb's coming durations-as-timedelta: without it ptb 22 warns (from inside its own
# request code) on every 429, and a test run with warnings as errors turns that into a crash.
os.environ.setdefault("PTB_TIMEDELTA", "true")
log = logging.getLogger(__name__)
T = TypeVar("T")
WEBHOOK_PATH = "/webhooks/telegram"


def make_bot(cfg: TelegramConfig) -> Bot:
    timeouts = {"read_timeout": cfg.request_timeout_s, "write_timeout": cfg.request_timeout_s,
                "connect_timeout": cfg.request_timeout_s, "pool_timeout": cfg.request_timeout_s}
    # ptb's get_updates adds the long-poll `timeout` to this read timeout, so the HTTP read always
    # outlasts Telegram's wait (a read timeout shorter than the poll would fail every idle poll)
    return Bot(cfg.token_value, base_url=cfg.base_url,
               request=HTTPXRequest(connection_pool_size=4, **timeouts),
               get_updates_request=HTTPXRequest(connection_pool_size=1, **timeouts))


class TelegramConnector(Connector):
    """Polling mode reads getUpdates; webhook mode only registers the webhook (the updates arrive
    through `TelegramWebhookRoutes` on the intake server) and waits."""

    name = "telegram"

    def __init__(self, cfg: TelegramConfig, cursors: CursorStore, bot: Bot | None = None) -> None:
        self.cfg = cfg
        self.cursors = cursors
        self.bot = bot or make_bot(cfg)
        self.metrics = ConnectorMetrics(self.name)
        self.cursor_key = f"offset:{cfg.bot_id}"
        # lag stays 0: the Bot API does not say how many updates wait behind a getUpdates answer

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        if self.cfg.mode == "webhook":
            if self.cfg.webhook_url:
                await self._retrying(lambda: register_webhook(self.bot, self.cfg), stop)
            await stop.wait()
            return
        saved = self.cursors.load(self.name, self.cursor_key)
        offset = int(saved) if saved else None
        log.info("telegram: long polling as bot %s from offset %s", self.cfg.bot_id, offset)
        while not stop.is_set():
            updates = await self._retrying(lambda o=offset: self._fetch(o), stop)
            if updates is None:
                return
            if not updates:
                continue
            if not await self._hand_over(sink, updates, stop):
                return  # stopped before the sink took them: Telegram keeps them for the next run
            offset = updates[-1].update_id + 1  # unparsable ones too: skipped, never retried forever
            self.cursors.save(self.name, self.cursor_key, str(offset))

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # nothing to release if it never connected
            await self.bot.shutdown()

    async def _fetch(self, offset: int | None) -> Sequence[Update | Unparsable]:
        await self.bot.initialize()  # a no-op once done; here so a failure is retried like any other
        allowed = list(self.cfg.allowed_updates)
        try:
            return await self.bot.get_updates(offset=offset, timeout=self.cfg.poll_timeout_s,
                                              limit=self.cfg.batch_limit, allowed_updates=allowed)
        except (TypeError, KeyError, ValueError) as exc:
            # ptb parses the whole batch at once: one update it cannot read (a Bot API change ahead
            # of this ptb) would block the stream. Read the same batch raw and parse one by one.
            log.error("telegram: ptb could not parse a batch (%r); parsing its updates one by one", exc)
            with warnings.catch_warnings():  # ptb asks to use get_updates: the parsing is what we avoid
                warnings.filterwarnings("ignore", "Please use 'Bot.getUpdates'", PTBUserWarning)
                raw = await self.bot.do_api_request("getUpdates", api_kwargs={
                    "offset": offset, "timeout": 0, "limit": self.cfg.batch_limit, "allowed_updates": allowed})
            return [_parse_one(data, self.bot) for data in raw]

    async def _retrying(self, call: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T | None:
        """Run a Bot API call until it succeeds; None if stop came first. Telegram's 429 is waited
        out exactly as long as it asks; network errors, 5xx and conflicts back off."""
        backoff = self.cfg.retry_initial_s
        while not stop.is_set():
            try:
                return await _unless_stopped(call(), stop)
            except _Stopped:
                return None
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                self.metrics.error(exc)
                log.warning("telegram: flood control, Telegram asks to retry after %.0f s", wait)
                await _sleep(stop, wait)
                continue
            except InvalidToken:
                log.error("telegram: the bot token was refused; fix connectors.telegram.token")
                raise
            except Conflict as exc:
                log.error("telegram: getUpdates conflict: %s. Another process polls this bot, or a webhook is "
                          "set (deleteWebhook, or run in webhook mode); retrying in %.0f s", exc.message, backoff)
                self.metrics.error(exc)
            except (NetworkError, TelegramError) as exc:  # NetworkError covers timeouts and 5xx
                log.warning("telegram: %r; retrying in %.1f s", exc, backoff)
                self.metrics.error(exc)
            await _sleep(stop, backoff)
            backoff = min(backoff * 2, self.cfg.retry_max_s)
        return None

    async def _hand_over(self, sink: Sink, updates: Sequence[Update | Unparsable], stop: asyncio.Event) -> bool:
        envelopes = []
        for update in updates:
            if isinstance(update, Unparsable):
                self.metrics.rejected += 1
                self.metrics.error(update.reason)
                log.error("telegram: update %d is skipped, ptb cannot parse it: %s", update.update_id, update.reason)
                continue
            try:
                result = to_envelope(update, self.cfg.account)
            except Exception as exc:  # whatever one update does to the mapping, it is that update's fault
                self.metrics.rejected += 1
                self.metrics.error(exc)
                log.error("telegram: update %d could not be mapped and is skipped: %r", update.update_id, exc)
                continue
            if isinstance(result, Skip):
                log.info("telegram: update %d skipped: %s", update.update_id, result.reason)
            else:
                envelopes.append(result)
        if not envelopes:
            return True
        self.metrics.received += len(envelopes)
        return await deliver_batch(sink, envelopes, stop, self.metrics)


async def register_webhook(bot: Bot, cfg: TelegramConfig) -> bool:
    """setWebhook with the secret Telegram must echo in X-Telegram-Bot-Api-Secret-Token."""
    if not cfg.webhook_url or cfg.webhook_secret is None:
        raise ValueError("webhook_url and webhook_secret are needed to register a webhook")
    await bot.initialize()
    done = await bot.set_webhook(url=cfg.webhook_url, secret_token=cfg.webhook_secret.get_secret_value(),
                                 allowed_updates=list(cfg.allowed_updates))
    log.info("telegram: webhook registered at %s", cfg.webhook_url)
    return done


class TelegramWebhookRoutes:
    """POST /webhooks/telegram on the intake server. 200 only after the sink accepted the update:
    any other answer makes Telegram send it again later."""

    name = "telegram"

    def __init__(self, cfg: TelegramConfig, bot: Bot | None = None) -> None:
        if cfg.webhook_secret is None:
            raise ValueError("webhook_secret: required to receive Telegram webhooks")
        self.cfg = cfg
        self.bot = bot or make_bot(cfg)  # only to attach to parsed updates; never called from here
        self.metrics = ConnectorMetrics(self.name)

    def router(self, sink: Sink) -> APIRouter:
        router = APIRouter()
        assert self.cfg.webhook_secret is not None
        secret = self.cfg.webhook_secret.get_secret_value().encode()

        @router.post(WEBHOOK_PATH)
        async def receive(request: Request, x_telegram_bot_api_secret_token: str | None = Header(default=None),
                          ) -> JSONResponse:
            if not hmac.compare_digest((x_telegram_bot_api_secret_token or "").encode(), secret):
                raise HTTPException(status_code=401, detail="missing or wrong X-Telegram-Bot-Api-Secret-Token")
            try:
                update = self._parse(await request.body())
                result = to_envelope(update, self.cfg.account)
            except Exception as exc:
                self.metrics.rejected += 1
                self.metrics.error(exc)
                raise HTTPException(status_code=400, detail=f"not a Telegram update: {exc}") from exc
            if isinstance(result, Skip):
                log.info("telegram: update %d skipped: %s", update.update_id, result.reason)
                return JSONResponse({"accepted": 0, "skipped": result.reason})
            await hand_over(sink, [result], self.metrics)
            return JSONResponse({"accepted": 1})

        return router

    def _parse(self, body: bytes) -> Update:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise ValueError("expected a JSON object with an integer update_id")
        update = Update.de_json(data, self.bot)
        assert update is not None
        return update


@dataclass(frozen=True)
class Unparsable:
    update_id: int
    reason: str


def _parse_one(data: dict[str, Any], bot: Bot) -> Update | Unparsable:
    try:
        update = Update.de_json(data, bot)
        assert update is not None
        return update
    except Exception as exc:
        return Unparsable(int(data["update_id"]), f"{exc.__class__.__name__}: {exc}")


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # ptb 22 warns that retry_after will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """Await `work`, cancelling it if stop comes first (then raise `_Stopped`)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise _Stopped
    return task.result()


class _Stopped(Exception):
    pass


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
