"""JSON Schemas of the envelope and ticket events, generated from the models and committed."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.envelope import ENVELOPE_VERSION, Envelope
from pipeline.events import EVENT_VERSION, TicketEvent


def schemas() -> dict[str, dict[str, object]]:
    envelope = Envelope.model_json_schema(mode="validation")
    envelope["$id"] = f"https://omnintake.dev/schemas/envelope.v{ENVELOPE_VERSION}.json"
    event = TicketEvent.model_json_schema(mode="serialization")
    event["$id"] = f"https://omnintake.dev/schemas/ticket-event.v{EVENT_VERSION}.json"
    return {f"envelope.v{ENVELOPE_VERSION}.json": envelope, f"ticket-event.v{EVENT_VERSION}.json": event}


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in schemas().items():
        path = out / name
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
