"""The small connector interface: one required method, `run`, plus an optional `close` hook."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from pipeline.envelope import Envelope


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


class InputError(ValueError):
    """The input cannot become an envelope (malformed file, bad JSON); skip it with this reason."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DropFolderConfig(_Frozen):
    enabled: bool = True
    path: str = "var/inbox"
    poll_interval_s: float = Field(default=1.0, gt=0)
    account: str = "dropfolder"


class HttpIntakeConfig(_Frozen):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)
    api_keys: tuple[SecretStr, ...] = ()
    max_body_bytes: int = Field(default=1_048_576, ge=1024)


class ConnectorsConfig(_Frozen):
    dropfolder: DropFolderConfig = DropFolderConfig()
    http_intake: HttpIntakeConfig = HttpIntakeConfig()
