"""What the channel latency benchmarks share: the sample texts, a sink that notes when each
message's ticket transaction committed, and the percentile summary they print."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import Engine

from pipeline.config import Settings, StoreConfig
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.embedded import EmbeddedSink
from pipeline.envelope import Envelope
from pipeline.processor import Processor
from pipeline.store.database import make_engine, upgrade

TEXTS = ("My card was charged twice for order {i}, please refund it.",
         "Где мой заказ {i}? Жду уже две недели!",
         "我的订单 {i} 还没有到，请尽快处理。",
         "Đơn hàng {i} của tôi bị giao sai sản phẩm, tôi muốn đổi lại.")


class TimedSink(EmbeddedSink):
    """The embedded pipeline; `accept` returns once the ticket transaction committed, and
    `stored_at[key(envelope)]` is when that happened (monotonic clock)."""

    def __init__(self, processor: Processor, dead_letters: SqlDeadLetterQueue,
                 key: Callable[[Envelope], str]) -> None:
        super().__init__(processor, dead_letters)
        self.key = key
        self.stored_at: dict[str, float] = {}

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        await super().accept(envelopes)
        now = time.monotonic()
        for envelope in envelopes:
            self.stored_at.setdefault(self.key(envelope), now)

    async def wait_stored(self, keys: Collection[str], timeout_s: float) -> None:
        """Until every key is stored or the timeout passed (the summary counts what got stored)."""
        deadline = time.monotonic() + timeout_s
        while not all(k in self.stored_at for k in keys) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def latencies(self, sent_at: dict[str, float]) -> list[float]:
        return [self.stored_at[k] - t for k, t in sent_at.items() if k in self.stored_at]


def timed_sqlite_sink(folder: str, key: Callable[[Envelope], str]) -> tuple[TimedSink, Engine]:
    """A fresh SQLite store in `folder` behind the embedded pipeline."""
    url = f"sqlite:///{folder}/bench.db"
    upgrade(url)
    engine = make_engine(url)
    return TimedSink(Processor(Settings(store=StoreConfig(url=url)), engine), SqlDeadLetterQueue(engine), key), engine


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(latencies: list[float], target_p95_s: float) -> dict[str, Any]:
    """Percentiles in seconds and whether p95 met the target (an empty run never meets it)."""
    if not latencies:
        return {"stored": 0, "target_p95_s": target_p95_s, "met": False}
    p95 = percentile(latencies, 95)
    return {"stored": len(latencies), "p50_s": round(percentile(latencies, 50), 4), "p95_s": round(p95, 4),
            "p99_s": round(percentile(latencies, 99), 4), "max_s": round(max(latencies), 4),
            "mean_s": round(statistics.fmean(latencies), 4), "target_p95_s": target_p95_s, "met": p95 < target_p95_s}
