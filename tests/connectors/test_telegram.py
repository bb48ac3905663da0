"""Telegram connector against a local server speaking the Bot API over HTTP on 127.0.0.1."""

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from connectors.base import HttpIntakeConfig
from connectors.cursors import MemoryCursorStore
from connectors.http_intake import HttpIntakeConnector
from connectors.telegram import (
    WEBHOOK_PATH,
    TelegramConfig,
    TelegramConnector,
    TelegramWebhookRoutes,
    make_bot,
    register_webhook,
)
from tests.connectors.conformance import FlakySink, restart_mid_stream
from tests.connectors.test_dropfolder import RecordingSink
from tests.fakes import telegram_updates as tg
from tests.fakes.telegram_api import TOKEN, FakeTelegram

ACCOUNT = "telegram:@shop_support_bot"
SECRET = "s3cret-token_from-setWebhook"


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server


def config(fake: FakeTelegram, **overrides) -> TelegramConfig:
    values = {"enabled": True, "token": SecretStr(TOKEN), "base_url": fake.base_url, "account": ACCOUNT,
              "poll_timeout_s": 2, "retry_initial_s": 0.05, "retry_max_s": 0.5} | overrides
    return TelegramConfig(**values)


async def run_until(connector: TelegramConnector, sink, done: Callable[[], bool], timeout_s: float = 10) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(sink, stop))
    deadline = time.monotonic() + timeout_s
    try:
        while not done():
            if task.done():
                task.result()
                raise AssertionError("connector returned early")
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await connector.close()


def collect(fake: FakeTelegram, updates: list[dict], expected: int, **overrides) -> dict:
    """Enqueue the updates, poll until `expected` envelopes arrived; envelopes by message_id."""
    fake.enqueue(*updates)
    sink = RecordingSink()
    connector = TelegramConnector(config(fake, **overrides), MemoryCursorStore())
    asyncio.run(run_until(connector, sink, lambda: len(sink.envelopes) >= expected))
    return {e.message_id: e for e in sink.envelopes}


# -- mapping ---------------------------------------------------------------------------------------


def test_a_private_message_becomes_a_chat_envelope(fake):
    alice = tg.user(4401, "Alice", "Moreau", "alice_m", "fr")
    got = collect(fake, [{"message": tg.message(430, alice, text="Mon colis n'est pas arrivé", date=tg.T0 + 26)}],
                  1)
    env = got["tg-4401-430"]
    assert (env.channel, env.account, env.conversation_id) == ("chat", ACCOUNT, "4401")
    assert env.sender.model_dump() == {"kind": "telegram_user", "id": "4401", "name": "Alice Moreau",
                                       "handle": "@alice_m"}
    assert env.text == "Mon colis n'est pas arrivé"
    assert env.received_at.timestamp() == tg.T0 + 26 and env.received_at.utcoffset().total_seconds() == 0
    assert env.public is False and env.in_reply_to is None and env.language_hint is None
    assert env.metadata["user_language"] == "fr" and env.delivery_key == f"chat:{ACCOUNT}:tg-4401-430"


def test_group_replies_and_captions(fake):
    group = tg.group_chat(-1009876543210, "Shop customers")
    bob = tg.user(7702, "Bob", None, None, "en")
    question = tg.message(51, tg.user(), group, text="Is the store open on Sunday?")
    reply = tg.message(52, bob, group, date=tg.T0 + 60, reply_to_message=question,
                       photo=tg.photo(1280, 960, 183_412), caption="Same question, and my parcel arrived like this")
    got = collect(fake, [{"message": question}, {"message": reply}], 2)
    env = got["tg--1009876543210-52"]
    assert env.conversation_id == "-1009876543210" and env.public is True
    assert env.in_reply_to == "tg--1009876543210-51"
    assert env.text == "Same question, and my parcel arrived like this"
    assert env.sender.handle is None and env.sender.name == "Bob"
    assert env.metadata["chat_type"] == "supergroup" and env.metadata["chat_title"] == "Shop customers"
    assert [(a.content_type, a.size) for a in env.attachments] == [("image/jpeg", 183_412)]  # the largest size
    assert env.metadata["file.0.width"] == "1280"


