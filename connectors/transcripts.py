"""Phone-call transcripts (WebVTT, SRT with a `.meta.json` sidecar, speech-to-text JSON) to Envelopes.

The whole call is kept as `text`; only the customer's turns feed classification.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import InputError
from pipeline.envelope import Envelope, Sender

_TIMING = re.compile(r"^(\S+)\s+-->\s+(\S+)")
_VOICE = re.compile(r"^<v(?:\.[^ >]*)?\s+([^>]+)>(.*?)(?:</v>)?$", re.S)
_LABEL = re.compile(r"^([A-Za-z][\w .-]{0,30}):\s*(.+)$", re.S)
_TAGS = re.compile(r"</?[^>]+>")
AGENT_NAMES = {"agent", "operator", "support", "rep", "representative"}


@dataclass(frozen=True, slots=True)
class Segment:
    speaker: str
    role: str
    text: str
    start: float | None = None
    end: float | None = None
    confidence: float | None = None


def _role(speaker: str, roles: dict[str, str]) -> str:
    if speaker in roles:
        return roles[speaker]
    return "agent" if speaker.strip().lower() in AGENT_NAMES else "customer"


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    try:
        return sum(float(p) * 60**i for i, p in enumerate(reversed(parts)))
    except ValueError as exc:
        raise InputError(f"bad timestamp {stamp!r}") from exc


def _cues(text: str) -> tuple[dict[str, str], list[tuple[float, float, str]]]:
    notes: dict[str, str] = {}
    cues: list[tuple[float, float, str]] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("NOTE"):
            body = " ".join(lines)[4:].strip()
            key, sep, value = body.partition(":")
            if sep:
                notes[key.strip().lower()] = value.strip()
            continue
        timing_at = next((i for i, line in enumerate(lines) if _TIMING.match(line)), None)
        if timing_at is None:
            continue
        match = _TIMING.match(lines[timing_at])
        assert match is not None
        cues.append((_seconds(match[1]), _seconds(match[2]), "\n".join(lines[timing_at + 1:])))
    return notes, cues


def parse_vtt(text: str) -> tuple[dict[str, str], list[Segment]]:
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise InputError("not a WebVTT file: the first line must be WEBVTT")
    notes, cues = _cues(text.lstrip("\ufeff")[6:])
    segments = []
    for start, end, body in cues:
        match = _VOICE.match(body.strip())
        speaker, words = (match[1].strip(), match[2]) if match else ("unknown", body)
        segments.append(Segment(speaker, _role(speaker, {}), _TAGS.sub("", words).strip(), start, end))
    return notes, segments


def parse_srt(text: str, meta: dict[str, Any]) -> list[Segment]:
    _, cues = _cues(text.lstrip("\ufeff"))
    roles = {k: str(v) for k, v in (meta.get("speakers") or {}).items()}
    segments = []
    for start, end, body in cues:
        match = _LABEL.match(body.strip())
        speaker, words = (match[1].strip(), match[2]) if match else ("unknown", body)
        segments.append(Segment(speaker, _role(speaker, roles), _TAGS.sub("", words).strip(), start, end))
    return segments


def parse_stt_json(data: dict[str, Any]) -> list[Segment]:
    raw = data.get("segments")
    if not isinstance(raw, list) or not raw:
        raise InputError("transcript JSON has no segments list")
    segments = []
    for i, seg in enumerate(raw):
        if not isinstance(seg, dict) or not isinstance(seg.get("text"), str):
            raise InputError(f"segment {i} has no text")
        speaker = str(seg.get("speaker") or "unknown")
        segments.append(Segment(speaker, _role(speaker, {}), seg["text"].strip(), seg.get("start"),
                                seg.get("end"), seg.get("confidence")))
    return segments


def _when(value: object) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError as exc:
            raise InputError(f"started_at {value!r} is not an ISO 8601 time") from exc
    return datetime.now(UTC)


def to_envelope(meta: dict[str, Any], segments: list[Segment], raw_ref: str, fallback_id: str) -> Envelope:
    if not segments:
        raise InputError("transcript has no cues")
    caller = str(meta.get("caller") or "").strip()
    if not caller:
        raise InputError("transcript names no caller")
    call_id = str(meta.get("call_id") or fallback_id)
    customer = [s.text for s in segments if s.role == "customer" and s.text]
    return Envelope(
        channel="phone",
        account=str(meta.get("line") or "phone"),
        message_id=call_id,
        conversation_id=call_id,
        sender=Sender(kind="phone", id=caller),
        received_at=_when(meta.get("started_at")),
        text="\n".join(f"{s.role}: {s.text}" for s in segments),
        customer_text="\n".join(customer) if customer else None,
        language_hint=meta.get("language") or None,
        raw_ref=raw_ref,
        metadata={"segments": json.dumps([asdict(s) for s in segments], ensure_ascii=False)},
    )


def parse_transcript_file(path: Path) -> Envelope:
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".vtt":
        notes, segments = parse_vtt(text)
        return to_envelope(notes, segments, path.as_uri(), path.stem)
    if suffix == ".srt":
        sidecar = path.with_suffix(".meta.json")
        meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
        return to_envelope(meta, parse_srt(text, meta), path.as_uri(), path.stem)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"transcript JSON does not parse: {exc}") from exc
    return to_envelope(data, parse_stt_json(data), path.as_uri(), path.stem)
