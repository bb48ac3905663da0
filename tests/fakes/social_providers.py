"""Fake Meta and X webhook senders: realistic payloads, signed with each provider's real algorithm
(written here from the providers' documentation, not imported from the connectors under test), POSTed
over real HTTP and redelivered until a 2xx the way the providers do.

`meta_stream` / `x_stream` build long mixed streams: customer messages (whose message ids the test
expects) interleaved with what a real subscription also delivers and we must not store (echoes of
our own messages, read receipts, likes, our own tweets).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.base import HttpIntakeConfig, HttpRoutes, Sink
from connectors.http_intake import HttpIntakeConnector

RETRIED = (httpx.TransportError,)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(routes: Sequence[HttpRoutes], sink: Sink, port: int | None = None) -> AsyncIterator[str]:
    """The real intake server with `routes` on 127.0.0.1; yields its base URL once it answers."""
    port = port or free_port()
    connector = HttpIntakeConnector(HttpIntakeConfig(port=port), routes=routes)
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(sink, stop))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(500):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(base + "/healthz")).status_code == 200:
                        break
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@dataclass
class Delivery:
    """What one webhook POST went through: every status seen (None = no answer), attempts made."""

    statuses: list[int | None] = field(default_factory=list)

    @property
    def final(self) -> int | None:
        return self.statuses[-1] if self.statuses else None


class WebhookSender:
    """Signs a body and POSTs it; `deliver` retries on no answer or non-2xx with capped backoff."""

    def __init__(self, url: str, signature_header: str, backoff_s: float = 0.01, max_backoff_s: float = 0.2,
                 deadline_s: float = 60.0) -> None:
        self.url = url
        self.signature_header = signature_header
        self.backoff_s, self.max_backoff_s, self.deadline_s = backoff_s, max_backoff_s, deadline_s
        self.posts = 0

    def sign(self, body: bytes) -> str:
        raise NotImplementedError

    def encode(self, payload: dict[str, Any]) -> bytes:
        return json.dumps(payload, ensure_ascii=False).encode()

    async def post_once(self, client: httpx.AsyncClient, body: bytes, signature: str | None = "sign") -> httpx.Response:
        headers = {"content-type": "application/json"}
        if signature == "sign":
            headers[self.signature_header] = self.sign(body)
        elif signature is not None:
            headers[self.signature_header] = signature
        self.posts += 1
        return await client.post(self.url, content=body, headers=headers)

    async def deliver(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> Delivery:
        body, delivery = self.encode(payload), Delivery()
        loop = asyncio.get_running_loop()
        deadline, backoff = loop.time() + self.deadline_s, self.backoff_s
        while True:
            try:
                answer = await self.post_once(client, body)
                delivery.statuses.append(answer.status_code)
                if 200 <= answer.status_code < 300:
                    return delivery
            except RETRIED:
                delivery.statuses.append(None)
            if loop.time() > deadline:
                raise AssertionError(f"webhook never accepted after {len(delivery.statuses)} attempts: "
                                     f"{delivery.statuses[-5:]}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def deliver_all(self, payloads: Sequence[dict[str, Any]], concurrency: int = 4) -> list[Delivery]:
        """Several POSTs in flight at once, as the providers send them."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(payloads)):
            queue.put_nowait(i)
        results: list[Delivery | None] = [None] * len(payloads)

        async def worker(client: httpx.AsyncClient) -> None:
            while not queue.empty():
                i = queue.get_nowait()
                results[i] = await self.deliver(client, payloads[i])

        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return [r for r in results if r is not None]


