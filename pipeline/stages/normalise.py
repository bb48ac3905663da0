"""Normalise text: NFKC, no control characters, tidy whitespace; hash the content for dedup."""

from __future__ import annotations

import re
import unicodedata

from pipeline.envelope import content_hash
from pipeline.stages import WorkItem

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _SPACES.sub(" ", _CONTROL.sub("", text))
    return _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


class NormaliseStage:
    name = "normalise"

    def __call__(self, item: WorkItem) -> None:
        item.text = normalise_text(item.envelope.text)
        item.classify_text = normalise_text(item.envelope.classify_text) or item.text
        subject = item.envelope.subject or ""
        if not item.classify_text and subject:
            item.classify_text = normalise_text(subject)
        item.content_hash = content_hash(item.classify_text)
