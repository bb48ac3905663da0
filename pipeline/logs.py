"""Logging: plain lines for people, or JSON lines for machines (one object per record)."""

from __future__ import annotations

import json
import logging
import sys

from pipeline.config import LoggingConfig


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(cfg: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if cfg.json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=cfg.level, handlers=[handler], force=True)
    quiet = max(logging.WARNING, logging.getLevelName(cfg.level))
    logging.getLogger("aiokafka").setLevel(quiet)
    # httpx logs every request URL at INFO, and a Telegram Bot API URL holds the bot token
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)