class FakeMeta(WebhookSender):
    """Meta's Graph webhooks: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`."""

    def __init__(self, url: str, app_secret: str, page_id: str = "104512345678901",
                 ig_id: str = "17841400123456789", **kwargs: Any) -> None:
        super().__init__(url, "X-Hub-Signature-256", **kwargs)
        self.app_secret, self.page_id, self.ig_id = app_secret, page_id, ig_id
        self.clock = itertools.count(1_763_000_000_000, 1_137)

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    # events, as in developers.facebook.com/docs/messenger-platform/webhooks and instagram-platform/webhooks
    def dm(self, sender: str, text: str | None, mid: str, *, ours: str | None = None, echo: bool = False,
           attachments: Sequence[tuple[str, str]] = (), reply_to: str | None = None,
           quick_reply: str | None = None) -> dict[str, Any]:
        page = ours or self.page_id
        message: dict[str, Any] = {"mid": mid}
        if text is not None:
            message["text"] = text
        if echo:
            message |= {"is_echo": True, "app_id": 1517776481860111}
        if attachments:
            message["attachments"] = [{"type": kind, "payload": {"url": url}} for kind, url in attachments]
        if reply_to:
            message["reply_to"] = {"mid": reply_to}
        if quick_reply:
            message["quick_reply"] = {"payload": quick_reply}
        sender_id, recipient_id = (page, sender) if echo else (sender, page)
        return {"sender": {"id": sender_id}, "recipient": {"id": recipient_id}, "timestamp": next(self.clock),
                "message": message}

    def postback(self, sender: str, title: str, payload: str, mid: str) -> dict[str, Any]:
        return {"sender": {"id": sender}, "recipient": {"id": self.page_id}, "timestamp": next(self.clock),
                "postback": {"title": title, "payload": payload, "mid": mid}}

    def read_receipt(self, sender: str) -> dict[str, Any]:
        stamp = next(self.clock)
        return {"sender": {"id": sender}, "recipient": {"id": self.page_id}, "timestamp": stamp,
                "read": {"watermark": stamp - 5}}

    def page_comment(self, comment_id: str, post_id: str, sender: str, name: str, message: str, *,
                     verb: str = "add", parent_id: str | None = None) -> dict[str, Any]:
        return {"field": "feed", "value": {
            "from": {"id": sender, "name": name}, "post": {"status_type": "added_photos", "is_published": True,
                                                           "id": post_id},
            "message": message, "post_id": post_id, "comment_id": comment_id, "created_time": next(self.clock) // 1000,
            "item": "comment", "parent_id": parent_id or post_id, "verb": verb}}

    def ig_comment(self, comment_id: str, text: str, user_id: str, username: str, media_id: str,
                   parent_id: str | None = None) -> dict[str, Any]:
        value: dict[str, Any] = {"from": {"id": user_id, "username": username},
                                 "media": {"id": media_id, "media_product_type": "FEED"},
                                 "id": comment_id, "text": text}
        if parent_id:
            value["parent_id"] = parent_id
        return {"field": "comments", "value": value}

    def ig_mention(self, comment_id: str, media_id: str) -> dict[str, Any]:
        return {"field": "mentions", "value": {"media_id": media_id, "comment_id": comment_id}}

    def page(self, *entries: dict[str, Any]) -> dict[str, Any]:
        return {"object": "page", "entry": list(entries)}

    def instagram(self, *entries: dict[str, Any]) -> dict[str, Any]:
        return {"object": "instagram", "entry": list(entries)}

    def entry(self, *, messaging: Sequence[dict[str, Any]] = (), changes: Sequence[dict[str, Any]] = (),
              ig: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.ig_id if ig else self.page_id, "time": next(self.clock)}
        if messaging:
            body["messaging"] = list(messaging)
        if changes:
            body["changes"] = list(changes)
        return body


