"""Call-transcript formats to segments: WebVTT, SRT, SBV, and the JSON of speech-to-text services
(our generic `segments`, Whisper, AWS Transcribe, Deepgram, AssemblyAI, Google) or JSON lines.

Parsing is strict: a cue without timing, a timestamp that does not parse, an unknown JSON shape
is an `InputError` naming the place, so the file goes to quarantine instead of half-read.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.base import InputError

_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_SBV_TIMING = re.compile(r"^\s*(\d+:\d{2}:\d{2}\.\d{3}),(\d+:\d{2}:\d{2}\.\d{3})\s*$")
_STAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?$")
_VOICE = re.compile(r"^<v(?:\.[^ >]*)?\s+([^>]+)>(.*?)(?:</v>)?$", re.S)
_LABEL = re.compile(r"^([A-Za-z][\w .-]{0,30}):\s*(.+)$", re.S)
_TAGS = re.compile(r"</?[^>]+>")
_AGENT_NAMES = {"agent", "operator", "support", "rep", "representative", "advisor", "staff"}
_CUSTOMER_NAMES = {"customer", "caller", "client", "user", "guest"}
# Who answers an inbound support call says one of these; the customer rarely does.
_AGENT_PHRASES = re.compile(
    r"thank(s| you) for calling|how (can|may) i (help|assist)|this is .{0,40}(support|bank|service)"
    r"|my name is .{0,30} (from|with)|xin chào.{0,40}(hỗ trợ|tổng đài)|您好.{0,10}(客服|请问)|"
    r"(служба поддержки|чем (я )?могу (вам )?помочь)|(εξυπηρέτηση|πώς μπορώ να (σας )?βοηθήσω)",
    re.I)


@dataclass(frozen=True, slots=True)
class Segment:
    speaker: str
    role: str
    text: str
    start: float | None = None
    end: float | None = None
    confidence: float | None = None


@dataclass
class Transcript:
    format: str
    segments: list[Segment]
    meta: dict[str, Any] = field(default_factory=dict)   # caller, call_id, started_at, line, language
    role_source: str = "none"


def seconds(stamp: str) -> float:
    match = _STAMP.match(stamp.strip())
    if not match:
        raise InputError(f"bad timestamp {stamp!r}")
    hours, minutes, secs, frac = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + (int(frac.ljust(3, "0")) / 1000 if frac else 0)


def _blocks(text: str) -> list[list[str]]:
    blocks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip())
    return [[line for line in block.split("\n") if line.strip()] for block in blocks if block.strip()]


def _cue_body(lines: list[str], number: int) -> tuple[float, float, str] | None:
    at = next((i for i, line in enumerate(lines) if "-->" in line), None)
    if at is None or at > 1:
        raise InputError(f"cue {number} has no timing line")
    match = _TIMING.match(lines[at])
    if not match:
        raise InputError(f"cue {number}: bad timing line {lines[at]!r}")
    start, end = seconds(match[1]), seconds(match[2])
    if end < start:
        raise InputError(f"cue {number} ends before it starts")
    body = "\n".join(lines[at + 1:]).strip()
    return (start, end, body) if body else None


def parse_vtt(text: str) -> Transcript:
    text = text.lstrip("\ufeff")
    if not re.match(r"WEBVTT(?:[ \t\r\n]|$)", text):
        raise InputError("not a WebVTT file: the first line must be WEBVTT")
    blocks = _blocks(text)
    meta: dict[str, Any] = {}
    segments: list[Segment] = []
    for number, lines in enumerate(blocks[1:] if blocks and blocks[0][0].startswith("WEBVTT") else blocks, 1):
        if lines[0].startswith(("NOTE", "STYLE", "REGION")):
            key, sep, value = " ".join(lines)[4:].strip().partition(":")
            if lines[0].startswith("NOTE") and sep:
                meta[key.strip().lower()] = value.strip()
            continue
        cue = _cue_body(lines, number)
        if cue is None:
            continue
        start, end, body = cue
        voice = _VOICE.match(body)
        speaker, words = (voice[1].strip(), voice[2]) if voice else _labelled(body)
        segments.append(Segment(speaker, "", _TAGS.sub("", words).strip(), start, end))
    return Transcript("vtt", segments, meta)


def _labelled(body: str) -> tuple[str, str]:
    match = _LABEL.match(body)
    return (match[1].strip(), match[2]) if match else ("unknown", body)


def parse_srt(text: str) -> Transcript:
    segments = []
    for number, lines in enumerate(_blocks(text.lstrip("\ufeff")), 1):
        if lines[0].strip().isdigit():
            lines = lines[1:]
        if not lines or "-->" not in lines[0]:
            raise InputError(f"SRT cue {number} has no timing line")
        cue = _cue_body(lines, number)
        if cue is None:
            continue
        start, end, body = cue
        speaker, words = _labelled(body)
        segments.append(Segment(speaker, "", _TAGS.sub("", words).strip(), start, end))
    return Transcript("srt", segments)


def parse_sbv(text: str) -> Transcript:
    segments = []
    for number, lines in enumerate(_blocks(text.lstrip("\ufeff")), 1):
        match = _SBV_TIMING.match(lines[0])
        if not match:
            raise InputError(f"SBV caption {number}: bad timing line {lines[0]!r}")
        body = "\n".join(lines[1:]).strip()
        if body:
            speaker, words = _labelled(body)
            segments.append(Segment(speaker, "", words.strip(), seconds(match[1]), seconds(match[2])))
    return Transcript("sbv", segments)


def _number(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.removesuffix("s")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} {value!r} is not a number") from exc
    if math.isnan(number) or math.isinf(number):
        raise InputError(f"{what} is not finite")
    return number


def _segment(raw: Any, i: int, *, text_keys: tuple[str, ...] = ("text",), scale: float = 1.0,
             speaker_keys: tuple[str, ...] = ("speaker",), role: str = "") -> Segment:
    if not isinstance(raw, dict):
        raise InputError(f"segment {i} is not an object")
    text = next((raw[k] for k in text_keys if isinstance(raw.get(k), str)), None)
    if text is None:
        raise InputError(f"segment {i} has no text")
    speaker = next((str(raw[k]) for k in speaker_keys if raw.get(k) not in (None, "")), "unknown")
    confidence = _number(raw.get("confidence"), f"segment {i} confidence")
    if confidence is None and raw.get("avg_logprob") is not None:  # Whisper
        confidence = math.exp(min(0.0, _number(raw["avg_logprob"], f"segment {i} avg_logprob") or 0.0))
    start, end = _number(raw.get("start"), f"segment {i} start"), _number(raw.get("end"), f"segment {i} end")
    return Segment(speaker, role, text.strip(), None if start is None else start * scale,
                   None if end is None else end * scale, confidence)


def _aws(results: dict[str, Any]) -> list[Segment]:
    if isinstance(results.get("audio_segments"), list) and results["audio_segments"]:
        return [_segment(s, i, text_keys=("transcript",), speaker_keys=("speaker_label", "channel_label"))
                for i, s in enumerate(results["audio_segments"])]
    segments: list[Segment] = []
    for i, item in enumerate(results.get("items") or []):
        best = (item.get("alternatives") or [{}])[0]
        content = str(best.get("content", ""))
        confidence = _number(best.get("confidence"), f"item {i} confidence")
        speaker = str(item.get("speaker_label") or (segments[-1].speaker if segments else "unknown"))
        if segments and (item.get("type") == "punctuation" or speaker == segments[-1].speaker):
            last = segments[-1]
            sep = "" if item.get("type") == "punctuation" else " "
            words = (last.confidence, None if item.get("type") == "punctuation" else confidence)
            known = [c for c in words if c is not None]
            segments[-1] = Segment(last.speaker, "", last.text + sep + content, last.start,
                                   _number(item.get("end_time"), f"item {i} end_time") or last.end,
                                   min(known) if known else None)
        else:
            segments.append(Segment(speaker, "", content, _number(item.get("start_time"), f"item {i} start_time"),
                                    _number(item.get("end_time"), f"item {i} end_time"), confidence))
    if not segments:
        transcript = (results.get("transcripts") or [{}])[0].get("transcript")
        if isinstance(transcript, str) and transcript.strip():
            segments.append(Segment("unknown", "", transcript.strip()))
    return segments


def _google(results: list[Any]) -> list[Segment]:
    segments = []
    for i, result in enumerate(results):
        best = ((result or {}).get("alternatives") or [{}])[0]
        if not isinstance(best.get("transcript"), str):
            raise InputError(f"result {i} has no transcript")
        tags = Counter(str(w.get("speakerTag") or w.get("speakerLabel")) for w in best.get("words") or []
                       if w.get("speakerTag") or w.get("speakerLabel"))
        words = best.get("words") or []
        start = _number(words[0].get("startTime") or words[0].get("startOffset"), "startTime") if words else None
        end = _number(words[-1].get("endTime") or words[-1].get("endOffset"), "endTime") if words else None
        speaker = tags.most_common(1)[0][0] if tags else str(result.get("channelTag") or "unknown")
        segments.append(Segment(speaker, "", best["transcript"].strip(), start, end,
                                _number(best.get("confidence"), "confidence")))
    return segments


def parse_stt_json(data: Any) -> Transcript:
    """Recognise the service by its shape; the file's own call fields (caller, call_id, ...) become meta."""
    if not isinstance(data, dict):
        raise InputError("transcript JSON must be an object")
    meta = {k: data[k] for k in ("caller", "call_id", "started_at", "line", "language", "speakers") if k in data}
    results = data.get("results")
    if isinstance(data.get("segments"), list):
        fmt, segments = "segments", [_segment(s, i) for i, s in enumerate(data["segments"])]
        if "language" in data and len(str(data["language"])) > 3:  # Whisper says "english"
            meta.pop("language")
    elif isinstance(data.get("utterances"), list) and "text" in data:  # AssemblyAI: milliseconds
        fmt, segments = "assemblyai", [_segment(u, i, scale=0.001) for i, u in enumerate(data["utterances"])]
        meta.setdefault("call_id", data.get("id"))
        meta.setdefault("language", data.get("language_code"))
    elif isinstance(results, dict) and isinstance(results.get("utterances"), list):  # Deepgram
        fmt = "deepgram"
        segments = [_segment(u, i, text_keys=("transcript",)) for i, u in enumerate(results["utterances"])]
        meta.setdefault("call_id", (data.get("metadata") or {}).get("request_id"))
    elif isinstance(results, dict) and ("items" in results or "transcripts" in results):  # AWS Transcribe
        fmt, segments = "aws_transcribe", _aws(results)
        meta.setdefault("call_id", data.get("jobName"))
    elif isinstance(results, list):  # Google Speech-to-Text
        fmt, segments = "google_stt", _google(results)
    else:
        raise InputError("unknown transcript JSON: expected segments, utterances or results")
    return Transcript(fmt, segments, {k: v for k, v in meta.items() if v is not None})


