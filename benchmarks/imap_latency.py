"""APPEND to stored ticket: a throwaway Dovecot, the IMAP connector in IDLE, the embedded pipeline
into SQLite. Messages are appended one at a time at a steady pace; prints latency percentiles as JSON.

    python -m benchmarks.imap_latency --messages 200 --rate 5
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

from connectors.cursors import MemoryCursorStore
from connectors.email_imap import ImapAccountConfig, ImapConfig, ImapConnector
from pipeline.config import Settings, StoreConfig
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.embedded import EmbeddedSink
from pipeline.envelope import Envelope
from pipeline.processor import Processor
from pipeline.store.database import make_engine, upgrade
from tests.integration.dovecot import PASSWORD, DovecotServer

TEXTS = ("My card was charged twice for order {i}, please refund it.",
         "Где мой заказ {i}? Жду уже две недели!",
         "我的订单 {i} 还没有到，请尽快处理。",
         "Đơn hàng {i} của tôi bị giao sai sản phẩm, tôi muốn đổi lại.")


class TimedSink(EmbeddedSink):
    """The embedded pipeline; `accept` returns once the ticket transaction committed."""

    stored_at: dict[str, float]

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        await super().accept(envelopes)
        now = time.monotonic()
        for envelope in envelopes:
            self.stored_at.setdefault(envelope.message_id, now)


def message(i: int) -> bytes:
    text = TEXTS[i % len(TEXTS)].format(i=i)
    return (f"Message-ID: <bench{i}@bench.example>\r\nFrom: Customer {i} <c{i}@example.com>\r\n"
            f"To: support@example.com\r\nSubject: order {i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n").encode()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def run(messages: int, rate: float, poll_interval_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="omnintake-imap-bench-") as tmp, DovecotServer(["bench"]) as server:
        url = f"sqlite:///{Path(tmp)}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        sink = TimedSink(Processor(Settings(store=StoreConfig(url=url)), engine), SqlDeadLetterQueue(engine))
        sink.stored_at = {}
        account = ImapAccountConfig(host=server.host, port=server.port, security="none", username="bench",
                                    password=PASSWORD)
        connector = ImapConnector(ImapConfig(enabled=True, accounts=(account,), poll_interval_s=poll_interval_s),
                                  MemoryCursorStore())
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await asyncio.to_thread(server.append, [message(-1)])  # warm-up: models loaded, session in IDLE
        while "<bench-1@bench.example>" not in sink.stored_at:
            await asyncio.sleep(0.01)
        client = await asyncio.to_thread(server.client, "bench")
        appended: dict[str, float] = {}
        started = time.monotonic()
        try:
            for i in range(messages):
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                appended[f"<bench{i}@bench.example>"] = time.monotonic()
                await asyncio.to_thread(client.append, "INBOX", message(i))
            deadline = time.monotonic() + 60
            while not appended.keys() <= sink.stored_at.keys() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await asyncio.to_thread(client.logout)
            stop.set()
            await task
            await connector.close()
            engine.dispose()
        latencies = [sink.stored_at[k] - t for k, t in appended.items() if k in sink.stored_at]
        return {
            "messages": messages, "rate_per_s": rate, "stored": len(latencies), "mode": connector.workers[0].mode,
            "p50_s": round(percentile(latencies, 50), 4), "p95_s": round(percentile(latencies, 95), 4),
            "p99_s": round(percentile(latencies, 99), 4), "max_s": round(max(latencies), 4),
            "mean_s": round(statistics.fmean(latencies), 4), "tickets": sink.totals.tickets_created,
            "target_p95_s": 2.0, "met": percentile(latencies, 95) < 2.0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="APPENDs per second")
    parser.add_argument("--poll-interval", type=float, default=30.0, help="only used if the server lacks IDLE")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.rate, args.poll_interval)), indent=2))


if __name__ == "__main__":
    main()
