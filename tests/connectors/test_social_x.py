import asyncio
import base64

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from connectors.base import HttpIntakeConfig
from connectors.http_intake import HttpIntakeConnector
from connectors.social_x import PATH, XConfig, XWebhookRoutes
from tests.connectors.conformance import restart_mid_stream
from tests.connectors.test_social_meta import CountingSink, run
from tests.fakes.social_providers import FakeX, free_port, serving, x_stream

SECRET = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"
OURS = "2244994945"


def config(**overrides) -> XConfig:
    return XConfig(enabled=True, account="x:@shop", consumer_secret=SecretStr(SECRET), user_id=OURS, **overrides)


def test_enabled_without_our_user_id_is_refused_naming_the_key():
    with pytest.raises(ValidationError, match=r"social_x\.user_id"):
        XConfig(enabled=True, consumer_secret=SecretStr(SECRET))


def test_crc_response_token_is_base64_hmac_sha256_of_the_crc_token():
    # the known HMAC-SHA256 vector (key "key", the quick brown fox), base64 of its published hex digest
    expected = "sha256=" + base64.b64encode(bytes.fromhex(
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")).decode()

    async def scenario():
        routes = XWebhookRoutes(XConfig(enabled=True, consumer_secret=SecretStr("key"), user_id=OURS))
        async with serving([routes], CountingSink()) as base, httpx.AsyncClient() as http:
            crc = await http.get(base + PATH, params={"crc_token": "The quick brown fox jumps over the lazy dog"})
            missing = await http.get(base + PATH)
            return crc, missing

    crc, missing = run(scenario)
    assert crc.status_code == 200 and crc.json() == {"response_token": expected}
    assert missing.status_code == 400


def test_unsigned_forged_or_misapplied_signatures_are_refused_and_nothing_is_stored():
    async def scenario():
        sink, routes = CountingSink(), XWebhookRoutes(config())
        async with serving([routes], sink) as base, httpx.AsyncClient() as http:
            x = FakeX(base + PATH, SECRET)
            alice = x.user("1001", "Alice", "alice")
            body = x.encode(x.activity(tweets=[x.tweet("1", alice, "help")]))
            other = x.encode(x.activity(tweets=[x.tweet("2", alice, "other")]))
            forger = FakeX(base + PATH, "not-the-consumer-secret")
            hex_digest = "sha256=" + base64.b64decode(x.sign(body)[7:]).hex()  # right HMAC, Meta's encoding
            answers = [await x.post_once(http, body, signature=None),
                       await x.post_once(http, body, signature=forger.sign(body)),
                       await x.post_once(http, body, signature=x.sign(other)),
                       await x.post_once(http, body, signature=hex_digest)]
        return sink, routes, answers

    sink, routes, answers = run(scenario)
    assert [a.status_code for a in answers] == [401] * 4
    assert sink.calls == [] and routes.metrics.rejected == 4


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not valid JSON"),
    (b'"a string"', "not a JSON object"),
    (b'{"for_user_id": "1", "tweet_create_events": {"id": 1}}', "tweet_create_events is not a list"),
    (b'{"tweet_create_events": [{"id_str": "5", "text": "hi"}]}', "tweet_create_events[0].user"),
    (b'{"direct_message_events": [{"type": "message_create", "id": "9", "message_create": {"sender_id": "3"}}]}',
     "message_data"),
    (b'{"users": [], "direct_message_events": []}', "users is not an object"),
])
def test_a_signed_but_malformed_body_is_400_with_the_reason(body, reason):
    async def scenario():
        sink = CountingSink()
        async with serving([XWebhookRoutes(config())], sink) as base, httpx.AsyncClient() as http:
            return sink, await FakeX(base + PATH, SECRET).post_once(http, body)

    sink, answer = run(scenario)
    assert answer.status_code == 400 and reason in answer.json()["detail"]
    assert sink.calls == []


