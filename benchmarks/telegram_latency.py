"""Telegram update to stored ticket: the local Bot API server, the connector long polling, the
embedded pipeline into SQLite. Updates are enqueued one at a time at a steady pace; prints latency
percentiles (enqueue -> ticket transaction committed) as JSON.

    python -m benchmarks.telegram_latency --messages 500 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select

from connectors.cursors import MemoryCursorStore
from connectors.telegram import TelegramConfig, TelegramConnector
from pipeline.config import Settings, StoreConfig
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.embedded import EmbeddedSink
from pipeline.envelope import Envelope
from pipeline.processor import Processor
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages as messages_table
from tests.fakes import telegram_updates as tg
from tests.fakes.telegram_api import TOKEN, FakeTelegram

TEXTS = ("My card was charged twice for order {i}, please refund it.",
         "Где мой заказ {i}? Жду уже две недели!",
         "我的订单 {i} 还没有到，请尽快处理。",
         "Đơn hàng {i} của tôi bị giao sai sản phẩm, tôi muốn đổi lại.")
TARGET_P95_S = 1.0


class TimedSink(EmbeddedSink):
    """The embedded pipeline; `accept` returns once the ticket transaction committed."""

    stored_at: dict[str, float]

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        await super().accept(envelopes)
        now = time.monotonic()
        for envelope in envelopes:
            self.stored_at.setdefault(envelope.metadata["update_id"], now)


def update(i: int) -> dict[str, Any]:
    customer = tg.user(700_000 + i % 97, f"Customer {i % 97}", None, f"customer{i % 97}", None)
    return {"message": tg.message(i + 1, customer, text=TEXTS[i % len(TEXTS)].format(i=i), date=tg.T0 + i)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def run(count: int, rate: float, poll_timeout_s: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="omnintake-telegram-bench-") as tmp, FakeTelegram() as fake:
        url = f"sqlite:///{Path(tmp)}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        sink = TimedSink(Processor(Settings(store=StoreConfig(url=url)), engine), SqlDeadLetterQueue(engine))
        sink.stored_at = {}
        cfg = TelegramConfig(enabled=True, token=SecretStr(TOKEN), base_url=fake.base_url,
                             account="telegram:@shop_support_bot", poll_timeout_s=poll_timeout_s)
        connector = TelegramConnector(cfg, MemoryCursorStore())
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        [warm] = fake.enqueue(update(-1))  # warm-up: models loaded, the long poll waiting
        while str(warm) not in sink.stored_at:
            await asyncio.sleep(0.01)
        enqueued: dict[str, float] = {}
        started = time.monotonic()
        try:
            for i in range(count):
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                [update_id] = await asyncio.to_thread(fake.enqueue, update(i))
                enqueued[str(update_id)] = fake.enqueued_at[update_id]
            deadline = time.monotonic() + 60
            while not enqueued.keys() <= sink.stored_at.keys() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await task
            await connector.close()
        with engine.connect() as conn:
            stored_rows = conn.execute(select(func.count()).select_from(messages_table)).scalar_one()
        engine.dispose()
        latencies = [sink.stored_at[k] - t for k, t in enqueued.items() if k in sink.stored_at]
        p95 = percentile(latencies, 95)
        return {
            "messages": count, "rate_per_s": rate, "stored": len(latencies), "rows_in_store": stored_rows - 1,
            "get_updates_calls": len(fake.calls_of("getUpdates")),
            "p50_s": round(percentile(latencies, 50), 4), "p95_s": round(p95, 4),
            "p99_s": round(percentile(latencies, 99), 4), "max_s": round(max(latencies), 4),
            "mean_s": round(statistics.fmean(latencies), 4), "tickets": sink.totals.tickets_created,
            "target_p95_s": TARGET_P95_S, "met": p95 < TARGET_P95_S and len(latencies) == count,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="updates enqueued per second")
    parser.add_argument("--poll-timeout", type=int, default=30, help="getUpdates long-poll seconds")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.rate, args.poll_timeout)), indent=2))


if __name__ == "__main__":
    main()
