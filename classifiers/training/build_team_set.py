"""Build team.jsonl from the team-written phrase files in phrases/<lang>.yaml.

Every line a person wrote becomes one chat-style example as written, plus variants wrapped the way
the other channels carry text: an email with greeting and sign-off, a phone transcript (lower case,
no punctuation, fillers, as an ASR system writes it), a social post with a handle. Greek chat and
social variants are also written without accents, as many Greeks type on phones. The variants are
picked deterministically, so the output (and its hash) only changes when a phrase file does.

Labels: the phrase file's section gives type and complaint category; urgency is critical for the
`critical` section and for account_security complaints (fraud and theft cannot wait), high for the
`high` section, normal for other complaints and inquiries, low for praise, suggestions and spam.

    python -m classifiers.training.build_team_set   # writes classifiers/training/team.jsonl
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PHRASES = HERE / "phrases"
OUTPUT = HERE / "team.jsonl"
STYLES = ("email", "phone", "social")
VARIANTS = {"complaint": 2, "praise": 4, "inquiry": 3, "suggestion": 3, "spam": 2}
_PUNCT = re.compile(r"[^\w\s@#'’]")


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    lang: str
    type: str
    category: str | None
    urgency: str
    style: str

    def as_json(self) -> str:
        return json.dumps({"text": self.text, "lang": self.lang, "type": self.type, "category": self.category,
                           "urgency": self.urgency, "style": self.style}, ensure_ascii=False)


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def _labelled(doc: dict) -> Iterator[tuple[str, str, str | None, str]]:
    for category, lines in doc["complaint"].items():
        urgency = "critical" if category == "account_security" else "normal"
        for text in lines:
            yield text, "complaint", category, urgency
    for level in ("critical", "high"):
        for category, lines in doc.get(level, {}).items():
            for text in lines:
                yield text, "complaint", category, level
    for kind, urgency in (("praise", "low"), ("inquiry", "normal"), ("suggestion", "low"), ("spam", "low")):
        for text in doc[kind]:
            yield text, kind, None, urgency


def _wrap(text: str, style: str, wrappers: dict, n: int) -> str:
    opening = wrappers[style]["open"][n % len(wrappers[style]["open"])]
    closing = wrappers[style]["close"][(n // 2) % len(wrappers[style]["close"])]
    if style == "email":
        return f"{opening}\n\n{text}\n\n{closing}"
    if style == "phone":
        spoken = " ".join(_PUNCT.sub(" ", text.lower()).split())
        return " ".join(part for part in (opening, spoken, closing) if part)
    return " ".join(part for part in (opening, text, closing) if part)


def build(lang_file: Path) -> list[Line]:
    doc = yaml.safe_load(lang_file.read_text(encoding="utf-8"))
    lang, wrappers = doc["lang"], doc["wrappers"]
    out: list[Line] = []
    for n, (text, kind, category, urgency) in enumerate(_labelled(doc)):
        chat = strip_accents(text.lower()) if lang == "el" and n % 2 else text
        out.append(Line(chat, lang, kind, category, urgency, "chat"))
        for k in range(VARIANTS[kind]):
            style = STYLES[(n + k) % len(STYLES)]
            wrapped = _wrap(text, style, wrappers, n + k)
            if lang == "el" and style == "social" and (n + k) % 2:
                wrapped = strip_accents(wrapped.lower())
            out.append(Line(wrapped, lang, kind, category, urgency, style))
    return out


def main() -> None:
    lines = [line for path in sorted(PHRASES.glob("*.yaml")) for line in build(path)]
    OUTPUT.write_text("".join(line.as_json() + "\n" for line in lines), encoding="utf-8")
    print(f"{len(lines)} lines -> {OUTPUT}")


if __name__ == "__main__":
    main()
