"""Raw RFC 5322 bytes to an Envelope: every charset real mail uses, broken MIME tolerated.

Declared charsets are widened to their supersets (GB2312 mail is often GBK), undeclared 8-bit
text is guessed with charset-normalizer, and the raw bytes stay where `raw_ref` points.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import re
from datetime import UTC, datetime
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import ClassVar

from charset_normalizer import from_bytes

from connectors.base import InputError
from pipeline.envelope import Attachment, Envelope, Sender

_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "big5": "big5hkscs", "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "iso-2022-jp": "iso2022_jp_ext",
    "shift_jis": "cp932", "sjis": "cp932", "iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "utf-8",
    "ascii": "utf-8", "unknown-8bit": "", "x-unknown": "", "utf8": "utf-8", "cp-850": "cp850",
}
_MSGID = re.compile(r"<[^<>\s]+>")


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, bool]:
    """Text and whether it had to be decoded lossily (so the caller can flag it)."""
    name = (declared or "").strip().strip('"').lower()
    name = _SUPERSETS.get(name, name)
    if name:
        try:
            return data.decode(name), False
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is not None:
        return str(best), False
    return data.decode(name or "utf-8", errors="replace") if _known(name) else data.decode(
        "utf-8", errors="replace"), True


def _known(codec: str) -> bool:
    try:
        "".encode(codec)
        return True
    except LookupError:
        return False


def decode_header_value(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | Header):
        value = str(value)
    parts = []
    try:
        chunks = decode_header(value)
    except Exception:
        return value
    for chunk, charset in chunks:
        parts.append(decode_bytes(chunk, charset)[0] if isinstance(chunk, bytes) else chunk)
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _body_charset(msg: Message) -> str | None:
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_charset():
            return part.get_content_charset()
    return None


def _raw_header(msg: Message, name: str) -> str:
    """Header text; undeclared 8-bit bytes are decoded as the body's charset, else guessed."""
    value = msg.get(name)
    if value is None:
        return ""
    if isinstance(value, Header):  # undeclared 8-bit header: the parser wrapped it as unknown-8bit
        charset = _body_charset(msg)
        return "".join(decode_bytes(chunk, charset if cs == "unknown-8bit" else cs)[0]
                       if isinstance(chunk, bytes) else chunk for chunk, cs in decode_header(value)).strip()
    value = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode_bytes(value.encode("ascii", "surrogateescape"), None)[0]
    return decode_header_value(value)


class _TextExtractor(HTMLParser):
    _BLOCK: ClassVar[set[str]] = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:
        return html.unescape(re.sub(r"<[^>]+>", " ", markup))
    text = "".join(parser.out)
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


_QUOTE_HEADER = re.compile(
    r"^(on .{4,200} wrote:|-----\s*original message\s*-----|from:\s.+|"
    r".{0,80}(написал|пишет|έγραψε|viết|写道)\s*:?)\s*$",
    re.I,
)


def new_text(text: str) -> str:
    """The customer's new words: quoted lines and the quoted mail after a reply header dropped."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if _QUOTE_HEADER.match(stripped):
            break
        if stripped.startswith(">"):
            continue
        if stripped in ("--", "-- "):
            break
        kept.append(line)
    result = "\n".join(kept).strip()
    return result or text.strip()


def _body_and_attachments(msg: Message) -> tuple[str, list[Attachment], bool]:
    plain: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    lossy = False
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").lower()
        filename = part.get_filename()
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            payload = str(part.get_payload()).encode("utf-8", "surrogateescape")
        if payload is None:
            payload = b""
        if filename or "attachment" in disposition or not ctype.startswith("text/"):
            if ctype.startswith("multipart/") or (ctype == "message/rfc822" and not payload):
                continue
            attachments.append(Attachment(
                filename=decode_header_value(filename) if filename else None, content_type=ctype,
                size=len(payload), sha256=hashlib.sha256(payload).hexdigest()))
            continue
        text, was_lossy = decode_bytes(payload, part.get_content_charset())
        lossy |= was_lossy
        (htmls if ctype == "text/html" else plain).append(text)
    body = "\n\n".join(p.strip() for p in plain if p.strip())
    if not body and htmls:
        body = "\n\n".join(html_to_text(h) for h in htmls)
    return body.replace("\r\n", "\n"), attachments, lossy


def _received_at(msg: Message) -> datetime:
    try:
        parsed = parsedate_to_datetime(_raw_header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sender(msg: Message, message_id: str) -> Sender:
    """From, else Sender / Reply-To / Return-Path; a mail with none is kept under its own id."""
    for header in ("From", "Sender", "Reply-To", "Return-Path"):
        for name, address in getaddresses([_raw_header(msg, header)]):
            if address.strip():
                return Sender(kind="email", id=address.strip().lower(), name=name or None)
    return Sender(kind="unknown", id=f"email:{message_id}")


def parse_email(raw: bytes, account: str, raw_ref: str | None = None) -> Envelope:
    if not raw.strip():
        raise InputError("empty email")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    body, attachments, lossy = _body_and_attachments(msg)
    message_id = _raw_header(msg, "Message-ID").strip()
    if not message_id:
        message_id = "<sha256:" + hashlib.sha256(raw).hexdigest() + ">"
    sender = _sender(msg, message_id)
    refs = tuple(_MSGID.findall(_raw_header(msg, "References")))
    in_reply_to = next(iter(_MSGID.findall(_raw_header(msg, "In-Reply-To"))), None)
    metadata = {"mojibake": "true"} if lossy or "\ufffd" in body else {}
    for header in ("Auto-Submitted", "X-Autoreply", "Precedence", "Content-Type"):
        if msg.get(header):
            metadata[header.lower()] = _raw_header(msg, header)[:200]
    return Envelope(
        channel="email",
        account=account,
        message_id=message_id,
        conversation_id=(refs[0] if refs else in_reply_to) or message_id,
        in_reply_to=in_reply_to,
        references=refs,
        sender=sender,
        received_at=_received_at(msg),
        subject=_raw_header(msg, "Subject") or None,
        text=body,
        customer_text=new_text(body),
        attachments=tuple(attachments),
        raw_ref=raw_ref,
        metadata=metadata,
    )