def test_channel_posts_when_asked_for_and_bots_never(fake):
    channel = {"id": -1001112223334, "title": "Shop news", "username": "shop_news", "type": "channel"}
    post = {"message_id": 12, "sender_chat": channel, "chat": channel, "date": tg.T0, "text": "Sale ends today"}
    from_bot = tg.message(13, tg.user(99, "Other bot", None, "other_bot", None, is_bot=True), tg.group_chat(),
                          text="I am a bot")
    got = collect(fake, [{"message": from_bot}, {"channel_post": post}], 1,
                  allowed_updates=("message", "channel_post"))
    assert list(got) == ["tg--1001112223334-12"]
    env = got["tg--1001112223334-12"]
    assert env.sender.model_dump() == {"kind": "telegram_chat", "id": "-1001112223334", "name": "Shop news",
                                       "handle": "@shop_news"}
    assert env.public is True and env.metadata["chat_type"] == "channel"


def test_files_are_described_not_downloaded(fake):
    voice, video, doc, sticker = tg.voice(7, 24_576), tg.video(12, 2_482_112), tg.document(), tg.sticker("😡")
    got = collect(fake, [{"message": tg.message(1, voice=voice)}, {"message": tg.message(2, video=video)},
                         {"message": tg.message(3, document=doc, caption="invoice attached")},
                         {"message": tg.message(4, sticker=sticker)}], 4)
    by_id = {k.rsplit("-", 1)[1]: v for k, v in got.items()}
    assert by_id["1"].text == "" and by_id["1"].attachments[0].model_dump() == {
        "filename": None, "content_type": "audio/ogg", "size": 24_576, "sha256": None}
    assert by_id["1"].metadata["file.0.type"] == "voice" and by_id["1"].metadata["file.0.duration"] == "7"
    assert by_id["1"].metadata["file.0.file_id"] == voice["file_id"]
    assert (by_id["2"].attachments[0].filename, by_id["2"].attachments[0].content_type) == ("IMG_4411.MP4",
                                                                                            "video/mp4")
    assert by_id["2"].metadata["file.0.duration"] == "12"
    assert by_id["3"].text == "invoice attached"
    assert by_id["3"].attachments[0].model_dump()["filename"] == "invoice-2026-118.pdf"
    assert by_id["3"].attachments[0].content_type == "application/pdf"
    assert by_id["4"].attachments[0].content_type == "image/webp" and by_id["4"].metadata["file.0.emoji"] == "😡"
    assert {c.method for c in fake.calls} == {"getMe", "getUpdates"}  # no getFile: nothing downloaded


def test_a_shared_contact_gives_the_phone_as_an_identity_hint(fake):
    me = tg.user(5544120987)
    own = tg.message(10, me, contact=tg.contact("79001234567", user_id=5544120987))
    other = tg.message(11, me, contact=tg.contact("+44 20 7946 0000", "Olga", None, user_id=None))
    got = collect(fake, [{"message": own}, {"message": other}], 2)
    mine, theirs = got["tg-5544120987-10"].metadata, got["tg-5544120987-11"].metadata
    assert (mine["phone"], mine["phone_owner"], mine["contact_name"]) == ("+79001234567", "sender", "Игорь Волков")
    assert theirs["phone"] == "+442079460000" and "phone_owner" not in theirs


def test_edits_are_new_revisions_each_once(fake):
    original = tg.message(77, text="My order 1182 is late", date=tg.T0)
    first = tg.edited(original, "My order 1183 is late", tg.T0 + 40)
    second = tg.edited(original, "My order 1183 is late, since Monday", tg.T0 + 40)  # same second
    got = collect(fake, [{"message": original}, {"edited_message": first}, {"edited_message": second}], 3)
    edits = sorted((e for e in got.values() if "edit_of" in e.metadata), key=lambda e: e.text)
    assert [e.text for e in edits] == ["My order 1183 is late", "My order 1183 is late, since Monday"]
    assert len({e.delivery_key for e in got.values()}) == 3
    for edit in edits:
        assert edit.metadata["edit_of"] == "tg-5544120987-77" and edit.references == ("tg-5544120987-77",)
        assert edit.received_at.timestamp() == tg.T0 + 40 and edit.conversation_id == "5544120987"


def test_updates_without_a_message_advance_the_cursor_with_a_reason(fake, caplog):
    chat = tg.private_chat(tg.user())
    joined = tg.message(5, chat=tg.group_chat(), new_chat_members=[tg.user(9)], new_chat_member=tg.user(9),
                        new_chat_participant=tg.user(9))
    dice = tg.message(6, dice={"emoji": "🎲", "value": 4})
    ids = fake.enqueue({"my_chat_member": tg.bot_kicked(chat, tg.user())}, {"message": joined}, {"message": dice},
                       {"message": tg.message(7, text="still there?")})
    cursors = MemoryCursorStore()
    sink = RecordingSink()
    connector = TelegramConnector(config(fake, allowed_updates=("message", "my_chat_member")), cursors)
    with caplog.at_level(logging.INFO, logger="connectors.telegram"):
        asyncio.run(run_until(connector, sink, lambda: fake.confirmed_below > ids[-1]))
    assert [e.message_id for e in sink.envelopes] == ["tg-5544120987-7"]
    assert cursors.load("telegram", "offset:123456") == str(ids[-1] + 1)
    assert "my_chat_member update carries no message" in caplog.text
    assert "service message (new_chat_members)" in caplog.text and "(dice)" in caplog.text
    assert connector.metrics.received == 1 and connector.metrics.published == 1


