"""The pipeline's work on a batch of raw records: decode, the per-message stages, then the
store transaction. The same code serves the Kafka runner and the embedded mode.

Returns the dead letters instead of sending them, so the caller can make them durable before
it commits offsets or moves a cursor.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from classifiers.hot_reload import ClassifierReloader
from classifiers.language import LanguageDetector
from classifiers.rules import RuleClassifier
from classifiers.shadow import Disagreement, record_disagreements
from pipeline.config import Settings
from pipeline.deadletters import DeadLetter
from pipeline.envelope import Envelope
from pipeline.errors import RetriableError, is_conflict, is_unavailable
from pipeline.logs import message_log_context
from pipeline.stages import Stage, WorkItem
from pipeline.stages.classify import ClassifyStage
from pipeline.stages.dedup import DedupStage, SketchStage
from pipeline.stages.language import LanguageStage
from pipeline.stages.normalise import NormaliseStage
from pipeline.stages.ticketing import TicketStage
from pipeline.store.database import make_engine
from pipeline.store.language_history import LanguageHistory
from pipeline.store.tickets import BatchOutcome, SqlTicketStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawRecord:
    payload: bytes
    source: str = ""
    attempts: int = 1


@dataclass(slots=True)
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    tickets_created: int = 0
    events: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def merge(self, other: BatchResult) -> None:
        self.add(other)  # type: ignore[arg-type] - same counters
        self.dead_letters.extend(other.dead_letters)

    def add(self, outcome: BatchOutcome) -> None:
        self.stored += outcome.stored
        self.duplicates += outcome.duplicates
        self.tickets_created += outcome.tickets_created
        self.events += outcome.events


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch after the per-message stages, ready for the store."""

    items: list[WorkItem]
    result: BatchResult
    disagreements: list[Disagreement] = field(default_factory=list)  # shadow mode, stored with the batch


_worker: Processor | None = None


def _start_worker(settings_json: str) -> None:
    global _worker
    _worker = Processor(Settings.model_validate_json(settings_json), engine=None)


def _prepare_in_worker(records: Sequence[RawRecord]) -> tuple[list[tuple[Any, ...]], list[DeadLetter],
                                                               dict[str, float], list[Disagreement]]:
    """Runs in the stage worker process; returns only what the stages computed (cheap to pickle)."""
    assert _worker is not None
    prepared = _worker.prepare(records)
    seconds = dict(_worker.stage_seconds)
    _worker.stage_seconds.clear()
    computed = [(i.index, i.text, i.classify_text, i.content_hash, i.language, i.labels, i.near)
                for i in prepared.items]
    return computed, prepared.result.dead_letters, seconds, prepared.disagreements