class FakeX(WebhookSender):
    """X Account Activity: `x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret, body)>`."""

    def __init__(self, url: str, consumer_secret: str, user_id: str = "2244994945", screen_name: str = "shop",
                 **kwargs: Any) -> None:
        super().__init__(url, "x-twitter-webhooks-signature", **kwargs)
        self.consumer_secret, self.user_id, self.screen_name = consumer_secret, user_id, screen_name
        self.clock = itertools.count(1_763_000_000_000, 997)

    def sign(self, body: bytes) -> str:
        return "sha256=" + base64.b64encode(hmac.new(self.consumer_secret.encode(), body, hashlib.sha256)
                                            .digest()).decode()

    @staticmethod
    def user(user_id: str, name: str, screen_name: str) -> dict[str, Any]:
        return {"id": int(user_id), "id_str": user_id, "name": name, "screen_name": screen_name,
                "protected": False, "verified": False, "followers_count": 12}

    def tweet(self, tweet_id: str, user: dict[str, Any], text: str, *, reply_to: str | None = None,
              full_text: str | None = None, media: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """A v1.1 Tweet object; with `full_text` it is truncated at 140 characters as X delivers long tweets."""
        stamp = next(self.clock)
        prefix = f"@{self.screen_name} "
        body = prefix + text
        tweet: dict[str, Any] = {
            "created_at": "Wed Nov 19 09:00:00 +0000 2025", "id": int(tweet_id), "id_str": tweet_id,
            "text": body, "display_text_range": [len(prefix), len(body)], "source": "Twitter Web App",
            "truncated": False, "in_reply_to_status_id": int(reply_to) if reply_to else None,
            "in_reply_to_status_id_str": reply_to, "in_reply_to_user_id_str": self.user_id if reply_to else None,
            "user": user, "lang": "en", "timestamp_ms": str(stamp),
            "entities": {"hashtags": [], "urls": [], "user_mentions": [
                {"screen_name": self.screen_name, "id_str": self.user_id, "indices": [0, len(prefix) - 1]}]},
        }
        if full_text is not None:
            long = prefix + full_text
            tweet |= {"text": long[:139] + "…", "truncated": True, "display_text_range": [len(prefix), 140],
                      "extended_tweet": {"full_text": long, "display_text_range": [len(prefix), len(long)],
                                         "entities": tweet["entities"]}}
        if media:  # a truncated tweet carries its media inside extended_tweet
            items = [{"id_str": f"{tweet_id}{i}", "type": kind, "media_url_https": url}
                     for i, (kind, url) in enumerate(media)]
            (tweet.get("extended_tweet") or tweet)["extended_entities"] = {"media": items}
        return tweet

    def dm(self, event_id: str, sender: str, text: str, *, recipient: str | None = None,
           media: tuple[str, str] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"text": text, "entities": {"hashtags": [], "symbols": [], "user_mentions": [],
                                                            "urls": []}}
        if media:
            data["attachment"] = {"type": "media", "media": {"type": media[0], "media_url_https": media[1]}}
        return {"type": "message_create", "id": event_id, "created_timestamp": str(next(self.clock)),
                "message_create": {"target": {"recipient_id": recipient or self.user_id}, "sender_id": sender,
                                   "source_app_id": "268278", "message_data": data}}

    def activity(self, *, tweets: Sequence[dict[str, Any]] = (), dms: Sequence[dict[str, Any]] = (),
                 users: Sequence[dict[str, Any]] = (), **other: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"for_user_id": self.user_id}
        if tweets:
            body["tweet_create_events"] = list(tweets)
        if dms:
            body["direct_message_events"] = list(dms)
            body["users"] = {u["id_str"]: {k: v for k, v in u.items() if k != "id"} | {"id": u["id_str"]}
                             for u in users}
        return body | other


def meta_stream(meta: FakeMeta, count: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """`count` customer messages across Messenger DMs, Instagram DMs, Page and Instagram comments, in
    POSTs of 1-3 entries with 1-4 events each, plus echoes and read receipts; returns the POST payloads
    and the message ids the connector should produce."""
    rng = random.Random(seed)
    payloads: list[dict[str, Any]] = []
    expected: list[str] = []
    n = 0
    while n < count:
        ig = rng.random() < 0.4
        entries = []
        for _ in range(rng.randint(1, 3)):
            messaging: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            for _ in range(rng.randint(1, 4)):
                if n >= count:
                    break
                user = str(rng.randint(10**15, 10**16))
                n += 1
                if rng.random() < 0.5:
                    mid = f"m_{seed}_{n}"
                    messaging.append(meta.dm(user, f"message {n}: where is order {rng.randint(1, 99999)}?", mid,
                                             ours=meta.ig_id if ig else None))
                    expected.append(f"{'instagram' if ig else 'messenger'}:{mid}")
                elif ig:
                    changes.append(meta.ig_comment(f"1790{seed}{n:07d}", f"comment {n}: is this in stock?", user,
                                                   f"user{n}", f"1800{n % 50}"))
                    expected.append(f"ig_comment:1790{seed}{n:07d}")
                else:
                    post = f"{meta.page_id}_{n % 50}"
                    changes.append(meta.page_comment(f"{post}_{n}", post, user, f"Customer {n}",
                                                     f"comment {n}: my refund?"))
                    expected.append(f"fb_comment:{post}_{n}")
                if rng.random() < 0.1:  # what we must not store rides along
                    messaging.append(meta.dm(user, "Thanks, we are on it", f"echo_{seed}_{n}", echo=True,
                                             ours=meta.ig_id if ig else None))
                    messaging.append(meta.read_receipt(user))
            if messaging or changes:
                entries.append(meta.entry(messaging=messaging, changes=changes, ig=ig))
        if entries:
            payloads.append(meta.instagram(*entries) if ig else meta.page(*entries))
    return payloads, expected


def x_stream(x: FakeX, count: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """`count` mentions, replies and DMs in POSTs of 1-5 events, plus our own tweets and likes."""
    rng = random.Random(seed)
    us = x.user(x.user_id, "Shop", x.screen_name)
    payloads: list[dict[str, Any]] = []
    expected: list[str] = []
    n = 0
    while n < count:
        tweets, dms, users = [], [], [us]
        for _ in range(rng.randint(1, 5)):
            if n >= count:
                break
            n += 1
            customer = x.user(str(rng.randint(10**9, 10**10)), f"Customer {n}", f"cust{n}")
            if rng.random() < 0.5:
                tweet_id = str(1_900_000_000_000_000_000 + seed * 10_000_000 + n)
                tweets.append(x.tweet(tweet_id, customer, f"tweet {n}: my parcel is late",
                                      reply_to=str(1_800_000_000_000_000_000 + n % 40) if n % 3 else None))
                expected.append(f"tweet:{tweet_id}")
            else:
                dm_id = str(1_700_000_000_000_000_000 + seed * 10_000_000 + n)
                dms.append(x.dm(dm_id, customer["id_str"], f"dm {n}: please cancel my order"))
                users.append(customer)
                expected.append(f"dm:{dm_id}")
            if rng.random() < 0.1:
                tweets.append(x.tweet(str(1_950_000_000_000_000_000 + seed * 10_000_000 + n), us, "We replied"))
        extra = {"favorite_events": [{"id": "x"}]} if rng.random() < 0.05 else {}
        payloads.append(x.activity(tweets=tweets, dms=dms, users=users, **extra))
    return payloads, expected


class FakeMastodon:
    """A Mastodon instance's `GET /api/v1/notifications` (types[], min_id, since_id, max_id, limit,
    newest first, bearer token) over real HTTP; `fail_every` answers every n-th call 503, and
    `rate_limit_next` answers the next calls 429 with Retry-After; `published` holds back the newest
    notifications until a test lets them arrive."""

    def __init__(self, token: str, port: int | None = None, fail_every: int = 0) -> None:
        self.token, self.port, self.fail_every = token, port or free_port(), fail_every
        self.notifications: list[dict[str, Any]] = []  # oldest first
        self.published: int | None = None  # how many of them exist yet (None: all)
        self.calls = 0
        self.rate_limit_next = 0
        self.ids = itertools.count(110_000_000_000_000_000, 7)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mention(self, n: int, *, visibility: str = "public", author_id: str | None = None,
                kind: str = "mention", reply_to: str | None = None) -> str:
        """Adds a notification for a post mentioning us; returns the status id."""
        status_id = str(next(self.ids))
        account = {"id": author_id or str(900_000 + n), "username": f"user{n}", "acct": f"user{n}@social.example",
                   "display_name": f"User {n}", "url": f"https://social.example/@user{n}"}
        content = (f'<p><span class="h-card"><a href="https://mastodon.example/@shop" class="u-url mention">'
                   f"@<span>shop</span></a></span> order {n} &amp; refund?</p><p>thanks</p>")
        self.notifications.append({
            "id": str(next(self.ids)), "type": kind, "created_at": "2025-11-19T09:00:00.000Z", "account": account,
            "status": {"id": status_id, "created_at": "2025-11-19T09:00:00.000Z", "in_reply_to_id": reply_to,
                       "visibility": visibility, "spoiler_text": "", "language": "en", "content": content,
                       "url": f"https://social.example/@user{n}/{status_id}", "media_attachments": [],
                       "account": account}})
        return status_id

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/v1/notifications")
        async def notifications(request: Request) -> JSONResponse:
            self.calls += 1
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"error": "The access token is invalid"}, status_code=401)
            if self.rate_limit_next:
                self.rate_limit_next -= 1
                return JSONResponse({"error": "Too many requests"}, status_code=429, headers={"Retry-After": "0.05"})
            if self.fail_every and self.calls % self.fail_every == 0:
                return JSONResponse({"error": "upstream"}, status_code=503)
            q = request.query_params
            types = q.getlist("types[]")
            key = lambda i: (len(i), i)  # noqa: E731 - ids compare as numbers
            items = [n for n in self.notifications[:self.published] if not types or n["type"] in types]
            if q.get("max_id"):
                items = [n for n in items if key(n["id"]) < key(q["max_id"])]
            if q.get("since_id"):
                items = [n for n in items if key(n["id"]) > key(q["since_id"])]
            if q.get("min_id"):
                items = [n for n in items if key(n["id"]) > key(q["min_id"])]
            limit = min(int(q.get("limit", 40)), 80)
            # with min_id the page immediately newer than it, otherwise the newest page; newest first
            page = items[:limit] if q.get("min_id") else items[-limit:]
            return JSONResponse(list(reversed(page)))

        return app

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeMastodon]:
        server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning",
                                               lifespan="off"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            await task