def parse_jsonl(text: str) -> Transcript:
    """One segment per line (e.g. Harper Valley's `speaker_role`, `start_ms`, `duration_ms`, `transcript`)."""
    segments, call_ids = [], set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number} is not JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise InputError(f"line {number} is not an object")
        text_value = row.get("human_transcript") or row.get("transcript") or row.get("text")
        if not isinstance(text_value, str):
            raise InputError(f"line {number} has no transcript text")
        start_ms = _number(row.get("start_ms"), f"line {number} start_ms")
        duration_ms = _number(row.get("duration_ms"), f"line {number} duration_ms")
        start = start_ms / 1000 if start_ms is not None else _number(row.get("start"), f"line {number} start")
        end = (start_ms + duration_ms) / 1000 if start_ms is not None and duration_ms is not None \
            else _number(row.get("end"), f"line {number} end")
        role = str(row.get("speaker_role") or row.get("role") or "")
        speaker = str(row.get("speaker") or role or "unknown")
        segments.append(Segment(speaker, _explicit_role(role), text_value.strip(), start, end,
                                _number(row.get("confidence"), f"line {number} confidence")))
        call_ids.add(row.get("sid") or row.get("call_id"))
    meta = {"call_id": next(iter(call_ids))} if len(call_ids) == 1 and None not in call_ids else {}
    return Transcript("jsonl", segments, meta)