class Processor:
    """Decode and the per-message stages (`prepare`), then dedup and ticket in the store (`store`).

    With `pipeline.stage_workers` > 0 the per-message stages run in worker processes, so they use
    another core while this process talks to Kafka and the database. The classifier (rules, the
    active model, a shadow model) is loaded once where the stages run, and follows promote,
    rollback, shadow and rules changes through classifiers/hot_reload.py."""

    def __init__(self, settings: Settings, engine: Engine | None, detector: LanguageDetector | None = None,
                 classifier: RuleClassifier | None = None, stage_workers: int = 0,
                 reloader: ClassifierReloader | None = None) -> None:
        cfg = settings.pipeline
        self.engine = engine
        self.max_bytes = cfg.max_message_bytes
        self.max_attempts = cfg.max_attempts
        self.reloader: ClassifierReloader | None = None
        self.classify_stage: ClassifyStage | None = None
        self._history_engine: Engine | None = None  # made here (a stage worker has no store engine): disposed on close
        # With stage workers the models live in the workers only: loading them here too costs start-up and memory.
        self.stages: list[Stage] = []
        if stage_workers == 0:
            self.reloader = reloader or ClassifierReloader(settings.store.url, rules=classifier)
            self.classify_stage = ClassifyStage(self.reloader.live, frozenset(cfg.vip_senders))
            language = LanguageStage(detector or LanguageDetector.from_config(settings.language),
                                     history=self._language_history(settings, engine))
            self.stages = [NormaliseStage(), language, self.classify_stage, SketchStage()]
        self.tickets = SqlTicketStore(engine, DedupStage(timedelta(hours=cfg.dedup_window_hours)),
                                      TicketStage(cfg.sla_hours), cfg.ticket_prefix) if engine is not None else None
        self.stage_seconds: dict[str, float] = defaultdict(float)
        self.store_shards = cfg.store_shards if engine is not None and engine.dialect.name == "postgresql" else 1
        self._shard_pool = ThreadPoolExecutor(self.store_shards) if self.store_shards > 1 else None
        self._pool: ProcessPoolExecutor | None = None
        if stage_workers > 0:
            self._pool = ProcessPoolExecutor(stage_workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(settings.model_dump_json(),))

    def _language_history(self, settings: Settings, engine: Engine | None) -> LanguageHistory | None:
        lang = settings.language
        if lang.prior_customer_messages == 0 and lang.prior_channel_messages == 0:
            return None
        if engine is None:
            engine = self._history_engine = make_engine(settings.store.url)
        return LanguageHistory.from_config(engine, lang)

    def close(self) -> None:
        if self.reloader is not None:
            self.reloader.close()
        if self._history_engine is not None:
            self._history_engine.dispose()
            self._history_engine = None
        if self._shard_pool is not None:
            self._shard_pool.shutdown()
            self._shard_pool = None
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def decode(self, record: RawRecord) -> WorkItem | DeadLetter:
        if len(record.payload) > self.max_bytes:
            return self._dead(record, "validate", ValueError(
                f"message is {len(record.payload)} bytes, over the {self.max_bytes}-byte limit"))
        try:
            envelope = Envelope.model_validate_json(record.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(envelope)"
            return self._dead(record, "validate", ValueError(f"{where}: {first['msg']}"), exc)
        return WorkItem(envelope, record.source, record.attempts, payload=record.payload)

    def process(self, records: Sequence[RawRecord]) -> BatchResult:
        return self.store(self.prepare(records))

    def prepare(self, records: Sequence[RawRecord]) -> Prepared:
        """The per-message stages (CPU only, no database): decode, normalise, language, classify."""
        if self._pool is not None:
            return self._prepare_in_pool(records)
        if self.reloader is not None:
            self.reloader.maybe_refresh()
        result = BatchResult()
        started = time.perf_counter()
        items: list[WorkItem] = []
        for index, record in enumerate(records):
            decoded = self.decode(record)
            if isinstance(decoded, DeadLetter):
                result.dead_letters.append(decoded)
            else:
                decoded.index = index
                items.append(decoded)
        self.stage_seconds["decode"] += time.perf_counter() - started
        items = self.run_stages(items, records, result)
        disagreements = []
        if self.classify_stage is not None:
            disagreements = self.classify_stage.take_disagreements({i.envelope.delivery_key for i in items})
        return Prepared(items, result, disagreements)

    def _prepare_in_pool(self, records: Sequence[RawRecord]) -> Prepared:
        assert self._pool is not None
        computed, dead, seconds, disagreements = self._pool.submit(_prepare_in_worker, records).result()
        for name, value in seconds.items():
            self.stage_seconds[name] += value
        started = time.perf_counter()
        items = []
        for index, text, classify_text, digest, language, labels, near in computed:
            record = records[index]
            envelope = Envelope.model_validate_json(record.payload)  # valid: the worker decoded it
            items.append(WorkItem(envelope, record.source, record.attempts, text, classify_text, digest,
                                  language, labels, index=index, payload=record.payload, near=near))
        self.stage_seconds["decode"] += time.perf_counter() - started
        return Prepared(items, BatchResult(dead_letters=dead), disagreements)

    def store(self, prepared: Prepared) -> BatchResult:
        """Dedup and ticket in one transaction. Raises RetriableError while the database is down;
        calling it again with the same `prepared` is safe."""
        result = BatchResult(dead_letters=list(prepared.result.dead_letters))
        if prepared.items:
            self.store_batch(prepared.items, result)
        if prepared.disagreements and self.engine is not None:
            try:
                record_disagreements(self.engine, prepared.disagreements)
            except Exception as exc:  # review data: losing it must not hold up the pipeline
                log.warning("shadow disagreements of this batch not recorded: %r", exc)
        return result

    def run_stages(self, items: list[WorkItem], records: Sequence[RawRecord], result: BatchResult) -> list[WorkItem]:
        for stage in self.stages:
            started = time.perf_counter()
            prepare = getattr(stage, "prepare", None)
            if prepare is not None and items:
                prepare(items)
            if self._run_batch(stage, items):
                self.stage_seconds[stage.name] += time.perf_counter() - started
                continue
            survivors = []
            for item in items:
                error = self._run_with_retries(stage, item)
                if error is None:
                    survivors.append(item)
                else:
                    record = records[item.index] if item.index >= 0 else RawRecord(item.payload)
                    result.dead_letters.append(self._dead(record, stage.name, error, attempts=self.max_attempts))
            items = survivors
            self.stage_seconds[stage.name] += time.perf_counter() - started
        return items

    def _run_batch(self, stage: Stage, items: list[WorkItem]) -> bool:
        """A stage with `run_batch` (one model call for the batch) handles it whole; False when it has
        none or failed, and then each message runs alone with retries, so one bad message is dead-lettered
        and the others go on."""
        run_batch = getattr(stage, "run_batch", None)
        if run_batch is None or not items:
            return False
        try:
            run_batch(items)
            return True
        except Exception as exc:
            log.info("stage %s failed for a batch of %d (%r); running it per message", stage.name, len(items), exc)
            return False

    def _run_with_retries(self, stage: Stage, item: WorkItem) -> Exception | None:
        with message_log_context(item, stage.name):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    stage(item)
                    return None
                except Exception as exc:
                    if attempt == self.max_attempts:
                        log.warning("stage %s failed for %s after %d attempts: %r", stage.name,
                                    item.envelope.delivery_key, attempt, exc)
                        return exc
        return None

    def store_batch(self, items: list[WorkItem], result: BatchResult) -> None:
        """Store the batch, split by customer into `store_shards` transactions that run side by side
        (a customer's messages stay together and in order, so the shards never touch the same rows)."""
        assert self.tickets is not None, "this processor has no store"
        started = time.perf_counter()
        try:
            shards: list[list[WorkItem]] = [[] for _ in range(self.store_shards)]
            for item in items:
                shards[zlib.crc32(item.envelope.partition_key) % self.store_shards].append(item)
            shards = [s for s in shards if s]
            if len(shards) == 1:
                self._store_shard(shards[0], result)
                return
            assert self._shard_pool is not None
            parts = [BatchResult() for _ in shards]
            list(self._shard_pool.map(self._store_shard, shards, parts))  # raises the first failure
            for part in parts:
                result.merge(part)
        finally:
            self.stage_seconds["store"] += time.perf_counter() - started

    def _store_shard(self, items: list[WorkItem], result: BatchResult) -> None:
        """One transaction; on conflicts retry, then isolate the message at fault."""
        assert self.tickets is not None
        for attempt in range(1, self.max_attempts + 1):
            try:
                result.add(self.tickets.apply(items))
                return
            except Exception as exc:
                if is_unavailable(exc):
                    raise RetriableError(f"database unavailable: {exc.__class__.__name__}") from exc
                if not is_conflict(exc) or attempt == self.max_attempts:
                    log.warning("batch of %d failed to store (%r); storing one by one", len(items), exc)
                    break
                log.info("store conflict on attempt %d, retrying the batch: %s", attempt, exc.__class__.__name__)
        for item in items:
            self._store_one(item, result)

    def _store_one(self, item: WorkItem, result: BatchResult) -> None:
        with message_log_context(item, "ticket"):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    result.add(self.tickets.apply([item]))
                    return
                except Exception as exc:
                    if is_unavailable(exc):
                        raise RetriableError(f"database unavailable: {exc.__class__.__name__}") from exc
                    if attempt == self.max_attempts or not is_conflict(exc):
                        record = RawRecord(item.payload or item.envelope.model_dump_json().encode(), item.source,
                                           item.attempts)
                        log.warning("message set aside as a dead letter at the ticket step: %r", exc)
                        result.dead_letters.append(self._dead(record, "ticket", exc, attempts=attempt))
                        return

    def _dead(self, record: RawRecord, stage: str, error: Exception, cause: Exception | None = None,
              attempts: int | None = None) -> DeadLetter:
        cls = (cause or error).__class__.__name__
        return DeadLetter(record.payload, stage, str(error)[:2000], cls,
                          attempts if attempts is not None else record.attempts, record.source)
