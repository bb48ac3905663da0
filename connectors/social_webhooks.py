"""What the signed social webhooks (Meta, X) share: a constant-time signature check on the raw body,
reading the body as a JSON object, and handing a POST's envelopes over once.

Providers redeliver on any non-2xx and sometimes after a 2xx that came too late, so the routes keep
the delivery keys the sink already accepted and answer a redelivery 200 without a second hand-over
(the store's delivery keys still make a duplicate harmless after a restart wipes this memory).
"""

from __future__ import annotations

import hmac
import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from connectors.base import InputError, Sink
from connectors.http_intake import hand_over
from connectors.metrics import ConnectorMetrics
from pipeline.envelope import Attachment, Envelope

_CONTENT_TYPES = {"image": "image/*", "photo": "image/*", "video": "video/*", "animated_gif": "video/mp4",
                  "audio": "audio/*", "file": "application/octet-stream"}


def signature_matches(header: str | None, expected: str) -> bool:
    """Compare in constant time; a missing header never matches."""
    return header is not None and hmac.compare_digest(header.strip().encode(), expected.encode())


def refuse(metrics: ConnectorMetrics, status: int, reason: str) -> HTTPException:
    metrics.rejected += 1
    metrics.error(reason)
    return HTTPException(status_code=status, detail=reason)


def json_object(body: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise InputError("body is not a JSON object")
    return loaded


def objects(container: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """`container[key]` as a list of objects (absent means empty); anything else is malformed."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InputError(f"{where}.{key} is not a list of objects")
    return value


def ident(value: object, where: str) -> str:
    """An id as the providers send them: a non-empty string (or a number, stringified)."""
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise InputError(f"{where} is missing or not an id")
    return str(value)


def moment(value: object) -> datetime:
    """Epoch seconds or milliseconds (Meta uses both; X sends milliseconds as strings); now if absent."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)


def attachment(kind: str, url: str | None) -> Attachment:
    """Providers give a type and a URL, never a size: the size stays 0 until something fetches it."""
    name = (urlsplit(url).path.rsplit("/", 1)[-1] or None) if url else None
    return Attachment(filename=name, content_type=_CONTENT_TYPES.get(kind, "application/octet-stream"), size=0)


def text_or_placeholder(text: str | None, attachments: Sequence[tuple[str, str | None]]) -> str:
    """An attachment-only message still needs text: empty texts from one customer would look like
    duplicates of each other to the content dedup."""
    if text:
        return text
    return " ".join(f"[{kind}{' ' + url if url else ''}]" for kind, url in attachments)


class AcceptedKeys:
    """The most recent `capacity` delivery keys the sink accepted (0 keeps none)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def fresh(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Those not accepted before, each key once (a provider may repeat an event inside one POST)."""
        out: dict[str, Envelope] = {}
        for envelope in envelopes:
            if envelope.delivery_key not in self._keys:
                out.setdefault(envelope.delivery_key, envelope)
        return list(out.values())

    def remember(self, envelopes: Sequence[Envelope]) -> None:
        if not self.capacity:
            return
        for envelope in envelopes:
            self._keys[envelope.delivery_key] = None
            self._keys.move_to_end(envelope.delivery_key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)


async def hand_over_once(sink: Sink, envelopes: Sequence[Envelope], metrics: ConnectorMetrics,
                         accepted: AcceptedKeys) -> int:
    """All of a POST's new envelopes in one `sink.accept` (so 2xx means all of them are held);
    raises the HTTP answer (422/503) when they were not accepted. Returns how many were new."""
    fresh = accepted.fresh(envelopes)
    if fresh:
        await hand_over(sink, fresh, metrics)
        accepted.remember(fresh)
    return len(fresh)


Parse = Callable[[dict[str, Any]], tuple[Sequence[Envelope], Counter[str]]]


async def receive_signed(request: Request, *, sink: Sink, metrics: ConnectorMetrics, accepted: AcceptedKeys,
                         skipped: Counter[str], max_body_bytes: int, signature_header: str,
                         sign: Callable[[bytes], str], parse: Parse) -> JSONResponse:
    """One signed webhook POST: size limit, signature over the raw body, parse, hand over once.
    Nothing is read from a body whose signature does not match."""
    body = await request.body()
    if len(body) > max_body_bytes:
        raise refuse(metrics, 413, f"body over {max_body_bytes} bytes")
    if not signature_matches(request.headers.get(signature_header), sign(body)):
        raise refuse(metrics, 401, f"missing or wrong {signature_header}")
    try:
        envelopes, skipped_now = parse(json_object(body))
    except InputError as exc:
        raise refuse(metrics, 400, str(exc)) from exc
    new = await hand_over_once(sink, envelopes, metrics, accepted)
    skipped.update(skipped_now)
    return JSONResponse({"accepted": new, "already_accepted": len(envelopes) - new, "skipped": dict(skipped_now)})
