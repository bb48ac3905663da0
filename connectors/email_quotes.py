"""Split a reply into the customer's new words and what follows them: the quoted earlier mail (reply
headers in en, vi, zh, ru, el and a few more; Outlook "From:/Sent:" blocks; "-----Original Message-----";
"> " lines) and the signature ("-- ", "Sent from my iPhone" and its translations)."""

from __future__ import annotations

import re

_REPLY_HEADER = re.compile(
    r"^(?:"
    r"on\b.{0,300}\bwrote\s*:"  # en: On Mon, 16 Nov 2026 at 08:42, Shop <s@shop> wrote:
    r"|vào\b.{0,300}\bđã viết\s*:"  # vi: Vào 08:42 Th 2, 16 thg 11, 2026 Shop <s@shop> đã viết:
    r"|.{0,300}(?:写道|寫道)\s*[:：]"  # zh: 在 2026年11月16日 08:42，Shop <s@shop> 写道：
    r"|.{0,300}\b(?:написал|написала|написал\(а\)|пишет)\s*:"  # ru: 16.11.2026 8:42, Shop пишет:
    r"|.{0,300}έγραψε\s*:"  # el: Στις Δευ 16 Νοε 2026 στις 08:42, ο/η Shop <s@shop> έγραψε:
    r"|am\b.{0,300}\bschrieb.{0,80}:|le\b.{0,300}\ba écrit\s*:|el\b.{0,300}\bescribió\s*:"
    r")\s*$",
    re.I,
)
_SEPARATOR = re.compile(r"^(?:-{3,}\s*[^-].{0,60}?\s*-{3,}|_{10,}|={10,})$")  # -----Original Message-----
_FROM = re.compile(r"^\*?(?:from|von|de|от|από|từ|发件人|寄件者|差出人)\s*\*?\s*[:：]", re.I)
_SENT = re.compile(r"^\*?(?:sent|date|gesendet|envoyé|отправлено|дата|στάλθηκε|ημερομηνία|đã gửi|ngày gửi|"
                   r"gửi|发送时间|日期|寄件日期|送信日時|to|subject|тема|кому|θέμα|προς)\s*\*?\s*[:：]", re.I)
_MOBILE = re.compile(
    r"^(?:sent from my\b|sent from (?:outlook|yahoo mail|mail) for\b|get outlook for\b|sent from (?:the )?mail app"
    r"|gửi từ (?:iphone|điện thoại|ipad|samsung|thiết bị)|được gửi từ"
    r"|отправлено (?:с|из) (?:iphone|ipad|моего|мобильного|почты)"
    r"|发自我的|從我的\s*iphone|来自我的|發自我的"
    r"|στάλθηκε από (?:το|τη|το κινητό)|εστάλη από)",
    re.I,
)


def _is_reply_header(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    if _REPLY_HEADER.match(line) or _SEPARATOR.match(line):
        return True
    if i + 1 < len(lines) and len(line) < 300:  # a wrapped "On ... <x@y>\nwrote:"
        joined = f"{line} {lines[i + 1].strip()}"
        if _REPLY_HEADER.match(joined) and not _REPLY_HEADER.match(lines[i + 1].strip()):
            return True
    if _FROM.match(line):  # Outlook: From: / Sent: / To: / Subject: block
        following = [x.strip() for x in lines[i + 1:i + 6] if x.strip()]
        return sum(1 for x in following[:4] if _SENT.match(x)) >= 2
    return False


def split_reply(text: str) -> tuple[str, str]:
    """(new text, the rest). Interleaved "> " quotes are dropped from the new text, not what comes after them."""
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if line.rstrip("\r") in ("-- ", "--") or _MOBILE.match(stripped) or _is_reply_header(lines, i):
            return "\n".join(kept).strip(), "\n".join(lines[i:]).strip()
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip(), ""


def new_text(text: str) -> str:
    """The customer's new words; the whole text when nothing precedes the quote (a bare forward)."""
    new, _ = split_reply(text)
    return new or text.strip()
