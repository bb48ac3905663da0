"""Recognise mail no person wrote: bounces, out-of-office and other auto-replies, list/bulk mail and
our own mail looping back. The pipeline records such a message but never opens or reopens a ticket
for it (see `pipeline.stages.dedup`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_BOUNCE_SUBJECT = re.compile(
    r"^\W*(?:undeliverable|undelivered mail|delivery status notification|delivery (?:has )?fail|"
    r"mail delivery (?:failed|failure|system|subsystem)|returned mail|failure notice|delivery notification|"
    r"non[- ]?delivery|message not delivered|could not be delivered|"
    r"không (?:gửi|chuyển) được|thư không (?:gửi|chuyển) được|"
    r"退信|无法投递|投递失败|系統退信|未送達|"
    r"не доставлено|недоставленное сообщение|сообщение не доставлено|"
    r"αδυναμία παράδοσης|μη παραδοθέν|αποτυχία παράδοσης)",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"^\W*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|"
    r"away from (?:the )?office|on vacation|vacation reply|abwesenheitsnotiz|réponse automatique|"
    r"trả lời tự động|thư trả lời tự động|"
    r"自动回复|自動回覆|自動回复|自动答复|"
    r"автоответ|автоматический ответ|"
    r"αυτόματη απάντηση|εκτός γραφείου)",
    re.I,
)
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)(?:@|$)", re.I)


@dataclass(frozen=True, slots=True)
class AutoReply:
    kind: str  # bounce | auto_reply | auto_generated | receipt | loop | bulk
    reason: str


def detect_auto_reply(headers: Mapping[str, str], sender: str, subject: str, content_type: str,
                      report_type: str = "") -> AutoReply | None:
    """`headers`: lower-cased names to decoded values. The first rule that matches names the kind."""
    h = {k: v.strip() for k, v in headers.items()}
    for name in ("x-omnintake-loop", "x-loop"):
        if h.get(name):
            return AutoReply("loop", f"{name}: {h[name][:80]}")
    if content_type == "multipart/report":
        kind = {"delivery-status": "bounce", "disposition-notification": "receipt"}.get(report_type.lower(), "bounce")
        return AutoReply(kind, f"multipart/report; report-type={report_type or '?'}")
    if _DAEMON.match(sender):
        return AutoReply("bounce", f"sender {sender}")
    if h.get("return-path", "x").replace(" ", "") == "<>":
        return AutoReply("bounce" if _BOUNCE_SUBJECT.match(subject) else "auto_generated", "Return-Path <>")
    auto = h.get("auto-submitted", "").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return AutoReply("auto_reply" if auto == "auto-replied" else "auto_generated", f"Auto-Submitted: {auto}")
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if h.get(name):
            return AutoReply("auto_reply", f"{name}: {h[name][:80]}")
    suppress = h.get("x-auto-response-suppress", "").lower()
    if re.search(r"\b(?:oof|all)\b", suppress):
        return AutoReply("auto_reply", f"X-Auto-Response-Suppress: {suppress[:80]}")
    if _BOUNCE_SUBJECT.match(subject):
        return AutoReply("bounce", f"subject {subject[:80]!r}")
    if _AUTO_SUBJECT.match(subject):
        return AutoReply("auto_reply", f"subject {subject[:80]!r}")
    precedence = h.get("precedence", "").lower()
    if precedence in ("bulk", "junk", "auto_reply", "list"):
        return AutoReply("auto_reply" if precedence == "auto_reply" else "bulk", f"Precedence: {precedence}")
    return None
