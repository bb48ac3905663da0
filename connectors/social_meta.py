"""Meta webhooks (Messenger, Instagram, Facebook Page comments) as routes on the intake server.

GET answers the subscription handshake; POST checks `X-Hub-Signature-256` (HMAC-SHA256 of the raw
body with the app secret) before reading anything, turns every entry into envelopes and hands them
to the sink together: 200 means all of them are held, anything else makes Meta redeliver the POST.
Comments, posts and mentions are public; DMs are private. Our own messages (echoes, the page's own
comments) are skipped, and so are event kinds we do not take (reads, reactions...), counted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from connectors.base import InputError, Sink
from connectors.config import MetaConfig
from connectors.metrics import ConnectorMetrics
from connectors.social_webhooks import (
    AcceptedKeys,
    attachment,
    ident,
    moment,
    objects,
    receive_signed,
    signature_matches,
    text_or_placeholder,
)
from pipeline.envelope import Attachment, Envelope, Sender

PATH = "/webhooks/meta"
_PLATFORMS = {"page": "messenger", "instagram": "instagram"}
_FEED_ITEMS = {"comment", "post", "status", "photo", "video"}


@dataclass
class Parsed:
    envelopes: list[Envelope] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _participant(event: dict[str, Any], key: str, where: str) -> str:
    who = event.get(key)
    if not isinstance(who, dict):
        raise InputError(f"{where}.{key} is not an object")
    return ident(who.get("id"), f"{where}.{key}.id")


def _text(value: object, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where} is not a string")
    return value


def _media(items: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    out = []
    for item in items:
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        url = payload.get("url")
        out.append((str(item.get("type") or "file"), url if isinstance(url, str) else None))
    return out


class _Builder:
    """Collects one POST's envelopes for one configured account."""

    def __init__(self, cfg: MetaConfig) -> None:
        self.cfg = cfg
        if not cfg.app_secret.get_secret_value():
            raise ValueError("Meta routes need app_secret: without it any body would pass the signature check")
        self.parsed = Parsed()

    def envelope(self, *, message_id: str, conversation_id: str | None, sender: Sender, when: datetime,
                 text: str, public: bool, metadata: dict[str, str], in_reply_to: str | None = None,
                 references: tuple[str, ...] = (), attachments: tuple[Attachment, ...] = ()) -> None:
        try:
            self.parsed.envelopes.append(Envelope(
                channel="social", account=self.cfg.account, message_id=message_id, conversation_id=conversation_id,
                in_reply_to=in_reply_to, references=references, sender=sender, received_at=when, text=text,
                public=public, attachments=attachments, metadata=metadata))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{message_id}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc

    def skip(self, reason: str) -> None:
        self.parsed.skipped[reason] += 1

    def messaging(self, event: dict[str, Any], platform: str, own: set[str], where: str) -> None:
        sender = _participant(event, "sender", where)
        recipient = _participant(event, "recipient", where)
        message, postback = event.get("message"), event.get("postback")
        if message is None and postback is None:
            kinds = sorted(set(event) - {"sender", "recipient", "timestamp"})
            self.skip(f"{platform}:{kinds[0] if kinds else 'empty'}")
            return
        if message is not None and not isinstance(message, dict):
            raise InputError(f"{where}.message is not an object")
        if postback is not None and not isinstance(postback, dict):
            raise InputError(f"{where}.postback is not an object")
        if sender in own or (message or {}).get("is_echo"):
            self.skip(f"{platform}:echo")
            return
        who = Sender(kind="facebook_user" if platform == "messenger" else "instagram_user", id=sender)
        meta = {"platform": platform, "recipient_id": recipient}
        when = moment(event.get("timestamp"))
        conversation = f"{platform}:{recipient}:{sender}"
        if message is not None:
            mid = ident(message.get("mid"), f"{where}.message.mid")
            media = _media(objects(message, "attachments", f"{where}.message"))
            reply_to = message.get("reply_to")
            quick = message.get("quick_reply")
            if isinstance(quick, dict) and isinstance(quick.get("payload"), str):
                meta["quick_reply"] = quick["payload"]
            self.envelope(
                message_id=f"{platform}:{mid}", conversation_id=conversation, sender=who, when=when,
                text=text_or_placeholder(_text(message.get("text"), f"{where}.message.text"), media),
                public=False, metadata=meta | {"event": "message"},
                in_reply_to=f"{platform}:{reply_to['mid']}" if isinstance(reply_to, dict)
                and reply_to.get("mid") else None,
                attachments=tuple(attachment(kind, url) for kind, url in media))
            return
        assert postback is not None
        title = _text(postback.get("title"), f"{where}.postback.title") or ""
        # a postback's mid is recent; older payloads have none, and sender + time identify the tap
        key = postback.get("mid") or f"{sender}:{event.get('timestamp')}"
        if isinstance(postback.get("payload"), str):
            meta["postback_payload"] = postback["payload"]
        self.envelope(message_id=f"{platform}:postback:{key}", conversation_id=conversation, sender=who,
                      when=when, text=title or f"[postback {meta.get('postback_payload', '')}]".strip(),
                      public=False, metadata=meta | {"event": "postback"})

    def feed(self, value: dict[str, Any], page_id: str, own: set[str], where: str) -> None:
        item, verb = value.get("item"), value.get("verb")
        if item not in _FEED_ITEMS or verb not in ("add", "edited"):
            self.skip(f"feed:{item}:{verb}")
            return
        author = value.get("from")
        if not isinstance(author, dict):
            raise InputError(f"{where}.value.from is not an object")
        sender = ident(author.get("id"), f"{where}.value.from.id")
        if sender in own:
            self.skip("feed:own")
            return
        post_id = ident(value.get("post_id"), f"{where}.value.post_id")
        text = _text(value.get("message"), f"{where}.value.message") or ""
        in_reply_to = None
        if item == "comment":
            original = "fb_comment:" + ident(value.get("comment_id"), f"{where}.value.comment_id")
            parent = value.get("parent_id")
            in_reply_to = f"fb_comment:{parent}" if parent and str(parent) != post_id else f"fb_post:{post_id}"
        else:
            original = f"fb_post:{post_id}"
        link = value.get("link")
        media = [(str(item), link)] if item in ("photo", "video") and isinstance(link, str) else []
        message_id, references = original, ()
        if verb == "edited":
            # each edit is a new version; the same edit redelivered must keep its key
            message_id = f"{original}#edit-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
            references = (original,)
        self.envelope(
            message_id=message_id, conversation_id=f"fb_post:{post_id}",
            sender=Sender(kind="facebook_user", id=sender, name=author.get("name") or None),
            when=moment(value.get("created_time")), text=text_or_placeholder(text, media) or f"[{item}]",
            public=True, in_reply_to=in_reply_to, references=references,
            attachments=tuple(attachment(kind, url) for kind, url in media),
            metadata={"platform": "facebook", "event": item if verb == "add" else f"{item}_edited",
                      "page_id": page_id, "post_id": post_id})

    def instagram(self, field_name: str, value: dict[str, Any], entry: dict[str, Any], own: set[str],
                  where: str) -> None:
        author = value.get("from")
        if author is not None and not isinstance(author, dict):
            raise InputError(f"{where}.value.from is not an object")
        media = value.get("media")
        media_id = str(media.get("id")) if isinstance(media, dict) and media.get("id") else value.get("media_id")
        meta = {"platform": "instagram", "event": "mention" if field_name == "mentions" else "comment",
                "account_id": str(entry.get("id"))}
        if media_id:
            meta["media_id"] = str(media_id)
        if field_name == "mentions":
            # the documented mention carries only comment_id and media_id; the text is fetched later
            comment_id = value.get("comment_id") or value.get("id")
        else:
            comment_id = ident(value.get("id"), f"{where}.value.id")
        if author is None and field_name != "mentions":
            raise InputError(f"{where}.value.from is missing")
        if author is not None:
            sender = Sender(kind="instagram_user", id=ident(author.get("id"), f"{where}.value.from.id"),
                            handle=author.get("username") or None)
        else:
            sender = Sender(kind="instagram_mention", id=str(comment_id or media_id or "unknown"))
            meta["needs_fetch"] = "mentioned_comment" if comment_id else "mentioned_media"
        if sender.id in own:
            self.skip(f"instagram:{field_name}:own")
            return
        if not comment_id and not media_id:
            raise InputError(f"{where}.value names neither a comment nor a media")
        message_id = f"ig_comment:{comment_id}" if comment_id else f"ig_media:{media_id}"
        parent = value.get("parent_id")
        text = _text(value.get("text"), f"{where}.value.text")
        self.envelope(
            message_id=message_id, conversation_id=f"ig_media:{media_id}" if media_id else message_id,
            sender=sender, when=moment(entry.get("time")), public=True, metadata=meta,
            text=text or f"[mentioned in {message_id}{' on ig_media:' + str(media_id) if media_id else ''}]",
            in_reply_to=f"ig_comment:{parent}" if parent else (f"ig_media:{media_id}" if comment_id and media_id
                                                              else None))


