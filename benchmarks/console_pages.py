"""Console pages with a large store: time to render (server side, over real HTTP) the queue, a
filtered queue, deeper queue pages, a ticket page and the live counters, signed in with a cookie.

Runs on a database loaded by the ticket-list benchmark and kept:

    python -m benchmarks.api_tickets --tickets 1000000 --keep      # prints "database": NAME
    python -m benchmarks.console_pages --database NAME --requests 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from benchmarks.api_tickets import ADMIN_URL, _Server
from benchmarks.latency import percentile
from downstream.api.app import create_app
from downstream.api.tokens import create_token
from pipeline.config import Settings, StoreConfig
from pipeline.store.database import make_engine
from pipeline.store.schema import tickets

TARGET_MS = 1000.0


def _timed(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.text


def _stats(ms: list[float]) -> dict[str, Any]:
    p95 = percentile(ms, 95)
    return {"requests": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(p95, 1),
            "max_ms": round(max(ms), 1), "met": p95 < TARGET_MS}


def measure(base_url: str, token: str, numbers: list[str], requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=60, follow_redirects=False) as client:
        signed_in = client.post("/console/login", data={"token": token})
        if signed_in.status_code != 303:
            raise RuntimeError(f"sign-in failed: {signed_in.status_code}")
        pages = {"queue (open + pending)": ("/console/", None),
                 "queue, critical only": ("/console/", {"urgency": "critical"}),
                 "queue, complaints by chat": ("/console/", {"type": "complaint", "channel": "chat"}),
                 "counters.json": ("/console/counters.json", None)}
        for name, (path, params) in pages.items():
            _timed(client, path, params)
            out[name] = _stats([_timed(client, path, params)[0] for _ in range(requests)])
        ms, cursor = [], None
        for _ in range(requests):  # walking the queue page after page
            elapsed, body = _timed(client, "/console/", {"cursor": cursor} if cursor else None)
            ms.append(elapsed)
            found = re.search(r'cursor=([^"&]+)"', body)
            cursor = httpx.QueryParams(f"c={found.group(1)}")["c"] if found else None
        out[f"queue pages 1-{requests}"] = _stats(ms)
        out["ticket page"] = _stats([_timed(client, f"/console/tickets/{n}")[0] for n in numbers[:requests]])
    return out


def run_bench(database: str, requests: int, seed: int = 7) -> dict[str, Any]:
    url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    engine = make_engine(url)
    result: dict[str, Any] = {"database": database, "target_ms": TARGET_MS, "load_average_before": os.getloadavg()}
    try:
        with engine.begin() as conn:
            result["tickets"] = conn.execute(select(func.count()).select_from(tickets)).scalar_one()
            token = create_token(conn, f"console-bench-{seed}-{time.time_ns()}", "operator")
            top = conn.execute(select(func.max(tickets.c.id))).scalar_one()
            ids = np.random.default_rng(seed).integers(1, top + 1, size=requests).tolist()
            numbers = list(conn.execute(select(tickets.c.number).where(tickets.c.id.in_(ids))).scalars())
        app = create_app(Settings(store=StoreConfig(url=url)), engine)
        with _Server(app) as base_url:
            result["pages"] = measure(base_url, token, numbers, requests)
    finally:
        engine.dispose()
    result["load_average_after"] = os.getloadavg()
    result["met"] = all(p["met"] for p in result["pages"].values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a database kept by benchmarks.api_tickets --keep")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(run_bench(args.database, args.requests), indent=1))


if __name__ == "__main__":
    main()