def test_an_update_ptb_cannot_parse_is_skipped_not_a_block(fake, caplog):
    """Bot API and ptb versions drift (ptb 22.8 demands poll fields older servers never sent); one
    update it refuses must not stop the stream."""
    broken = tg.message(2, poll={"id": "1", "question": "Which colour?", "options": [], "total_voter_count": 0,
                                 "is_closed": False, "is_anonymous": True, "type": "regular",
                                 "allows_multiple_answers": False})
    ids = fake.enqueue({"message": tg.message(1, text="before")}, {"message": broken},
                       {"message": tg.message(3, text="after")})
    sink = RecordingSink()
    cursors = MemoryCursorStore()
    connector = TelegramConnector(config(fake), cursors)
    with caplog.at_level(logging.ERROR, logger="connectors.telegram"):
        asyncio.run(run_until(connector, sink, lambda: fake.confirmed_below > ids[-1]))
    assert [e.message_id for e in sink.envelopes] == ["tg-5544120987-1", "tg-5544120987-3"]
    assert connector.metrics.rejected == 1 and f"update {ids[1]} is skipped, ptb cannot parse it" in caplog.text
    assert cursors.load("telegram", "offset:123456") == str(ids[-1] + 1)


# -- delivery guarantees ---------------------------------------------------------------------------


def test_updates_are_confirmed_only_after_the_sink_accepted(fake):
    ids = fake.enqueue({"message": tg.message(1, text="one")}, {"edited_message": tg.edited(
        tg.message(1, text="one"), "one, edited", tg.T0 + 5)}, {"message": tg.message(2, text="two")})
    cursors = MemoryCursorStore()
    down = RecordingSink(fail=True)
    failing = TelegramConnector(config(fake), cursors)

    async def refused_for_a_while():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.6, stop.set)
        await failing.run(down, stop)
        await failing.close()

    asyncio.run(refused_for_a_while())
    assert failing.metrics.errors >= 2 and failing.metrics.published == 0
    assert [u["update_id"] for u in fake.pending] == ids  # Telegram still holds every update
    assert cursors.values == {} and all("offset" not in c.params for c in fake.calls_of("getUpdates"))

    up = RecordingSink()
    asyncio.run(run_until(TelegramConnector(config(fake), cursors), up, lambda: fake.confirmed_below > ids[-1]))
    assert [e.message_id for e in up.envelopes] == ["tg-5544120987-1", f"tg-5544120987-1-edit{ids[1]}",
                                                    "tg-5544120987-2"]
    assert fake.pending == [] and cursors.load("telegram", "offset:123456") == str(ids[-1] + 1)
    assert fake.calls_of("getUpdates")[-1].params["offset"] == ids[-1] + 1


def test_telegram_flood_control_is_waited_out(fake):
    fake.fail_next(429, retry_after=1)
    fake.enqueue({"message": tg.message(1, text="hello")})
    sink = RecordingSink()
    connector = TelegramConnector(config(fake, retry_initial_s=0.01), MemoryCursorStore())
    asyncio.run(run_until(connector, sink, lambda: len(sink.envelopes) == 1))
    polls = fake.calls_of("getUpdates")
    assert polls[0].status == 429 and polls[1].status == 200
    waited = polls[1].at - polls[0].at
    assert 1.0 <= waited < 1.5, waited
    assert connector.metrics.errors == 1 and "Flood control" in connector.metrics.last_error


