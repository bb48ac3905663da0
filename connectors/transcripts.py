"""Phone-call transcripts to Envelopes: from the drop folder (a file, with an optional `.meta.json`
sidecar) and over HTTP (`POST /v1/transcripts`).

The whole call is kept as `text` and per segment in metadata; only the customer's turns feed
classification. The caller's number is the customer's identity.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from connectors.base import InputError, Sink
from connectors.config import TranscriptsConfig
from connectors.metrics import ConnectorMetrics
from connectors.transcript_formats import Transcript, assign_roles, parse_transcript
from pipeline.envelope import Envelope, Sender

FORMATS = {".vtt": "vtt", ".srt": "srt", ".sbv": "sbv", ".json": "json", ".jsonl": "jsonl"}
_CONTENT_TYPES = {"text/vtt": "vtt", "application/x-subrip": "srt", "text/srt": "srt", "text/sbv": "sbv",
                  "application/json": "json", "application/jsonl": "jsonl", "application/x-ndjson": "jsonl"}


def normalise_phone(number: str) -> str:
    """`+44 20 7946-0000`, `0044 20 7946 0000` -> `+442079460000`; other identifiers stay as given."""
    compact = re.sub(r"[\s().-]", "", number)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if re.fullmatch(r"\+?\d{3,16}", compact) else number.strip()


def _when(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"started_at {value!r} is not an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_envelope(transcript: Transcript, raw_ref: str, fallback_id: str, default_line: str = "phone") -> Envelope:
    meta, segments = transcript.meta, transcript.segments
    call_id = str(meta.get("call_id") or fallback_id)
    caller = normalise_phone(str(meta.get("caller") or "").strip())
    customer = [s.text for s in segments if s.role == "customer" and s.text]
    return Envelope(
        channel="phone",
        account=str(meta.get("line") or default_line),
        message_id=call_id,
        conversation_id=call_id,
        # a withheld number is still a caller: one customer per anonymous call, never lost
        sender=Sender(kind="phone", id=caller or f"withheld:{call_id}"),
        received_at=_when(meta.get("started_at")) or datetime.now(UTC),
        text="\n".join(f"{s.role}: {s.text}" for s in segments if s.text),
        customer_text="\n".join(customer),
        language_hint=meta.get("language") or None,
        raw_ref=raw_ref,
        metadata={"segments": json.dumps([asdict(s) for s in segments], ensure_ascii=False),
                  "transcript_format": transcript.format, "speaker_roles_from": transcript.role_source,
                  **({"caller_withheld": "true"} if not caller else {})},
    )


def read_transcript(path: Path) -> Transcript:
    """Parse a transcript file and its `.meta.json` sidecar (caller, call_id, started_at, speakers)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"unknown transcript format {path.suffix!r}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"transcript is not UTF-8: {exc}") from exc
    transcript = parse_transcript(text, fmt)
    sidecar = path.with_name(path.name.removesuffix(path.suffix) + ".meta.json")
    extra: dict[str, Any] = {}
    if sidecar.exists():
        try:
            extra = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{sidecar.name} does not parse: {exc}") from exc
        if not isinstance(extra, dict):
            raise InputError(f"{sidecar.name} must hold an object")
    transcript.meta = {**transcript.meta, **extra}
    return assign_roles(transcript, transcript.meta.get("speakers"))


def parse_transcript_file(path: Path) -> Envelope:
    return to_envelope(read_transcript(path), path.resolve().as_uri(), path.stem)


class TranscriptRoutes:
    """`POST /v1/transcripts`: the body is the transcript; its format comes from `?format=` or the
    Content-Type; call fields from the query (`caller`, `call_id`, `started_at`, `line`, `language`)
    or, for JSON, the document itself. 202 once durably accepted; malformed: 422 with the reason."""

    name = "transcripts"

    def __init__(self, cfg: TranscriptsConfig) -> None:
        self.cfg = cfg
        self.metrics = ConnectorMetrics(self.name)

    def router(self, sink: Sink) -> APIRouter:
        from connectors.http_intake import hand_over

        router = APIRouter()
        keys = [k.get_secret_value() for k in self.cfg.api_keys]

        @router.post("/v1/transcripts", status_code=202)
        async def post_transcript(request: Request, format: str | None = None, caller: str | None = None,
                                  call_id: str | None = None, started_at: str | None = None,
                                  line: str | None = None, language: str | None = None,
                                  x_api_key: str | None = Header(default=None)) -> JSONResponse:
            if keys and not any(hmac.compare_digest(x_api_key or "", k) for k in keys):
                raise HTTPException(status_code=401, detail="missing or wrong X-Api-Key")
            body = await request.body()
            if len(body) > self.cfg.max_body_bytes:
                raise HTTPException(status_code=413, detail=f"body over {self.cfg.max_body_bytes} bytes")
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            fmt = format or _CONTENT_TYPES.get(content_type)
            given = {"caller": caller, "call_id": call_id, "started_at": started_at, "line": line,
                     "language": language}
            try:
                if fmt is None:
                    raise InputError("say the format: ?format=vtt|srt|sbv|json|jsonl or a Content-Type")
                transcript = parse_transcript(body.decode("utf-8-sig"), fmt)
                transcript.meta = {**transcript.meta, **{k: v for k, v in given.items() if v}}
                transcript = assign_roles(transcript, transcript.meta.get("speakers"))
                # without a call id, the body names the call: a retried upload is the same message
                fallback = "sha256:" + hashlib.sha256(body).hexdigest()[:32]
                envelope = to_envelope(transcript, f"http:/v1/transcripts/{transcript.meta.get('call_id', fallback)}",
                                       fallback, self.cfg.default_line)
            except (InputError, UnicodeDecodeError) as exc:
                self.metrics.rejected += 1
                raise HTTPException(status_code=422, detail=str(exc)) from exc
            await hand_over(sink, [envelope], self.metrics)
            return JSONResponse({"accepted": 1, "envelope_id": envelope.envelope_id, "format": transcript.format,
                                 "segments": len(transcript.segments)}, status_code=202)

        return router
