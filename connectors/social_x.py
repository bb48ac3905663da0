"""X (Twitter) Account Activity API webhooks as routes on the intake server.

GET answers the CRC (`response_token` = base64 HMAC-SHA256 of `crc_token` with the consumer
secret); POST checks `x-twitter-webhooks-signature` (the same HMAC over the raw body) before reading
anything. Mentions and replies (`tweet_create_events`) are public, DMs (`direct_message_events`)
private; what our own account posts or sends is skipped, and so are the other event kinds, counted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import Counter
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from connectors.base import InputError, Sink
from connectors.config import XConfig
from connectors.metrics import ConnectorMetrics
from connectors.social_webhooks import (
    AcceptedKeys,
    attachment,
    ident,
    moment,
    objects,
    receive_signed,
    text_or_placeholder,
)
from pipeline.envelope import Envelope, Sender

PATH = "/webhooks/x"
_ENVELOPE_KEYS = {"for_user_id", "users", "user_has_blocked", "is_blocked_by", "source", "apps"}


def sign(secret: str, data: bytes) -> str:
    """`sha256=` + base64 HMAC-SHA256: both the CRC response token and the POST signature."""
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def _when(item: dict[str, Any], millis_key: str) -> datetime:
    if item.get(millis_key) is not None:
        return moment(item[millis_key])
    created = item.get("created_at")
    if isinstance(created, str):
        try:
            return datetime.strptime(created, "%a %b %d %H:%M:%S %z %Y")
        except ValueError:
            pass
    return moment(None)


def _str(value: object, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where} is not a string")
    return value


def _media(container: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    entities = (container or {}).get("extended_entities")
    items = entities.get("media") if isinstance(entities, dict) else None
    return [(str(m.get("type") or "photo"), m.get("media_url_https") or m.get("media_url"))
            for m in items or [] if isinstance(m, dict)]


def _envelope(**fields: Any) -> Envelope:
    try:
        return Envelope(channel="social", **fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"{fields['message_id']}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def _tweet(tweet: dict[str, Any], cfg: XConfig, ours: set[str], for_user: str | None, where: str,
           skipped: Counter[str]) -> Envelope | None:
    tweet_id = ident(tweet.get("id_str") or tweet.get("id"), f"{where}.id_str")
    user = tweet.get("user")
    if not isinstance(user, dict):
        raise InputError(f"{where}.user is not an object")
    author = ident(user.get("id_str") or user.get("id"), f"{where}.user.id_str")
    if author in ours:
        skipped["tweet:own"] += 1
        return None
    if "retweeted_status" in tweet:
        skipped["tweet:retweet"] += 1
        return None
    extended = tweet.get("extended_tweet") if isinstance(tweet.get("extended_tweet"), dict) else None
    source = extended if tweet.get("truncated") and extended and extended.get("full_text") else tweet
    text = _str(source.get("full_text") or source.get("text"), f"{where}.text") or ""
    media = _media(source) or _media(tweet)
    shown = source.get("display_text_range")
    customer_text = None
    if (isinstance(shown, list) and len(shown) == 2 and all(isinstance(n, int) for n in shown)
            and (shown[0], shown[1]) != (0, len(text))):
        customer_text = text[shown[0]:shown[1]].strip() or None  # without the leading @mentions
    reply = tweet.get("in_reply_to_status_id_str")
    thread = tweet.get("conversation_id_str") or reply or tweet_id
    meta = {"platform": "x", "event": "reply" if reply else "mention", "for_user_id": for_user or ""}
    for key in ("in_reply_to_user_id_str", "quoted_status_id_str"):
        if isinstance(tweet.get(key), str):
            meta[key.removesuffix("_str")] = tweet[key]
    lang = tweet.get("lang")
    return _envelope(
        account=cfg.account, message_id=f"tweet:{tweet_id}", conversation_id=f"tweet:{thread}",
        in_reply_to=f"tweet:{reply}" if reply else None,
        sender=Sender(kind="twitter_user", id=author, name=user.get("name") or None,
                      handle=user.get("screen_name") or None),
        received_at=_when(tweet, "timestamp_ms"), text=text_or_placeholder(text, media),
        customer_text=customer_text, language_hint=lang if isinstance(lang, str) and lang != "und" else None,
        public=True, attachments=tuple(attachment(kind, url) for kind, url in media), metadata=meta)


def _direct_message(event: dict[str, Any], cfg: XConfig, ours: set[str], users: dict[str, Any], where: str,
                    skipped: Counter[str]) -> Envelope | None:
    if event.get("type") != "message_create":
        skipped[f"dm:{event.get('type')}"] += 1
        return None
    event_id = ident(event.get("id"), f"{where}.id")
    create = event.get("message_create")
    if not isinstance(create, dict):
        raise InputError(f"{where}.message_create is not an object")
    sender = ident(create.get("sender_id"), f"{where}.message_create.sender_id")
    if sender in ours:
        skipped["dm:own"] += 1
        return None
    target = create.get("target") if isinstance(create.get("target"), dict) else {}
    recipient = str(target.get("recipient_id") or cfg.user_id)
    data = create.get("message_data")
    if not isinstance(data, dict):
        raise InputError(f"{where}.message_create.message_data is not an object")
    text = _str(data.get("text"), f"{where}.message_create.message_data.text") or ""
    singles = [data["attachment"]] if isinstance(data.get("attachment"), dict) else []
    media = [(str(m.get("type") or "photo"), m.get("media_url_https") or m.get("media_url"))
             for a in [*singles, *objects(data, "attachments", f"{where}.message_data")]
             for m in [a.get("media") if isinstance(a.get("media"), dict) else a]]
    profile = users.get(sender) if isinstance(users.get(sender), dict) else {}
    meta = {"platform": "x", "event": "direct_message", "recipient_id": recipient}
    quick = data.get("quick_reply_response")
    if isinstance(quick, dict) and isinstance(quick.get("metadata"), str):
        meta["quick_reply"] = quick["metadata"]
    pair = sorted({sender, recipient}, key=lambda i: (len(i), i))  # X's one-to-one id: smaller-larger
    return _envelope(
        account=cfg.account, message_id=f"dm:{event_id}", conversation_id="dm:" + "-".join(pair),
        sender=Sender(kind="twitter_user", id=sender, name=profile.get("name") or None,
                      handle=profile.get("screen_name") or None),
        received_at=_when(event, "created_timestamp"), text=text_or_placeholder(text, media), public=False,
        attachments=tuple(attachment(kind, url) for kind, url in media), metadata=meta)


def parse_webhook(payload: dict[str, Any], cfg: XConfig) -> tuple[list[Envelope], Counter[str]]:
    """Envelopes of one Account Activity POST and what was skipped by reason; `InputError` when malformed."""
    for_user = payload.get("for_user_id")
    if for_user is not None:
        for_user = ident(for_user, "for_user_id")
    ours = {i for i in (cfg.user_id, for_user) if i}
    users = payload.get("users")
    users = {} if users is None else users
    if not isinstance(users, dict):
        raise InputError("users is not an object")
    skipped: Counter[str] = Counter()
    found: list[Envelope | None] = []
    for i, tweet in enumerate(objects(payload, "tweet_create_events", "body")):
        found.append(_tweet(tweet, cfg, ours, for_user, f"tweet_create_events[{i}]", skipped))
    for i, event in enumerate(objects(payload, "direct_message_events", "body")):
        found.append(_direct_message(event, cfg, ours, users, f"direct_message_events[{i}]", skipped))
    for key in set(payload) - _ENVELOPE_KEYS - {"tweet_create_events", "direct_message_events"}:
        skipped[key] += len(payload[key]) if isinstance(payload[key], list) else 1
    return [e for e in found if e is not None], skipped


class XWebhookRoutes:
    """`HttpRoutes` for X: mount with `HttpIntakeConnector(cfg, routes=[XWebhookRoutes(x_cfg)])`."""

    name = "social_x"

    def __init__(self, cfg: XConfig) -> None:
        self.cfg = cfg
        if not cfg.consumer_secret.get_secret_value():
            raise ValueError("X routes need consumer_secret: without it any body would pass the signature check")
        self.metrics = ConnectorMetrics(self.name)
        self.skipped: Counter[str] = Counter()
        self.accepted = AcceptedKeys(cfg.remember_keys)

    def router(self, sink: Sink) -> APIRouter:
        router = APIRouter()
        secret = self.cfg.consumer_secret.get_secret_value()

        @router.get(PATH)
        async def crc(request: Request) -> JSONResponse:
            token = request.query_params.get("crc_token")
            if not token:
                raise HTTPException(status_code=400, detail="crc_token is required")
            return JSONResponse({"response_token": sign(secret, token.encode())})

        @router.post(PATH)
        async def receive(request: Request) -> JSONResponse:
            return await receive_signed(
                request, sink=sink, metrics=self.metrics, accepted=self.accepted, skipped=self.skipped,
                max_body_bytes=self.cfg.max_body_bytes, signature_header="x-twitter-webhooks-signature",
                sign=lambda body: sign(secret, body), parse=lambda payload: parse_webhook(payload, self.cfg))

        return router
