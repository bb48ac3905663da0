"""APPEND to stored ticket: a throwaway Dovecot, the IMAP connector in IDLE, the embedded pipeline
into SQLite. Messages are appended one at a time at a steady pace; prints latency percentiles as JSON.

    python -m benchmarks.imap_latency --messages 200 --rate 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from benchmarks.latency import TEXTS, summary, timed_sqlite_sink
from connectors.cursors import MemoryCursorStore
from connectors.email_imap import ImapAccountConfig, ImapConfig, ImapConnector
from tests.integration.dovecot import PASSWORD, DovecotServer


def message(i: int) -> bytes:
    text = TEXTS[i % len(TEXTS)].format(i=i)
    return (f"Message-ID: <bench{i}@bench.example>\r\nFrom: Customer {i} <c{i}@example.com>\r\n"
            f"To: support@example.com\r\nSubject: order {i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n").encode()


async def run(messages: int, rate: float, poll_interval_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="omnintake-imap-bench-") as tmp, DovecotServer(["bench"]) as server:
        sink, engine = timed_sqlite_sink(tmp, lambda envelope: envelope.message_id)
        account = ImapAccountConfig(host=server.host, port=server.port, security="none", username="bench",
                                    password=PASSWORD)
        connector = ImapConnector(ImapConfig(enabled=True, accounts=(account,), poll_interval_s=poll_interval_s),
                                  MemoryCursorStore())
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await asyncio.to_thread(server.append, [message(-1)])  # warm-up: models loaded, session in IDLE
        await sink.wait_stored(["<bench-1@bench.example>"], 120)
        client = await asyncio.to_thread(server.client, "bench")
        appended: dict[str, float] = {}
        started = time.monotonic()
        try:
            for i in range(messages):
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                appended[f"<bench{i}@bench.example>"] = time.monotonic()
                await asyncio.to_thread(client.append, "INBOX", message(i))
            await sink.wait_stored(appended.keys(), 60)
        finally:
            await asyncio.to_thread(client.logout)
            stop.set()
            await task
            await connector.close()
            engine.dispose()
        return {"messages": messages, "rate_per_s": rate, "mode": connector.workers[0].mode,
                "tickets": sink.totals.tickets_created, **summary(sink.latencies(appended), target_p95_s=2.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="APPENDs per second")
    parser.add_argument("--poll-interval", type=float, default=30.0, help="only used if the server lacks IDLE")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.rate, args.poll_interval)), indent=2))


if __name__ == "__main__":
    main()