def parse_webhook(payload: dict[str, Any], cfg: MetaConfig) -> Parsed:
    """Envelopes of one webhook POST, and what was skipped by reason; `InputError` when malformed."""
    builder = _Builder(cfg)
    kind = payload.get("object")
    if not isinstance(kind, str) or "entry" not in payload:
        raise InputError("body has no `object` string and `entry` list")
    entries = objects(payload, "entry", "body")
    platform = _PLATFORMS.get(kind)
    if platform is None:
        builder.skip(f"object:{kind}")
        return builder.parsed
    ours = set(cfg.page_ids) | set(cfg.instagram_ids)
    for i, entry in enumerate(entries):
        where = f"entry[{i}]"
        own = ours | {str(entry["id"])} if entry.get("id") is not None else ours
        for j, event in enumerate(objects(entry, "messaging", where)):
            builder.messaging(event, platform, own, f"{where}.messaging[{j}]")
        for j, change in enumerate(objects(entry, "changes", where)):
            at = f"{where}.changes[{j}]"
            name, value = change.get("field"), change.get("value")
            if not isinstance(value, dict):
                raise InputError(f"{at}.value is not an object")
            if kind == "page" and name == "feed":
                builder.feed(value, str(entry.get("id")), own, at)
            elif kind == "instagram" and name in ("comments", "live_comments", "mentions"):
                builder.instagram(str(name), value, entry, own, at)
            else:
                builder.skip(f"{kind}:{name}")
        for _ in objects(entry, "standby", where):
            builder.skip(f"{platform}:standby")
    return builder.parsed


