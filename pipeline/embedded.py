"""Embedded mode: no broker. Connectors hand envelopes straight to the stages, in-process; an
envelope counts as accepted once its ticket transaction committed (or its dead letter is stored).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from pipeline import metrics
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.envelope import Envelope
from pipeline.processor import BatchResult, Processor, RawRecord


class EmbeddedSink:
    def __init__(self, processor: Processor, dead_letters: SqlDeadLetterQueue) -> None:
        self.processor = processor
        self.dead_letters = dead_letters
        self.totals = BatchResult()
        self._stage_clock = metrics.StageClock()
        self._lock = asyncio.Lock()  # one writer: SQLite has one anyway, and order is kept

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        records = [RawRecord(e.model_dump_json().encode(), e.raw_ref or e.delivery_key) for e in envelopes]
        await self.accept_records(records)

    async def accept_records(self, records: Sequence[RawRecord]) -> BatchResult:
        async with self._lock:
            started = time.perf_counter()
            prepared = await asyncio.to_thread(self.processor.prepare, records)
            metrics.STEP_SECONDS.labels("prepare").observe(time.perf_counter() - started)
            metrics.count_step("prepare", prepared.items)
            self._stage_clock.publish(self.processor.stage_seconds)
            started = time.perf_counter()
            result = await asyncio.to_thread(self.processor.store, prepared)
            metrics.STEP_SECONDS.labels("store").observe(time.perf_counter() - started)
            metrics.count_stored(prepared.items, result.stored, result.duplicates, result.tickets_created)
            await asyncio.to_thread(self.dead_letters.put, result.dead_letters)
            metrics.count_dead(result.dead_letters)
        self.totals.merge(result)
        return result
