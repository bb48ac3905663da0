"""Start `intake run` as a real process on the test's Kafka topics and database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from sqlalchemy import Engine, func, select

from pipeline.config import Settings
from pipeline.store.schema import messages

ROOT = Path(__file__).resolve().parents[2]


def write_config(settings: Settings, path: Path) -> Path:
    data = settings.model_dump(mode="json")
    data["connectors"]["dropfolder"]["enabled"] = False
    data["connectors"]["http_intake"]["enabled"] = False
    data["connectors"]["transcripts"]["enabled"] = False  # no intake server: processes side by side
    data["relay"]["poll_interval_s"] = 0.2
    path.write_text(yaml.safe_dump(data))
    return path


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--config", str(config)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar() or 0


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