class MetaWebhookRoutes:
    """`HttpRoutes` for Meta: mount with `HttpIntakeConnector(cfg, routes=[MetaWebhookRoutes(meta_cfg)])`."""

    name = "social_meta"

    def __init__(self, cfg: MetaConfig) -> None:
        self.cfg = cfg
        if not cfg.app_secret.get_secret_value():
            raise ValueError("Meta routes need app_secret: without it any body would pass the signature check")
        self.metrics = ConnectorMetrics(self.name)
        self.skipped: Counter[str] = Counter()
        self.accepted = AcceptedKeys(cfg.remember_keys)

    def _parse(self, payload: dict[str, Any]) -> tuple[list[Envelope], Counter[str]]:
        parsed = parse_webhook(payload, self.cfg)
        return parsed.envelopes, parsed.skipped

    def router(self, sink: Sink) -> APIRouter:
        router = APIRouter()
        secret = self.cfg.app_secret.get_secret_value()
        token = self.cfg.verify_token.get_secret_value()

        @router.get(PATH, response_class=PlainTextResponse)
        async def verify(request: Request) -> PlainTextResponse:
            query = request.query_params
            given = query.get("hub.verify_token")
            if query.get("hub.mode") != "subscribe" or not signature_matches(given, token) or not token:
                raise HTTPException(status_code=403, detail="wrong hub.mode or hub.verify_token")
            return PlainTextResponse(query.get("hub.challenge", ""))

        @router.post(PATH)
        async def receive(request: Request) -> JSONResponse:
            return await receive_signed(
                request, sink=sink, metrics=self.metrics, accepted=self.accepted, skipped=self.skipped,
                max_body_bytes=self.cfg.max_body_bytes, signature_header="X-Hub-Signature-256",
                sign=lambda body: sign(secret, body), parse=self._parse)

        return router
