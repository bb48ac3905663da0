"""The small connector interface: one required method, `run`, plus an optional `close` hook."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.metrics import ConnectorMetrics
from pipeline.envelope import Envelope

if TYPE_CHECKING:
    from fastapi import APIRouter

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where connectors hand envelopes. `accept` returns only once they are durably held
    (acknowledged by Kafka, or stored in embedded mode); a connector moves its cursor after that."""

    async def accept(self, envelopes: Sequence[Envelope]) -> None: ...


class Connector(abc.ABC):
    name: str

    @abc.abstractmethod
    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Read the channel and hand envelopes to `sink` until `stop` is set."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; called once after `run` returns."""


class HttpRoutes(Protocol):
    """A channel that receives over HTTP (webhooks, transcript uploads): its routes are mounted on
    the shared intake server; every route answers 2xx only after `sink.accept` returned."""

    name: str
    metrics: ConnectorMetrics

    def router(self, sink: Sink) -> APIRouter: ...


class InputError(ValueError):
    """The input cannot become an envelope (malformed file, bad JSON); skip it with this reason."""


async def deliver(sink: Sink, envelopes: Sequence[Envelope], stop: asyncio.Event, metrics: ConnectorMetrics,
                  max_backoff_s: float = 30.0) -> bool:
    """Hand envelopes to the sink, retrying transient failures with backoff (the connector reads
    nothing more meanwhile: backpressure, not loss). True once accepted; False if stop came first.
    `InputError` (the sink refuses these envelopes for good) propagates to the caller."""
    backoff = 0.2
    while True:
        try:
            await sink.accept(envelopes)
        except InputError:
            raise
        except Exception as exc:
            metrics.error(exc)
            if stop.is_set():
                return False
            log.warning("%s: sink did not accept %d messages (%r); retrying in %.1f s",
                        metrics.connector, len(envelopes), exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, max_backoff_s)
            continue
        metrics.accepted(len(envelopes))
        return True


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DropFolderConfig(_Frozen):
    enabled: bool = True
    path: str = "var/inbox"
    poll_interval_s: float = Field(default=1.0, gt=0)
    account: str = "dropfolder"
    trusted_authserv_ids: tuple[str, ...] = Field(default=(), description="receiving servers whose "
                                                  "Authentication-Results may mark an .eml sender verified")


class HttpIntakeConfig(_Frozen):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)
    api_keys: tuple[SecretStr, ...] = ()
    max_body_bytes: int = Field(default=1_048_576, ge=1024)


async def deliver_batch(sink: Sink, envelopes: Sequence[Envelope], stop: asyncio.Event, metrics: ConnectorMetrics,
                        stand_in: Callable[[Envelope, str], Envelope] | None = None) -> bool:
    """`deliver` a batch; if the sink refuses it for good, go one by one so the rest still get
    through. A refused envelope is counted as rejected, logged, and replaced by `stand_in(envelope,
    reason)` when given (a small flagged record of it). True once every one is settled, False if
    stop came first."""
    try:
        return await deliver(sink, envelopes, stop, metrics)
    except InputError:
        pass
    for envelope in envelopes:
        try:
            if not await deliver(sink, [envelope], stop, metrics):
                return False
            continue
        except InputError as exc:
            refused = exc
        metrics.rejected += 1
        log.error("%s: the sink refused %s for good: %s", metrics.connector, envelope.delivery_key, refused)
        if stand_in is not None:
            try:
                if not await deliver(sink, [stand_in(envelope, str(refused))], stop, metrics):
                    return False
            except InputError as again:
                log.error("%s: the stand-in for %s was refused too: %s", metrics.connector, envelope.delivery_key,
                          again)
    return True
