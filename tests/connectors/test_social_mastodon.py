import asyncio

import httpx
import pytest
from pydantic import SecretStr

from connectors.cursors import MemoryCursorStore
from connectors.social_mastodon import MastodonConfig, MastodonConnector, to_envelope
from tests.connectors.conformance import FlakySink, restart_mid_stream
from tests.connectors.test_social_meta import CountingSink
from tests.fakes.social_providers import FakeMastodon

TOKEN = "mastodon-access-token"


def config(url: str, **overrides) -> MastodonConfig:
    values = {"enabled": True, "instance_url": url, "access_token": SecretStr(TOKEN), "account": "mastodon:@shop",
              "own_account_id": "42", "poll_interval_s": 0.01, "retry_initial_s": 0.01, "retry_max_s": 0.05}
    return MastodonConfig(**values | overrides)


def test_mentions_map_to_envelopes_with_visibility_and_own_posts_skipped():
    fake = FakeMastodon(TOKEN)
    fake.mention(1)
    fake.mention(2, visibility="direct", reply_to="109")
    fake.mention(3, author_id="42")
    fake.mention(4, kind="favourite")
    cfg = config(fake.url)
    public, direct, own, favourite = (to_envelope(n, cfg) for n in fake.notifications)
    assert own is None and favourite is None
    assert public.public and public.text == "@shop order 1 & refund?\nthanks"
    assert public.customer_text == "order 1 & refund?\nthanks" and public.sender.id == "user1@social.example"
    assert not direct.public and direct.in_reply_to == "status:109" and direct.metadata["visibility"] == "direct"


def test_the_cursor_moves_only_after_the_sink_accepted():
    async def scenario():
        fake, cursors = FakeMastodon(TOKEN), MemoryCursorStore()
        for n in range(5):
            fake.mention(n)
        async with fake.running():
            connector = MastodonConnector(config(fake.url), cursors)
            stop = asyncio.Event()
            sink = CountingSink(failures=10**6)
            task = asyncio.create_task(connector.run(sink, stop))
            await asyncio.sleep(0.3)
            saved_while_failing = cursors.load(connector.name, connector.cursor_key)
            sink.failures = 0
            while len(sink.envelopes) < 5:
                await asyncio.sleep(0.01)
            stop.set()
            await task
            await connector.close()
            return fake, sink, saved_while_failing, cursors.load(connector.name, connector.cursor_key)

    fake, sink, saved_while_failing, saved = run(scenario)
    assert saved_while_failing is None
    assert saved == fake.notifications[-1]["id"] and len(sink.envelopes) == 5


def test_rate_limits_and_outages_are_waited_out_and_a_refused_token_stops_the_connector():
    async def scenario():
        fake = FakeMastodon(TOKEN, fail_every=3)
        fake.rate_limit_next = 2
        for n in range(100):
            fake.mention(n)
        async with fake.running():
            connector = MastodonConnector(config(fake.url), MemoryCursorStore())
            stop, sink = asyncio.Event(), CountingSink()
            task = asyncio.create_task(connector.run(sink, stop))
            while len(sink.envelopes) < 100:
                await asyncio.sleep(0.01)
            stop.set()
            await task
            await connector.close()
            wrong = MastodonConnector(config(fake.url, access_token=SecretStr("nope")), MemoryCursorStore())
            with pytest.raises(httpx.HTTPStatusError):
                await asyncio.wait_for(wrong.run(CountingSink(), asyncio.Event()), 5)
            await wrong.close()
        return connector, sink

    connector, sink = run(scenario)
    assert len({e.delivery_key for e in sink.envelopes}) == 100 and connector.metrics.errors >= 3


@pytest.mark.parametrize("crash", [False, True], ids=["graceful", "crash"])
def test_conformance_5000_mentions_across_restarts(crash):
    fake, cursors = FakeMastodon(TOKEN), MemoryCursorStore()
    expected = {f"social:mastodon:@shop:status:{fake.mention(n, visibility='public' if n % 4 else 'direct')}"
                for n in range(5000)}
    fake.published = 1500

    async def feed():  # the rest arrive while the connector runs and restarts
        while fake.published < 5000:
            fake.published += 50
            await asyncio.sleep(0.005)

    async def scenario():
        async with fake.running():
            return await restart_mid_stream(lambda: MastodonConnector(config(fake.url), cursors), expected,
                                            feed=feed, sink=FlakySink(seed=3), restarts=3, crash=crash, seed=9)

    report = run(scenario)
    if crash:
        report.assert_none_lost()
    else:
        report.assert_exactly_once()
    assert report.delivered == len(expected) == 5000 and report.sink_failures > 0
    print(f"mastodon conformance ({crash=}): {fake.calls} polls, {report.sink_failures} sink failures, "
          f"stops at {report.stops}, duplicates {report.duplicated}")


def run(scenario):
    return asyncio.run(scenario())
