"""Group commit for delivery outcomes: what concurrent deliveries report while a transaction is being
written goes into the next one, so the store's commit rate (one fsync each) does not cap deliveries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from downstream.webhooks.config import RetryPolicy
from downstream.webhooks.deliveries import ClaimedDelivery, record_delivered, record_failure

log = logging.getLogger(__name__)
Write = Callable[[Connection], Any]


class OutcomeRecorder:
    def __init__(self, engine: Engine, policy: RetryPolicy, lease_s: float, attempts: int = 6) -> None:
        self.engine = engine
        self.policy = policy
        self.lease_s = lease_s
        self.attempts = attempts
        self._queue: list[tuple[Write, asyncio.Future[Any], Any]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.transactions = 0

    async def delivered(self, claimed: ClaimedDelivery, status: int, retry_waiting_now: bool) -> ClaimedDelivery | None:
        """Record it; returns the ticket's next delivery, claimed, when one is due."""
        return await self._submit(lambda conn: record_delivered(conn, claimed, status, None, retry_waiting_now,
                                                                self.lease_s), None)

    async def failed(self, claimed: ClaimedDelivery, status: int | None, error: str) -> bool:
        """Record a failed attempt; True if it went to the dead letters."""
        return await self._submit(lambda conn: record_failure(conn, claimed, status, error, self.policy), False)

    async def _submit(self, write: Write, if_unrecorded: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future, if_unrecorded))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            results = await self._write_retrying([write for write, _, _ in batch])
            for n, (_, future, if_unrecorded) in enumerate(batch):
                if not future.done():
                    future.set_result(if_unrecorded if results is None else results[n])

    async def _write_retrying(self, writes: list[Write]) -> list[Any] | None:
        """None if the store stayed away: those deliveries keep their lease until it runs out and are
        then attempted again (same delivery id, so the receiver drops the repeat)."""
        delay = 0.5
        for n in range(self.attempts):
            try:
                return await asyncio.to_thread(self._write, writes)
            except Exception as exc:
                if n == self.attempts - 1:
                    log.error("recording %d delivery outcomes failed for good (%r)", len(writes), exc)
                    return None
                log.warning("recording %d delivery outcomes failed (%r); retrying in %.1f s", len(writes), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        return None

    def _write(self, writes: list[Write]) -> list[Any]:
        with self.engine.begin() as conn:
            results = [write(conn) for write in writes]
        self.transactions += 1
        return results
