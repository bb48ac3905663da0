"""The conformance suite every connector passes: stop (or crash) and restart mid-stream, while the
sink fails now and then; afterwards every message was accepted, none lost, none accepted twice.

A connector test supplies `make_connector()` (a fresh instance over the same channel and cursor
store, as a restarted process would build it), the delivery keys it expects, and optionally a
`feed()` coroutine that keeps putting messages into the channel while the connector runs.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from connectors.base import Connector
from pipeline.envelope import Envelope


class FlakySink:
    """Accepts envelopes, failing a share of calls with a transient error; counts what it accepted."""

    def __init__(self, fail_rate: float = 0.05, seed: int = 0, delay_s: float = 0.0) -> None:
        self.fail_rate = fail_rate
        self.delay_s = delay_s
        self.random = random.Random(seed)
        self.accepted: Counter[str] = Counter()
        self.envelopes: dict[str, Envelope] = {}
        self.calls = 0
        self.failures = 0

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.random.random() < self.fail_rate:
            self.failures += 1
            raise ConnectionError("injected sink failure")
        for envelope in envelopes:
            self.accepted[envelope.delivery_key] += 1
            self.envelopes[envelope.delivery_key] = envelope

    @property
    def distinct(self) -> int:
        return len(self.accepted)


@dataclass
class ConformanceReport:
    expected: int
    delivered: int
    lost: set[str] = field(default_factory=set)
    unexpected: set[str] = field(default_factory=set)
    duplicated: int = 0
    stops: list[int] = field(default_factory=list)   # distinct messages accepted when each stop came
    sink_failures: int = 0

    def assert_exactly_once(self) -> None:
        assert not self.lost, f"{len(self.lost)} lost, e.g. {sorted(self.lost)[:3]}"
        assert not self.unexpected, f"{len(self.unexpected)} unexpected, e.g. {sorted(self.unexpected)[:3]}"
        assert self.duplicated == 0, f"{self.duplicated} accepted twice"

    def assert_none_lost(self) -> None:
        assert not self.lost, f"{len(self.lost)} lost, e.g. {sorted(self.lost)[:3]}"
        assert not self.unexpected, f"{len(self.unexpected)} unexpected, e.g. {sorted(self.unexpected)[:3]}"


async def _wait_for(predicate: Callable[[], bool], timeout_s: float, task: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if task.done():
            task.result()  # raises the connector's failure
            raise AssertionError("connector returned before the condition held")
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the connector")
        await asyncio.sleep(0.01)


async def restart_mid_stream(make_connector: Callable[[], Connector], expected: set[str], *,
                             feed: Callable[[], Awaitable[None]] | None = None, sink: FlakySink | None = None,
                             restarts: int = 2, crash: bool = False, seed: int = 0,
                             timeout_s: float = 120.0) -> ConformanceReport:
    """Run the connector, stop it at random points `restarts` times (gracefully, or by cancelling
    its task when `crash`), restart it each time, and finally run it until everything arrived."""
    rng = random.Random(seed)
    sink = sink or FlakySink(seed=seed)
    feeding = asyncio.create_task(feed()) if feed else None
    points = sorted(rng.randint(len(expected) // 10, len(expected) * 9 // 10) for _ in range(restarts))
    report = ConformanceReport(expected=len(expected), delivered=0)
    try:
        for point in [*points, len(expected)]:
            connector = make_connector()
            stop = asyncio.Event()
            task = asyncio.create_task(connector.run(sink, stop), name=f"conformance-{connector.name}")
            try:
                await _wait_for(lambda p=point: sink.distinct >= p, timeout_s, task)
                report.stops.append(sink.distinct)
            finally:
                if crash and point < len(expected):
                    task.cancel()
                else:
                    stop.set()
                await asyncio.gather(asyncio.wait_for(task, 30), return_exceptions=crash)
                await connector.close()
        if feeding:
            await feeding
    finally:
        if feeding and not feeding.done():
            feeding.cancel()
    delivered = set(sink.accepted)
    report.delivered = len(delivered)
    report.lost = expected - delivered
    report.unexpected = delivered - expected
    report.duplicated = sum(count - 1 for count in sink.accepted.values())
    report.sink_failures = sink.failures
    return report