def _explicit_role(label: str) -> str:
    label = label.strip().lower()
    if label in _AGENT_NAMES:
        return "agent"
    return "customer" if label in _CUSTOMER_NAMES else ""


def assign_roles(transcript: Transcript, speakers: dict[str, str] | None = None) -> Transcript:
    """Give every segment a role, from the first source that knows: an explicit role, the
    `speakers` map (sidecar / request), speaker names, what a speaker says, who spoke first."""
    speakers = {k: str(v).lower() for k, v in (speakers or {}).items()}
    named = {s.speaker: _explicit_role(s.speaker) for s in transcript.segments}
    by_phrase = {s.speaker for s in transcript.segments if _AGENT_PHRASES.search(s.text)}
    order = list(dict.fromkeys(s.speaker for s in transcript.segments if s.speaker != "unknown"))
    sources = set()
    segments = []
    for seg in transcript.segments:
        if seg.role:
            role, source = seg.role, "explicit"
        elif seg.speaker in speakers:
            role, source = speakers[seg.speaker], "speakers_map"
        elif named[seg.speaker]:
            role, source = named[seg.speaker], "speaker_name"
        elif by_phrase and len(order) > 1:
            role, source = ("agent" if seg.speaker in by_phrase else "customer"), "agent_phrases"
        elif len(order) > 1 and not any(named.values()):
            role, source = ("agent" if seg.speaker == order[0] else "customer"), "first_speaker_is_agent"
        else:
            role, source = "customer", "default_customer"
        if role not in ("agent", "customer"):
            raise InputError(f"speaker {seg.speaker!r} has role {role!r}; expected agent or customer")
        sources.add(source)
        segments.append(Segment(seg.speaker, role, seg.text, seg.start, seg.end, seg.confidence))
    return Transcript(transcript.format, segments, transcript.meta, "+".join(sorted(sources)) or "none")


def parse_transcript(text: str, fmt: str) -> Transcript:
    """`fmt` is vtt, srt, sbv, json or jsonl (a file suffix without the dot)."""
    if fmt == "vtt":
        transcript = parse_vtt(text)
    elif fmt == "srt":
        transcript = parse_srt(text)
    elif fmt == "sbv":
        transcript = parse_sbv(text)
    elif fmt == "jsonl":
        transcript = parse_jsonl(text)
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"transcript JSON does not parse: {exc}") from exc
        transcript = parse_stt_json(data)
    else:
        raise InputError(f"unknown transcript format {fmt!r}: expected vtt, srt, sbv, json or jsonl")
    if not any(s.text for s in transcript.segments):
        raise InputError("transcript has no cues with text")
    return transcript


def looks_like_transcript(data: Any) -> bool:
    """A JSON object from a speech-to-text service rather than a list of chat/web messages."""
    if not isinstance(data, dict):
        return False
    results = data.get("results")
    return (isinstance(data.get("segments"), list) or isinstance(data.get("utterances"), list)
            or (isinstance(results, dict) and bool({"items", "transcripts", "utterances"} & results.keys()))
            or (isinstance(results, list) and all(isinstance(r, dict) and "alternatives" in r for r in results)))