def test_mentions_and_replies_are_public_dms_private_and_our_own_are_skipped():
    long_text = "my order 5521 arrived with a cracked screen and the replacement you promised last week never " \
                "shipped, I have called twice and nobody answers. Please refund me today."

    async def scenario():
        sink, routes = CountingSink(), XWebhookRoutes(config())
        async with serving([routes], sink) as base, httpx.AsyncClient() as http:
            x = FakeX(base + PATH, SECRET, user_id=OURS)
            us, alice, bob = x.user(OURS, "Shop", "shop"), x.user("1001", "Alice A", "alice"), x.user("1002", "Bob",
                                                                                                       "bobby")
            payload = x.activity(
                tweets=[x.tweet("1900000000000000001", alice, "where is my parcel?", reply_to="1800000000000000007"),
                        x.tweet("1900000000000000002", bob, "", full_text=long_text,
                                media=[("photo", "https://pbs.twimg.com/media/Fx1.jpg")]),
                        x.tweet("1900000000000000003", us, "Sorry to hear that, DM us")],
                dms=[x.dm("1700000000000000001", "1002", "order 5521, name Bob"),
                     x.dm("1700000000000000002", OURS, "Thanks Bob, refund issued", recipient="1002"),
                     x.dm("1700000000000000003", "1001", "https://t.co/abc",
                          media=("photo", "https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg"))],
                users=[us, alice, bob],
                favorite_events=[{"id": "f1"}], direct_message_indicate_typing_events=[{"sender_id": "1001"}])
            delivery = await x.deliver(http, payload)
            again = (await x.post_once(http, x.encode(payload))).json()
        return sink, routes, delivery, again

    sink, routes, delivery, again = run(scenario)
    assert delivery.statuses == [200] and len(sink.calls) == 1
    by_id = {e.message_id: e for e in sink.envelopes}
    assert set(by_id) == {"tweet:1900000000000000001", "tweet:1900000000000000002", "dm:1700000000000000001",
                          "dm:1700000000000000003"}
    reply, long_tweet = by_id["tweet:1900000000000000001"], by_id["tweet:1900000000000000002"]
    assert reply.public and reply.in_reply_to == "tweet:1800000000000000007"
    assert reply.conversation_id == "tweet:1800000000000000007"
    assert reply.sender.handle == "alice" and reply.sender.name == "Alice A" and reply.sender.kind == "twitter_user"
    assert reply.text == "@shop where is my parcel?" and reply.customer_text == "where is my parcel?"
    assert long_tweet.text.endswith("Please refund me today.") and long_tweet.customer_text == long_text
    assert long_tweet.attachments[0].filename == "Fx1.jpg" and long_tweet.language_hint == "en"
    dm = by_id["dm:1700000000000000001"]
    assert not dm.public and dm.text == "order 5521, name Bob" and dm.sender.handle == "bobby"
    assert dm.conversation_id == f"dm:1002-{OURS}" and dm.sender.name == "Bob"
    assert by_id["dm:1700000000000000003"].attachments[0].filename == "a.jpg"
    assert routes.skipped["tweet:own"] == 2 and routes.skipped["dm:own"] == 2  # the POST came twice
    assert routes.skipped["favorite_events"] == 2 and routes.skipped["direct_message_indicate_typing_events"] == 2
    assert again == {"accepted": 0, "already_accepted": 4, "skipped": again["skipped"]}


def test_a_sink_failure_answers_503_and_xs_retry_is_accepted():
    async def scenario():
        sink = CountingSink(failures=1)
        async with serving([XWebhookRoutes(config())], sink) as base, httpx.AsyncClient() as http:
            x = FakeX(base + PATH, SECRET, user_id=OURS)
            payload = x.activity(dms=[x.dm("77", "1001", "refund?")], users=[x.user("1001", "A", "a")])
            return sink, await x.deliver(http, payload)

    sink, delivery = run(scenario)
    assert delivery.statuses == [503, 200] and [e.message_id for e in sink.envelopes] == ["dm:77"]


@pytest.mark.parametrize("remember_keys", [100_000, 0], ids=["with-memory", "without-memory"])
def test_conformance_5000_events_while_the_server_restarts(remember_keys):
    port = free_port()
    x = FakeX(f"http://127.0.0.1:{port}{PATH}", SECRET, user_id=OURS)
    payloads, message_ids = x_stream(x, 5000, seed=3)
    expected = {f"social:x:@shop:{m}" for m in message_ids}
    cfg = config(remember_keys=remember_keys)
    statuses = []

    async def feed():
        deliveries = await x.deliver_all(payloads, concurrency=4)
        assert all(d.final == 200 for d in deliveries)
        statuses.extend(s for d in deliveries for s in d.statuses)

    def make_connector():
        return HttpIntakeConnector(HttpIntakeConfig(port=port), routes=[XWebhookRoutes(cfg)])

    report = asyncio.run(restart_mid_stream(make_connector, expected, feed=feed, restarts=3, seed=5))
    report.assert_exactly_once()
    assert len(expected) == 5000 and report.delivered == 5000 and report.sink_failures > 0
    assert statuses.count(503) == report.sink_failures and statuses.count(None) > 0
    print(f"x conformance ({remember_keys=}): {len(payloads)} POSTs, {len(statuses)} attempts, "
          f"{statuses.count(None)} refused while restarting, {statuses.count(503)} answered 503, "
          f"stops at {report.stops}")
