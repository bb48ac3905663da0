"""Raw RFC 5322 bytes to an Envelope: every charset real mail uses, broken MIME tolerated.

What cannot be parsed is recorded in `metadata["defects"]`, never raised, as long as the mail has a
readable part; only input that is not mail at all raises `InputError`. Attachments are described
(name, type, size, sha256), never carried. `metadata["raw_sha256"]` identifies the raw bytes that
`raw_ref` points to.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from connectors.base import InputError
from connectors.email_auth import verified_sender
from connectors.email_autoreply import detect_auto_reply
from connectors.email_charsets import decode_bytes, mojibake_note, repair_mojibake
from connectors.email_html import html_to_text, meta_charset
from connectors.email_outlook import OLE_MAGIC, msg_to_rfc822
from connectors.email_quotes import new_text, split_reply
from pipeline.envelope import Attachment, Envelope, Sender

__all__ = ["MAX_ATTACHMENT_BYTES", "decode_header_value", "html_to_text", "new_text", "parse_email"]

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_TEXT_CHARS = 100_000  # keeps the envelope under the pipeline's message size limit
MAX_HEADER_CHARS = 2_000
_MSGID = re.compile(r"<[^<>\s]+>")
_TICKET_NUMBER = re.compile(r"\[\s*#?([A-Z][A-Z0-9]{1,9}-\d{6,})\s*\]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:", re.M)
_PREAMBLE = re.compile(rb"^(?:(?:HELO|EHLO|MAIL FROM:|RCPT TO:|DATA\b|From )[^\n]*\n)+")
_DECODING_CTE = {"base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue", "uue"}
_KNOWN_CTE = {"", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue", "uue"}


@dataclass(slots=True)
class _Parse:
    """What the walk over the MIME tree finds."""

    fallback_charset: str | None
    max_attachment_bytes: int
    texts: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    charsets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    over_limit: list[str] = field(default_factory=list)


def parse_email(raw: bytes, account: str, raw_ref: str | None = None, *,
                max_attachment_bytes: int = MAX_ATTACHMENT_BYTES,
                trusted_authserv_ids: Collection[str] = ()) -> Envelope:
    """`trusted_authserv_ids`: the receiving servers whose Authentication-Results may verify the
    From address (`metadata["verified_email"]`, see connectors.email_auth); none by default."""
    empty = not raw.strip()  # still a message the mailbox holds: recorded, flagged, never lost
    digest = hashlib.sha256(raw).hexdigest()  # of the bytes as received, which `raw_ref` points to
    source = raw
    if raw.startswith(OLE_MAGIC):
        try:
            raw = msg_to_rfc822(raw)
        except ValueError as exc:
            raise InputError(f"not an email: an OLE compound file that is no Outlook message ({exc})") from exc
    stripped = _PREAMBLE.sub(b"", raw.lstrip(b"\r\n"), count=1)  # BSMTP commands, an mbox "From " line
    if not _HEADER_LINE.search(stripped[:65536]) and (b"\x00" in raw[:4096] or b"\n" not in raw[:4096]):
        raise InputError("not an email: no header fields and no text")
    msg = email.message_from_bytes(stripped, policy=email.policy.compat32)
    headers = _headers(msg)
    ctx = _Parse(_body_charset(msg), max_attachment_bytes)
    ctx.defects.extend(_defect_names(msg))
    if empty:
        ctx.defects.append("EmptyMessage")
    _walk(msg, ctx, depth=0)
    text = "\n\n".join(t.strip() for t in ctx.texts if t.strip()).replace("\r\n", "\n").replace("\r", "\n")
    metadata: dict[str, str] = {"raw_sha256": digest, "raw_size": str(len(source))}
    note = mojibake_note(text)
    if note:
        repaired = repair_mojibake(text)
        text, note = (repaired, "repaired: whole text was utf-8 read as cp1252") if repaired else (text, note)
    notes = [n for n in (*ctx.notes, note) if n]
    if any(n.startswith(("repaired", "suspect")) for n in notes):
        metadata["mojibake"] = "; ".join(n for n in notes if n.startswith(("repaired", "suspect")))[:500]
    if len(text) > MAX_TEXT_CHARS:
        ctx.defects.append(f"text truncated from {len(text)} characters")
        text = text[:MAX_TEXT_CHARS]

    if ctx.fallback_charset is None:  # undeclared 8-bit headers: the charset detected on the longer body
        ctx.fallback_charset = next((c for c in ctx.charsets if c not in ("us-ascii", "utf-8")), None)
    decode = _HeaderDecoder(ctx)
    subject = decode(headers.get("subject", "")) or None
    ids = {k: decode(headers.get(k, ""), words=False) for k in ("message-id", "references", "in-reply-to")}
    message_id = next(iter(_MSGID.findall(ids["message-id"])), "") or ids["message-id"]
    if not message_id or len(message_id) > 998:
        message_id = "<sha256:" + digest + ">"
    sender = _sender(headers, decode, message_id)
    refs = tuple(r for r in _MSGID.findall(ids["references"]) if len(r) <= 998)[-50:]
    in_reply_to = next(iter(_MSGID.findall(ids["in-reply-to"])), None)
    new, _ = split_reply(text)

    if ctx.charsets:
        metadata["charset"] = ctx.charsets[0]
    if ctx.notes:
        metadata["charset_notes"] = "; ".join(dict.fromkeys(ctx.notes))[:500]
    if ctx.over_limit:
        metadata["attachments_over_limit"] = "; ".join(ctx.over_limit)[:1000]
    if subject and (number := _TICKET_NUMBER.search(subject)):
        metadata["ticket_number"] = number.group(1)
    ctype = msg.get_content_type()
    auto = detect_auto_reply({k: decode(v) for k, v in headers.items()}, sender.id, subject or "", ctype,
                             str(msg.get_param("report-type") or ""))
    if auto is not None:
        metadata["auto_reply"], metadata["auto_reply_reason"] = auto.kind, auto.reason[:300]
    verified = verified_sender(decode(headers.get("from", ""), words=False),
                               [str(v) for v in msg.get_all("authentication-results") or []], trusted_authserv_ids)
    if verified is not None:
        metadata["verified_email"], metadata["verified_email_by"] = verified.address, verified.evidence[:300]
    for name in ("auto-submitted", "precedence", "content-type"):
        if headers.get(name):
            metadata[name] = decode(headers[name])[:200]
    replacement = (text + (subject or "")).count("\ufffd") - raw.count(b"\xef\xbf\xbd")
    if replacement > 0:
        ctx.defects.append(f"{replacement} undecodable characters (U+FFFD)")
    if ctx.defects:
        metadata["defects"] = "; ".join(dict.fromkeys(ctx.defects))[:2000]
    return Envelope(
        channel="email", account=account, message_id=message_id,
        conversation_id=(refs[0] if refs else in_reply_to) or message_id,
        in_reply_to=in_reply_to, references=refs, sender=sender, received_at=_received_at(headers, decode),
        subject=subject, text=text, customer_text=new if new else text.strip(),
        attachments=tuple(ctx.attachments), raw_ref=raw_ref, metadata=metadata,
    )


def _headers(msg: Message) -> dict[str, str]:
    """First value of each header, unfolded, as the parser keeps it (8-bit bytes as surrogate escapes)."""
    out: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = str(name).strip().lower()
        if key not in out:
            out[key] = re.sub(r"\r?\n(?=[ \t])", "", str(value)).strip()
    return out


class _HeaderDecoder:
    """Header text: undeclared 8-bit bytes in the body's charset (else detected), then RFC 2047 words,
    adjacent words of one charset joined as bytes first (mailers split multi-byte characters across them)."""

    def __init__(self, ctx: _Parse) -> None:
        self.ctx = ctx

    def __call__(self, value: str, words: bool = True) -> str:
        if not value:
            return ""
        if len(value) > MAX_HEADER_CHARS:
            self.ctx.defects.append(f"header of {len(value)} characters cut to {MAX_HEADER_CHARS}")
            value = value[:MAX_HEADER_CHARS]
        if any("\udc80" <= ch <= "\udcff" for ch in value):
            data = value.encode("ascii", "surrogateescape")
            value = decode_bytes(data, "utf-8").text if _is_utf8(data) else decode_bytes(
                data, self.ctx.fallback_charset).text
        if words and "=?" in value:
            value = _decode_words(value)
        return re.sub(r"\s+", " ", value).strip()


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def decode_header_value(value: str) -> str:
    """RFC 2047 encoded words in a header value, decoded; broken ones decoded as far as they go."""
    return re.sub(r"\s+", " ", _decode_words(value)).strip()


def _decode_words(value: str) -> str:
    out: list[str] = []
    pending, charset, pos = bytearray(), "", 0

    def flush() -> None:
        nonlocal pending, charset
        if pending:
            out.append(decode_bytes(bytes(pending), charset).text)
        pending, charset = bytearray(), ""

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos:match.start()]
        if between and not (between.isspace() and charset):
            flush()
            out.append(between)
        word_charset, encoding, payload = match.groups()
        word_charset = word_charset.split("*", 1)[0].lower()  # RFC 2231 language: =?utf-8*en?Q?...?=
        if charset and word_charset != charset:
            flush()
        charset = word_charset
        pending += _b_decode(payload) if encoding in "bB" else _q_decode(payload)
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


def _b_decode(payload: str) -> bytes:
    data = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    data = data[: len(data) - len(data) % 4 if len(data) % 4 == 1 else len(data)]
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return payload.encode("ascii", "surrogateescape")


def _q_decode(payload: str) -> bytes:
    data = payload.replace("_", " ").encode("ascii", "surrogateescape")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes((int(m.group(1), 16),)), data)


def _body_charset(msg: Message) -> str | None:
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_charset():
            return part.get_content_charset()
    return None


def _defect_names(part: Message) -> list[str]:
    return [d.__class__.__name__ for d in getattr(part, "defects", [])]


def _walk(part: Message, ctx: _Parse, depth: int) -> None:
    ctype = part.get_content_type()
    if depth > 30:
        ctx.defects.append("MIME nesting deeper than 30 levels")
        return
    if part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        if ctype == "message/rfc822":
            ctx.texts.append("---------- Forwarded message ----------")
            for child in children:
                ctx.defects.extend(_defect_names(child))
                _walk(child, ctx, depth + 1)
            return
        if ctype == "multipart/alternative" and children:
            children = [_best_alternative(children)]
        for child in children:
            ctx.defects.extend(_defect_names(child))
            _walk(child, ctx, depth + 1)
        return
    if ctype.startswith("multipart/"):
        _recover_multipart(part, ctx, depth)
        return
    _leaf(part, ctx)


def _best_alternative(children: list[Message]) -> Message:
    """Plain text when it says something; else the richest of the rest (HTML, or a nested multipart)."""
    for child in children:
        if child.get_content_type() == "text/plain" and not child.get_filename():
            payload = child.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                return child
    for child in reversed(children):
        if child.get_content_type() == "text/html" or child.is_multipart():
            return child
    return children[0]


def _recover_multipart(part: Message, ctx: _Parse, depth: int) -> None:
    """A multipart without (or with a wrong) boundary: find the boundary in the body, else keep it as text."""
    body = _raw_body(part).decode("ascii", "surrogateescape")
    found = re.search(r"^--([^\s-][^\s]{0,69}?)(?:--)?\s*$", body, re.M)
    if found and depth < 30:
        ctx.defects.append(f"multipart boundary recovered from the body ({found.group(1)[:40]})")
        head = f'Content-Type: {part.get_content_type()}; boundary="{found.group(1)}"\n\n'
        rebuilt = email.message_from_bytes((head + body).encode("ascii", "surrogateescape"),
                                           policy=email.policy.compat32)
        if rebuilt.is_multipart():
            _walk(rebuilt, ctx, depth + 1)
            return
    ctx.defects.append("multipart without parts; body kept as text")
    ctx.texts.append(_decode_text(body.encode("ascii", "surrogateescape"), None, ctx, html=False))


def _leaf(part: Message, ctx: _Parse) -> None:
    ctype = part.get_content_type()
    disposition = str(part.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()
    filename = _filename(part)
    is_text = ctype in ("text/plain", "text/html", "text/enriched", "text/markdown") or (
        part.get_content_maintype() == "text" and not part.get_params())
    if filename or disposition == "attachment" or not is_text:
        _attachment(part, ctx, ctype, filename)
        return
    data = _payload(part, ctx)
    charset = part.get_content_charset() or (meta_charset(data) if ctype == "text/html" else None)
    ctx.texts.append(_decode_text(data, charset, ctx, html=ctype == "text/html"))


def _decode_text(data: bytes, charset: str | None, ctx: _Parse, html: bool) -> str:
    decoded = decode_bytes(data, charset)
    ctx.charsets.append(decoded.charset)
    if decoded.note:
        ctx.notes.append(decoded.note)
    return html_to_text(decoded.text) if html else decoded.text


def _filename(part: Message) -> str | None:
    """Content-Disposition filename (RFC 2231 too) or Content-Type name, decoded; None when absent."""
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:
        return None
    if isinstance(name, tuple):  # RFC 2231 value the parser left undecoded
        charset, _, value = name
        name = decode_bytes(str(value).encode("latin-1", "surrogateescape"), charset).text
    if not name:
        return None
    name = str(name)
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        name = decode_bytes(name.encode("ascii", "surrogateescape"), None).text
    return decode_header_value(name)[:255] or None


def _payload(part: Message, ctx: _Parse) -> bytes:
    cte = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte not in _KNOWN_CTE:
        ctx.defects.append(f"unknown Content-Transfer-Encoding {cte[:40]!r}; body taken as is")
    raw = part.get_payload()
    if cte == "base64" and isinstance(raw, str) and _not_base64(raw):
        ctx.defects.append("declared base64 but is not; body taken as is")
        return _raw_body(part)
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        ctx.defects.append(f"payload not decodable: {exc.__class__.__name__}")
        data = None
    ctx.defects.extend(_defect_names(part))
    return data if isinstance(data, bytes) else _raw_body(part)


def _raw_body(part: Message) -> bytes:
    """The body bytes as received (`get_payload()` would have decoded 8-bit bytes lossily as the charset)."""
    if str(part.get("Content-Transfer-Encoding") or "").strip().lower() not in _DECODING_CTE:
        data = part.get_payload(decode=True)  # undecoded, these are the bytes as received
        if isinstance(data, bytes):
            return data
    try:
        data = part.as_bytes()
    except (UnicodeError, LookupError):
        return str(part.get_payload()).encode("utf-8", "surrogateescape")
    return data[1:] if data.startswith(b"\n") else data.partition(b"\n\n")[2]


def _not_base64(raw: str) -> bool:
    sample = raw[:4000]
    invalid = len(re.findall(r"[^A-Za-z0-9+/=\s]", sample))
    spaces = len(re.findall(r"[^\S\r\n]", sample.strip()))
    return bool(sample.strip()) and (invalid + spaces) / len(sample) > 0.05


def _attachment(part: Message, ctx: _Parse, ctype: str, filename: str | None) -> None:
    raw = part.get_payload()
    encoded = len(raw) if isinstance(raw, str) else 0
    cte = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    estimate = encoded * 3 // 4 if cte == "base64" else encoded
    if estimate > ctx.max_attachment_bytes:  # not decoded: it is never held, only described
        ctx.over_limit.append(f"{filename or ctype} (~{estimate} bytes)")
        ctx.attachments.append(Attachment(filename=filename, content_type=ctype, size=estimate, sha256=None))
        return
    data = _payload(part, ctx)
    ctx.attachments.append(Attachment(filename=filename, content_type=ctype, size=len(data),
                                      sha256=hashlib.sha256(data).hexdigest()))


def _received_at(headers: dict[str, str], decode: _HeaderDecoder) -> datetime:
    try:
        parsed = parsedate_to_datetime(decode(headers.get("date", ""), words=False))
    except (TypeError, ValueError, IndexError, OverflowError):
        return datetime.now(UTC)
    if parsed is None:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sender(headers: dict[str, str], decode: _HeaderDecoder, message_id: str) -> Sender:
    """From, else Sender / Reply-To / Return-Path; a mail with none is kept under its own id."""
    for header in ("from", "sender", "reply-to", "return-path"):
        value = decode(headers.get(header, ""), words=False)
        for name, address in getaddresses([value]):
            address = address.strip().lower()
            if address and len(address) <= 320:
                return Sender(kind="email", id=address, name=decode_header_value(name) or None)
    return Sender(kind="unknown", id=f"email:{message_id}"[:320])

