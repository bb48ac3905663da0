import asyncio
import json

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from connectors.base import HttpIntakeConfig
from connectors.http_intake import HttpIntakeConnector
from connectors.social_meta import PATH, MetaConfig, MetaWebhookRoutes, sign
from tests.connectors.conformance import restart_mid_stream
from tests.fakes.social_providers import FakeMeta, free_port, meta_stream, serving

SECRET = "4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99"
TOKEN = "meatyhamhock"


class CountingSink:
    """Records every accept call; fails the first `failures` calls like a broker outage."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[list] = []
        self.failures = failures

    async def accept(self, envelopes):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker down")
        self.calls.append(list(envelopes))

    @property
    def envelopes(self):
        return [e for call in self.calls for e in call]


def config(**overrides) -> MetaConfig:
    return MetaConfig(enabled=True, account="meta:shop", app_secret=SecretStr(SECRET),
                      verify_token=SecretStr(TOKEN), **overrides)


def run(scenario):
    return asyncio.run(scenario())


def test_signature_is_hex_hmac_sha256_of_the_body():
    # RFC 4231-style known vector (key "key", the quick brown fox), computed independently of our code
    assert sign("key", b"The quick brown fox jumps over the lazy dog") == \
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"


def test_enabled_without_secrets_is_refused_naming_the_key():
    with pytest.raises(ValidationError, match=r"social_meta\.app_secret"):
        MetaConfig(enabled=True, verify_token=SecretStr(TOKEN))


def test_handshake_echoes_the_challenge_only_for_our_token():
    async def scenario():
        async with serving([MetaWebhookRoutes(config())], CountingSink()) as base, httpx.AsyncClient() as http:
            ok = await http.get(base + PATH, params={"hub.mode": "subscribe", "hub.verify_token": TOKEN,
                                                    "hub.challenge": "1158201444"})
            wrong = await http.get(base + PATH, params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                                       "hub.challenge": "1158201444"})
            mode = await http.get(base + PATH, params={"hub.mode": "unsubscribe", "hub.verify_token": TOKEN,
                                                      "hub.challenge": "1"})
            return ok, wrong, mode

    ok, wrong, mode = run(scenario)
    assert ok.status_code == 200 and ok.text == "1158201444" and ok.headers["content-type"].startswith("text/plain")
    assert wrong.status_code == 403 and mode.status_code == 403


def test_unsigned_forged_or_misapplied_signatures_are_refused_and_nothing_is_stored():
    async def scenario():
        sink, routes = CountingSink(), MetaWebhookRoutes(config())
        async with serving([routes], sink) as base, httpx.AsyncClient() as http:
            meta = FakeMeta(base + PATH, SECRET)
            body = meta.encode(meta.page(meta.entry(messaging=[meta.dm("2900001", "hello", "m_1")])))
            other = meta.encode(meta.page(meta.entry(messaging=[meta.dm("2900001", "other", "m_2")])))
            forger = FakeMeta(base + PATH, "not-the-app-secret")
            answers = [
                await meta.post_once(http, body, signature=None),
                await meta.post_once(http, body, signature=forger.sign(body)),
                await meta.post_once(http, body, signature=meta.sign(other)),
                await meta.post_once(http, body, signature="sha1=" + meta.sign(body)[7:]),
                await meta.post_once(http, body, signature=meta.sign(body).upper()),
            ]
        return sink, routes, answers

    sink, routes, answers = run(scenario)
    assert [a.status_code for a in answers] == [401] * 5
    assert sink.calls == [] and routes.metrics.rejected == 5 and routes.metrics.received == 0


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not valid JSON"),
    (b"[]", "not a JSON object"),
    (b'{"object": "page"}', "entry"),
    (b'{"object": "page", "entry": "x"}', "entry is not a list"),
    (b'{"object": "page", "entry": [{"id": "1", "messaging": [{"recipient": {"id": "1"}, "message": {}}]}]}',
     "entry[0].messaging[0].sender"),
    (b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"}, "recipient": {"id": "1"},'
     b' "message": {"text": "no mid"}}]}]}', "message.mid"),
    (b'{"object": "instagram", "entry": [{"id": "1", "changes": [{"field": "comments", "value": 7}]}]}',
     "changes[0].value"),
])
def test_a_signed_but_malformed_body_is_400_with_the_reason(body, reason):
    async def scenario():
        sink = CountingSink()
        async with serving([MetaWebhookRoutes(config())], sink) as base, httpx.AsyncClient() as http:
            meta = FakeMeta(base + PATH, SECRET)
            return sink, await meta.post_once(http, body)

    sink, answer = run(scenario)
    assert answer.status_code == 400 and reason in answer.json()["detail"]
    assert sink.calls == []


def test_one_post_with_every_kind_becomes_one_hand_over_with_the_right_public_flags():
    async def scenario():
        sink, routes = CountingSink(), MetaWebhookRoutes(config(page_ids=("104512345678901",)))
        async with serving([routes], sink) as base, httpx.AsyncClient() as http:
            meta = FakeMeta(base + PATH, SECRET)
            page = meta.page(
                meta.entry(messaging=[
                    meta.dm("2900001", "My parcel never came", "m_dm1", reply_to="m_prev",
                            quick_reply="ORDER_STATUS"),
                    meta.dm("2900001", "We are checking", "m_echo", echo=True),
                    meta.read_receipt("2900001"),
                    meta.dm("2900002", None, "m_photo", attachments=[("image", "https://cdn.fb/x/abc.jpg")]),
                    meta.postback("2900003", "Talk to an agent", "AGENT", "m_pb"),
                ]),
                meta.entry(changes=[
                    meta.page_comment("P_9_c1", "P_9", "3100001", "Ann Lee", "Refund please!"),
                    meta.page_comment("P_9_c2", "P_9", meta.page_id, "Shop", "Sent you a DM"),
                    meta.page_comment("P_9_c3", "P_9", "3100002", "Bo", "reply", parent_id="P_9_c1"),
                    meta.page_comment("P_9_c1", "P_9", "3100001", "Ann Lee", "gone", verb="remove"),
                    meta.page_comment("P_9_c1", "P_9", "3100001", "Ann Lee", "Refund please!! now", verb="edited"),
                ]))
            ig = meta.instagram(meta.entry(ig=True, messaging=[
                meta.dm("5500001", "Hi from IG", "ig_m1", ours=meta.ig_id),
                meta.dm("5500001", "our answer", "ig_echo", ours=meta.ig_id, echo=True),
            ], changes=[
                meta.ig_comment("17900001", "Is this vegan?", "5500002", "vegan_vic", "18000001"),
                meta.ig_comment("17900002", "Yes it is", meta.ig_id, "shop", "18000001", parent_id="17900001"),
                meta.ig_mention("17900003", "18000009"),
                {"field": "story_insights", "value": {"media_id": "1", "impressions": 4}},
            ]))
            first = await meta.deliver(http, page)
            second = await meta.deliver(http, ig)
            answer = (await meta.post_once(http, meta.encode(page))).json()  # Meta redelivers the first POST
            unknown = await meta.deliver(http, {"object": "whatsapp_business_account", "entry": []})
        return sink, routes, first, second, answer, unknown

    sink, routes, first, second, redelivered, unknown = run(scenario)
    assert first.statuses == second.statuses == unknown.statuses == [200]
    assert len(sink.calls) == 2, "each POST is one hand-over; the redelivery and the unknown object are none"
    by_id = {e.message_id: e for e in sink.envelopes}
    assert set(by_id) == {"messenger:m_dm1", "messenger:m_photo", "messenger:postback:m_pb", "fb_comment:P_9_c1",
                          "fb_comment:P_9_c3", next(k for k in by_id if k.startswith("fb_comment:P_9_c1#edit-")),
                          "instagram:ig_m1", "ig_comment:17900001", "ig_comment:17900003"}
    dm, comment, reply = by_id["messenger:m_dm1"], by_id["fb_comment:P_9_c1"], by_id["fb_comment:P_9_c3"]
    assert not dm.public and dm.in_reply_to == "messenger:m_prev" and dm.metadata["quick_reply"] == "ORDER_STATUS"
    assert dm.sender.kind == "facebook_user" and dm.sender.id == "2900001" and dm.channel == "social"
    assert comment.public and comment.sender.name == "Ann Lee" and comment.in_reply_to == "fb_post:P_9"
    assert reply.in_reply_to == "fb_comment:P_9_c1" and reply.conversation_id == "fb_post:P_9"
    photo = by_id["messenger:m_photo"]
    assert photo.attachments[0].filename == "abc.jpg" and "https://cdn.fb/x/abc.jpg" in photo.text
    ig_comment, mention = by_id["ig_comment:17900001"], by_id["ig_comment:17900003"]
    assert ig_comment.public and ig_comment.sender.handle == "vegan_vic" and ig_comment.text == "Is this vegan?"
    assert mention.public and mention.metadata["needs_fetch"] == "mentioned_comment"
    assert not by_id["instagram:ig_m1"].public and by_id["messenger:postback:m_pb"].text == "Talk to an agent"
    assert redelivered["accepted"] == 0 and redelivered["already_accepted"] == 6
    # the page POST came twice, so its skips are counted twice
    assert routes.skipped["messenger:echo"] == 2 and routes.skipped["instagram:echo"] == 1
    assert routes.skipped["feed:own"] == 2 and routes.skipped["instagram:comments:own"] == 1
    assert routes.skipped["messenger:read"] == 2 and routes.skipped["feed:comment:remove"] == 2
    assert routes.skipped["instagram:story_insights"] == 1
    assert routes.skipped["object:whatsapp_business_account"] == 1
    assert routes.metrics.published == 9


def test_a_sink_failure_answers_503_and_metas_retry_is_accepted():
    async def scenario():
        sink = CountingSink(failures=2)
        async with serving([MetaWebhookRoutes(config())], sink) as base, httpx.AsyncClient() as http:
            meta = FakeMeta(base + PATH, SECRET)
            payload = meta.page(meta.entry(messaging=[meta.dm("2900001", "hello", "m_1"),
                                                      meta.dm("2900002", "hi", "m_2")]))
            return sink, await meta.deliver(http, payload)

    sink, delivery = run(scenario)
    assert delivery.statuses == [503, 503, 200]
    assert sorted(e.message_id for e in sink.envelopes) == ["messenger:m_1", "messenger:m_2"]


@pytest.mark.parametrize("remember_keys", [100_000, 0], ids=["with-memory", "without-memory"])
def test_conformance_5000_events_while_the_server_restarts(remember_keys):
    port = free_port()
    meta = FakeMeta(f"http://127.0.0.1:{port}{PATH}", SECRET)
    payloads, message_ids = meta_stream(meta, 5000, seed=7)
    expected = {f"social:meta:shop:{m}" for m in message_ids}
    cfg = config(remember_keys=remember_keys)

    statuses = []

    async def feed():
        deliveries = await meta.deliver_all(payloads, concurrency=4)
        assert all(d.final == 200 for d in deliveries)
        statuses.extend(s for d in deliveries for s in d.statuses)

    def make_connector():  # a restarted process: new server, new routes, same port
        return HttpIntakeConnector(HttpIntakeConfig(port=port), routes=[MetaWebhookRoutes(cfg)])

    report = asyncio.run(restart_mid_stream(make_connector, expected, feed=feed, restarts=3, seed=11))
    report.assert_exactly_once()
    assert len(expected) == 5000 and report.delivered == 5000 and report.sink_failures > 0
    assert len(report.stops) == 4 and report.stops[0] < 5000
    assert statuses.count(503) == report.sink_failures, "every sink failure was answered 503 and retried"
    assert statuses.count(None) > 0, "the provider really found the server down and redelivered"
    print(f"meta conformance ({remember_keys=}): {len(payloads)} POSTs, {len(statuses)} attempts, "
          f"{statuses.count(None)} refused while restarting, {statuses.count(503)} answered 503, "
          f"stops at {report.stops}")


def test_the_edit_of_a_comment_keeps_its_key_when_redelivered():
    async def scenario():
        sink = CountingSink()
        async with serving([MetaWebhookRoutes(config(remember_keys=0))], sink) as base, httpx.AsyncClient() as http:
            meta = FakeMeta(base + PATH, SECRET)
            edit = meta.page(meta.entry(changes=[meta.page_comment("P_1_c", "P_1", "31", "A", "v2", verb="edited")]))
            await meta.deliver(http, edit)
            await meta.deliver(http, json.loads(meta.encode(edit)))
        return sink

    sink = run(scenario)
    keys = {e.delivery_key for e in sink.envelopes}
    assert len(sink.envelopes) == 2 and len(keys) == 1 and sink.envelopes[0].references == ("fb_comment:P_1_c",)


def test_routes_without_an_app_secret_cannot_be_built():
    with pytest.raises(ValueError, match="app_secret"):
        MetaWebhookRoutes(MetaConfig(verify_token=SecretStr(TOKEN)))
