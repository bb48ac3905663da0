"""Telegram update to stored ticket: the local Bot API server, the connector long polling, the
embedded pipeline into SQLite. Updates are enqueued one at a time at a steady pace; prints latency
percentiles (enqueue -> ticket transaction committed) as JSON.

    python -m benchmarks.telegram_latency --messages 500 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select

from benchmarks.latency import TEXTS, summary, timed_sqlite_sink
from connectors.cursors import MemoryCursorStore
from connectors.telegram import TelegramConfig, TelegramConnector
from pipeline.store.schema import messages as messages_table
from tests.fakes import telegram_updates as tg
from tests.fakes.telegram_api import TOKEN, FakeTelegram

TARGET_P95_S = 1.0


def update(i: int) -> dict[str, Any]:
    customer = tg.user(700_000 + i % 97, f"Customer {i % 97}", None, f"customer{i % 97}", None)
    return {"message": tg.message(i + 1, customer, text=TEXTS[i % len(TEXTS)].format(i=i), date=tg.T0 + i)}


async def run(count: int, rate: float, poll_timeout_s: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="omnintake-telegram-bench-") as tmp, FakeTelegram() as fake:
        sink, engine = timed_sqlite_sink(tmp, lambda envelope: str(envelope.metadata["update_id"]))
        cfg = TelegramConfig(enabled=True, token=SecretStr(TOKEN), base_url=fake.base_url,
                             account="telegram:@shop_support_bot", poll_timeout_s=poll_timeout_s)
        connector = TelegramConnector(cfg, MemoryCursorStore())
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        [warm] = fake.enqueue(update(-1))  # warm-up: models loaded, the long poll waiting
        await sink.wait_stored([str(warm)], 120)
        enqueued: dict[str, float] = {}
        started = time.monotonic()
        try:
            for i in range(count):
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                [update_id] = await asyncio.to_thread(fake.enqueue, update(i))
                enqueued[str(update_id)] = fake.enqueued_at[update_id]
            await sink.wait_stored(enqueued.keys(), 60)
        finally:
            stop.set()
            await task
            await connector.close()
        with engine.connect() as conn:
            stored_rows = conn.execute(select(func.count()).select_from(messages_table)).scalar_one()
        engine.dispose()
        figures = summary(sink.latencies(enqueued), TARGET_P95_S)
        figures["met"] = figures["met"] and figures["stored"] == count
        return {"messages": count, "rate_per_s": rate, "rows_in_store": stored_rows - 1,
                "get_updates_calls": len(fake.calls_of("getUpdates")), "tickets": sink.totals.tickets_created,
                **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="updates enqueued per second")
    parser.add_argument("--poll-timeout", type=int, default=30, help="getUpdates long-poll seconds")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.rate, args.poll_timeout)), indent=2))


if __name__ == "__main__":
    main()