def test_server_errors_are_retried_with_growing_backoff(fake):
    fake.fail_next(502, times=2)
    fake.fail_next(500)
    fake.enqueue({"message": tg.message(1, text="hello")})
    sink = RecordingSink()
    connector = TelegramConnector(config(fake, retry_initial_s=0.1, retry_max_s=1), MemoryCursorStore())
    asyncio.run(run_until(connector, sink, lambda: len(sink.envelopes) == 1))
    polls = fake.calls_of("getUpdates")
    assert [p.status for p in polls[:4]] == [502, 502, 500, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(polls[:4])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4 and gaps[2] < 0.8, gaps
    assert connector.metrics.errors == 3


def test_an_idle_long_poll_outlasts_the_request_timeout(fake):
    """ptb adds the poll's wait to the read timeout: a 1.5 s poll with a 0.3 s read timeout is no error."""
    sink = RecordingSink()
    connector = TelegramConnector(config(fake, poll_timeout_s=1, request_timeout_s=0.3), MemoryCursorStore())
    asyncio.run(run_until(connector, sink, lambda: len(fake.calls_of("getUpdates")) >= 2, timeout_s=5))
    first = fake.calls_of("getUpdates")[0]
    assert first.status == 200 and first.params["timeout"] == 1 and connector.metrics.errors == 0


def test_a_webhook_conflict_is_reported_and_polling_resumes_once_deleted(fake, caplog):
    cfg = config(fake, webhook_url="https://intake.example.com/webhooks/telegram", webhook_secret=SecretStr(SECRET))

    async def register_then_delete():
        bot = make_bot(cfg)
        async with bot:
            assert await register_webhook(bot, cfg)
            assert fake.webhook == {"url": cfg.webhook_url, "secret_token": SECRET,
                                    "allowed_updates": ["message", "edited_message"]}
            fake.enqueue({"message": tg.message(1, text="hello")})
            sink = RecordingSink()
            connector = TelegramConnector(config(fake), MemoryCursorStore())
            stop = asyncio.Event()
            task = asyncio.create_task(connector.run(sink, stop))
            await asyncio.sleep(0.3)
            assert sink.envelopes == [] and connector.metrics.errors >= 2
            await bot.delete_webhook()
            while not sink.envelopes:
                await asyncio.sleep(0.01)
            stop.set()
            await task
            await connector.close()

    with caplog.at_level(logging.ERROR, logger="connectors.telegram"):
        asyncio.run(register_then_delete())
    assert "can't use getUpdates method while webhook is active" in caplog.text


def test_webhook_mode_registers_the_webhook_and_polls_nothing(fake):
    cfg = config(fake, mode="webhook", webhook_url="https://intake.example.com/webhooks/telegram",
                 webhook_secret=SecretStr(SECRET))
    fake.fail_next(502, method="setWebhook")  # registration is retried like any call
    connector = TelegramConnector(cfg, MemoryCursorStore())
    asyncio.run(run_until(connector, RecordingSink(), lambda: fake.webhook is not None))
    assert fake.webhook["secret_token"] == SECRET and fake.calls_of("getUpdates") == []
    assert [c.status for c in fake.calls_of("setWebhook")] == [502, 200]


def test_a_refused_token_stops_the_connector(fake):
    connector = TelegramConnector(config(fake, token=SecretStr("999:wrong")), MemoryCursorStore())

    async def run():
        try:
            await connector.run(RecordingSink(), asyncio.Event())
        finally:
            await connector.close()

    with pytest.raises(Exception, match=r"Unauthorized|token"):
        asyncio.run(asyncio.wait_for(run(), 5))


def test_config_names_the_bad_key():
    with pytest.raises(ValidationError, match="token"):
        TelegramConfig(enabled=True)
    with pytest.raises(ValidationError, match="webhook_secret"):
        TelegramConfig(enabled=True, token=SecretStr(TOKEN), mode="webhook")
    with pytest.raises(ValidationError, match="webhook_secret"):
        TelegramConfig(token=SecretStr(TOKEN), webhook_secret=SecretStr("no spaces allowed"))
    assert TelegramConfig().enabled is False  # the default section needs no token


# -- conformance: 5,000 updates, restarts at random points -----------------------------------------


def _stream(fake: FakeTelegram, total: int = 5000):
    """A feed that keeps enqueueing while the connector runs, and the delivery keys it must produce."""
    customers = [tg.user(1000 + n, f"Customer {n}", None, f"c{n}") for n in range(50)]
    items = []
    for n in range(total):
        who = customers[n % len(customers)]
        items.append({"message": tg.message(n + 1, who, text=f"order {n} is late", date=tg.T0 + n)})
    expected = {f"chat:{ACCOUNT}:tg-{1000 + n % 50}-{n + 1}" for n in range(total)}

    async def feed():
        for start in range(0, total, 50):
            await asyncio.to_thread(fake.enqueue, *items[start:start + 50])
            await asyncio.sleep(0.005)

    return feed, expected


@pytest.mark.parametrize("crash", [False, True], ids=["graceful", "crash"])
def test_conformance_5000_updates_across_restarts(fake, crash):
    feed, expected = _stream(fake)
    cursors = MemoryCursorStore()
    report = asyncio.run(restart_mid_stream(lambda: TelegramConnector(config(fake), cursors), expected, feed=feed,
                                            sink=FlakySink(seed=7), restarts=3, crash=crash, seed=11, timeout_s=60))
    if crash:
        report.assert_none_lost()
    else:
        report.assert_exactly_once()
    assert report.sink_failures > 0 and len(report.stops) == 4
    last = fake.enqueued_at and max(fake.enqueued_at)
    assert cursors.load("telegram", "offset:123456") == str(last + 1)  # Telegram forgets them on the next poll


# -- webhook ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _webhook(fake: FakeTelegram, sink, exchange: Callable) -> TelegramWebhookRoutes:
    """The intake server with the Telegram routes, over real HTTP; `exchange(client)` talks to it."""
    port = _free_port()
    cfg = config(fake, mode="webhook", webhook_secret=SecretStr(SECRET))
    routes = TelegramWebhookRoutes(cfg)
    stop = asyncio.Event()
    server = asyncio.create_task(HttpIntakeConnector(HttpIntakeConfig(port=port), [routes]).run(sink, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
            await exchange(client)
    finally:
        stop.set()
        await server
    return routes


def _update(update_id: int, **update) -> dict:
    return {"update_id": update_id, **update}


def test_webhook_accepts_updates_with_the_right_secret(fake):
    sink = RecordingSink()
    edit = tg.edited(tg.message(3, text="refund?"), "refund please", tg.T0 + 9)
    answers = []

    async def exchange(client):
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        for body in (_update(9001, message=tg.message(3, text="refund?")), _update(9002, edited_message=edit),
                     _update(9002, edited_message=edit),  # Telegram sends it again: same delivery key
                     _update(9003, my_chat_member=tg.bot_kicked(tg.private_chat(tg.user()), tg.user()))):
            answers.append(await client.post(WEBHOOK_PATH, json=body, headers=headers))

    routes = asyncio.run(_webhook(fake, sink, exchange))
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert answers[3].json()["accepted"] == 0
    keys = [e.delivery_key for e in sink.envelopes]
    assert keys == [f"chat:{ACCOUNT}:tg-5544120987-3", f"chat:{ACCOUNT}:tg-5544120987-3-edit9002",
                    f"chat:{ACCOUNT}:tg-5544120987-3-edit9002"]
    assert sink.envelopes[1].text == "refund please"
    assert routes.metrics.published == 3


def test_webhook_refuses_a_missing_or_wrong_secret(fake):
    sink = RecordingSink()
    answers = []

    async def exchange(client):
        body = _update(1, message=tg.message(1, text="hi"))
        answers.append(await client.post(WEBHOOK_PATH, json=body))
        for secret in ("wrong", SECRET[:-1], SECRET + "x", "ключ"):
            answers.append(await client.post(WEBHOOK_PATH, json=body,
                                             headers={"X-Telegram-Bot-Api-Secret-Token": secret.encode()}))

    asyncio.run(_webhook(fake, sink, exchange))
    assert [a.status_code for a in answers] == [401] * 5
    assert sink.envelopes == []


def test_webhook_answers_400_to_malformed_bodies(fake):
    sink = RecordingSink()
    answers = []

    async def exchange(client):
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
        for body in (b"{not json", b"[1, 2]", b'{"message": {"text": "no update_id"}}',
                     b'{"update_id": 5, "message": {"message_id": "x"}}'):
            answers.append(await client.post(WEBHOOK_PATH, content=body, headers=headers))

    routes = asyncio.run(_webhook(fake, sink, exchange))
    assert [a.status_code for a in answers] == [400] * 4
    assert sink.envelopes == [] and routes.metrics.rejected == 4


def test_webhook_answers_503_while_the_sink_fails_so_telegram_retries(fake):
    sink = RecordingSink(fail=True)
    answers = []

    async def exchange(client):
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        body = _update(77, message=tg.message(8, text="is anyone there?"))
        answers.append(await client.post(WEBHOOK_PATH, json=body, headers=headers))
        sink.fail = False
        answers.append(await client.post(WEBHOOK_PATH, json=body, headers=headers))

    routes = asyncio.run(_webhook(fake, sink, exchange))
    assert [a.status_code for a in answers] == [503, 200]
    assert answers[0].headers["retry-after"] == "5"
    assert [e.message_id for e in sink.envelopes] == ["tg-5544120987-8"]
    assert routes.metrics.errors == 1
