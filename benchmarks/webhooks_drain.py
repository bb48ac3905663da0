"""Webhook backlog drain: a dispatcher starts on a backlog of N tickets x M events for one receiver.

Writes the backlog to an events file, starts the dispatcher (its own ingest path records the pending
deliveries) against a local uvicorn receiver that checks every signature, and times until every
delivery is acknowledged, in order per ticket: deliveries/s, order violations, repeats by delivery id.
SQLite in a temporary directory by default; `--store-url` for PostgreSQL (give an empty database).
Prints one JSON object.

    python -m benchmarks.webhooks_drain --tickets 100 --events 20 --in-flight 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from downstream.webhooks.config import WebhooksConfig
from downstream.webhooks.dispatcher import WebhookDispatcher
from downstream.webhooks.sources import JsonlEventSource
from downstream.webhooks.subscriptions import SubscriptionSpec, create_subscription
from pipeline.store.database import make_engine, upgrade
from tests.downstream.webhook_helpers import Receiver, append_jsonl, duplicates, order_violations, ticket_event


async def drain(store_url: str, tickets: int, events: int, in_flight: int, workdir: Path) -> dict:
    upgrade(store_url)
    engine = make_engine(store_url)
    receiver = Receiver(secret="whsec_benchmark_secret_000000")
    create_subscription(engine, SubscriptionSpec(url=receiver.url, secret=receiver.secret))
    events_file = workdir / "ticket-events.jsonl"
    append_jsonl(events_file, [ticket_event(f"B{t:05d}", s) for s in range(events) for t in range(tickets)])
    total = tickets * events
    cfg = WebhooksConfig(max_in_flight=in_flight, poll_interval_s=0.2, refresh_subscriptions_s=0.5,
                         batch_max_records=1000)
    stop = asyncio.Event()
    dispatcher = WebhookDispatcher(engine, cfg, JsonlEventSource(engine, str(events_file), cfg))
    await receiver.start()
    started = time.monotonic()
    task = asyncio.create_task(dispatcher.run(stop))
    while len({a.delivery_id for a in receiver.accepted()}) < total:
        await asyncio.sleep(0.1)
    drained_s = time.monotonic() - started
    stop.set()
    await task
    await receiver.stop()
    engine.dispose()
    return {"store": store_url.split(":")[0], "tickets": tickets, "events_per_ticket": events, "deliveries": total,
            "in_flight": in_flight, "drain_s": round(drained_s, 2),
            "deliveries_per_s": round(total / drained_s, 1), "requests": len(receiver.arrivals),
            "repeats": duplicates(receiver), "order_violations": order_violations(receiver),
            "bad_signatures": receiver.bad_signatures, "store_transactions": dispatcher.recorder.transactions,
            "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--events", type=int, default=20, help="events per ticket")
    parser.add_argument("--in-flight", type=int, default=8, help="max_in_flight per subscription")
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{tmp}/webhooks.db"
        print(json.dumps(asyncio.run(drain(url, args.tickets, args.events, args.in_flight, Path(tmp)))))


if __name__ == "__main__":
    main()
