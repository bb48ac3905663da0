"""`intake demo`: the bundled sample set through the whole pipeline on the embedded default,
into a fresh SQLite file, then a table (or JSON) of the tickets it made."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connectors.base import DropFolderConfig
from connectors.dropfolder import DropFolderConnector
from pipeline.config import Settings, StoreConfig
from pipeline.deadletters import SqlDeadLetterQueue
from pipeline.embedded import EmbeddedSink
from pipeline.processor import Processor
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages, tickets

URGENCY_ORDER = {"critical": 0, "high": 1, "normal": 2, "low": 3}


def default_samples() -> Path:
    for candidate in (Path(__file__).resolve().parent.parent / "samples", Path.cwd() / "samples"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no samples/ folder next to the package or in the current directory")


async def run_demo(samples: Path | None = None) -> dict[str, Any]:
    samples = samples or default_samples()
    with tempfile.TemporaryDirectory(prefix="omnintake-demo-") as tmp:
        inbox = Path(tmp) / "inbox"
        shutil.copytree(samples, inbox, ignore=shutil.ignore_patterns("*.md"))
        url = f"sqlite:///{tmp}/demo.db"
        settings = Settings(store=StoreConfig(url=url))
        upgrade(url)
        engine = make_engine(url)
        try:
            sink = EmbeddedSink(Processor(settings, engine), SqlDeadLetterQueue(engine))
            connector = DropFolderConnector(DropFolderConfig(path=str(inbox)))
            accepted = await connector.scan_once(sink)
            return _report(engine, accepted, connector.metrics.rejected, sink)
        finally:
            engine.dispose()


def _report(engine: Any, accepted: int, failed_files: int, sink: EmbeddedSink) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(tickets).order_by(tickets.c.id)).mappings()]
        langs = dict(conn.execute(select(messages.c.language, func.count()).group_by(messages.c.language)).all())
        channels = dict(conn.execute(select(messages.c.channel, func.count()).group_by(messages.c.channel)).all())
    rows.sort(key=lambda r: (URGENCY_ORDER[r["urgency"]], r["sla_due_at"], r["id"]))
    keep = ("number", "status", "channel", "language", "type", "category", "urgency", "message_count",
            "repeat_count", "sla_due_at", "subject")
    totals = sink.totals
    return {
        "messages": accepted,
        "stored": totals.stored,
        "duplicates": totals.duplicates,
        "dead_letters": len(totals.dead_letters),
        "failed_files": failed_files,
        "tickets_created": totals.tickets_created,
        "events": totals.events,
        "by_language": langs,
        "by_channel": channels,
        "tickets": [{k: (r[k].isoformat() if k == "sla_due_at" else r[k]) for k in keep} for r in rows],
    }


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Omnintake demo: {len(report['tickets'])} tickets from {report['messages']} messages")
    for col in ("ticket", "urgency", "type", "category", "lang", "channel", "msgs", "SLA due", "subject"):
        table.add_column(col, overflow="fold" if col == "subject" else "ellipsis", no_wrap=col != "subject")
    for t in report["tickets"]:
        table.add_row(t["number"], t["urgency"], t["type"], t["category"] or "", t["language"], t["channel"],
                      str(t["message_count"]), t["sla_due_at"][:16].replace("T", " "), (t["subject"] or "")[:60])
    console = Console(width=max(Console().width, 140))
    console.print(table)
    console.print(f"stored {report['stored']}, duplicates dropped {report['duplicates']}, dead letters "
                  f"{report['dead_letters']}, unparsable files {report['failed_files']}, events {report['events']}; "
                  f"languages {report['by_language']}; channels {report['by_channel']}")
