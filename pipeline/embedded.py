"""Embedded mode: no broker. Connectors hand envelopes straight to the stages, in-process; an
envelope counts as accepted once its ticket transaction committed (or its dead letter is stored).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.envelope import Envelope
from pipeline.processor import BatchResult, Processor, RawRecord


class EmbeddedSink:
    def __init__(self, processor: Processor, dead_letters: SqlDeadLetterQueue) -> None:
        self.processor = processor
        self.dead_letters = dead_letters
        self.totals = BatchResult()
        self._lock = asyncio.Lock()  # one writer: SQLite has one anyway, and order is kept

    async def accept(self, envelopes: Sequence[Envelope]) -> None:
        records = [RawRecord(e.model_dump_json().encode(), e.raw_ref or e.delivery_key) for e in envelopes]
        await self.accept_records(records)

    async def accept_records(self, records: Sequence[RawRecord]) -> BatchResult:
        async with self._lock:
            result = await asyncio.to_thread(self.processor.process, records)
            await asyncio.to_thread(self.dead_letters.put, result.dead_letters)
        self.totals.merge(result)
        return result
