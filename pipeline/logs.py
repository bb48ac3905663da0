"""Logging: plain lines for people, or JSON lines for machines (one object per record).

Fields bound with `log_context(message_id=..., ...)` (a context variable, so it follows asyncio
tasks and threads started with `asyncio.to_thread`) and fields passed as `extra=` land on every
line written inside: a JSON line carries them as keys, a plain line appends them as key=value.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pipeline.config import LoggingConfig

if TYPE_CHECKING:
    from pipeline.stages import WorkItem

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("omnintake_log_context",
                                                                                  default=None)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "context"}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (message_id, delivery_key, ticket, stage, ...) to every log line inside."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def message_log_context(item: WorkItem, stage: str) -> contextlib.AbstractContextManager[None]:
    """The fields every line about one message carries."""
    env = item.envelope
    return log_context(message_id=env.message_id, delivery_key=env.delivery_key, channel=env.channel, stage=stage)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
    return {**(_context.get() or {}), **extra}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "msg": record.getMessage(), **_fields(record)}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        return line + "".join(f" {k}={v}" for k, v in fields.items()) if fields else line


def configure(cfg: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if cfg.json_lines else PlainFormatter())
    logging.basicConfig(level=cfg.level, handlers=[handler], force=True)
    quiet = max(logging.WARNING, logging.getLevelName(cfg.level))
    logging.getLogger("aiokafka").setLevel(quiet)
    # httpx logs every request URL at INFO, and a Telegram Bot API URL holds the bot token
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)
