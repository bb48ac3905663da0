"""The dedup test set: pairs of messages, each labelled duplicate or not, with the kind of change.

Two parts: pairs generated at run time from real customer text in `../shared/data/labeled` (which
must not be committed, so the generator is: deterministic, seeded), and pairs the team wrote by hand
(`data/hand_pairs.jsonl`: translations, quoted replies, templates, other channels, in several
languages). Positives: re-sent, re-cased, re-punctuated, trimmed, forwarded with quotes, sent again
through another channel. Hard negatives: the same template with another order number, the same
words from another customer, a different message from the same customer, a re-send after the window.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

HAND_PAIRS = Path(__file__).parent / "data" / "hand_pairs.jsonl"
SOURCES = ("banking77", "vi-spam-reviews", "vi-uit-visfd", "zh-waimai", "zh-hotel", "zh-shopping", "ru-banks",
           "ru-telecom", "el-banking-tweets")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Pair:
    kind: str
    duplicate: bool
    a: str
    b: str
    a_channel: str = "chat"
    b_channel: str = "chat"
    same_customer: bool = True
    hours: float = 2.0

    @classmethod
    def from_json(cls, data: dict) -> Pair:
        return cls(**data)


def hand_pairs(path: Path = HAND_PAIRS) -> list[Pair]:
    return [Pair.from_json(orjson.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _texts(data_dir: Path, rng: random.Random, per_source: int) -> Iterator[tuple[str, str]]:
    for name in SOURCES:
        path = data_dir / "labeled" / f"{name}.jsonl"
        if not path.is_file():
            continue
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
        texts = sorted({r["text"].strip() for r in rows if 40 <= len(r["text"]) <= 600 and "http" not in r["text"]})
        for text in rng.sample(texts, min(per_source, len(texts))):
            yield name, text


def _trim(text: str, rng: random.Random) -> str:
    """Keep the first 75-90%: at a sentence end where there is one, else at a word or character."""
    keep = int(len(text) * rng.uniform(0.75, 0.9))
    cut = text[:keep]
    return cut.rsplit(" ", 1)[0] if " " in cut[len(cut) // 2:] else cut


def _recase(text: str, rng: random.Random) -> str:
    choice = rng.randrange(3)
    if choice == 0:
        return text.upper()
    if choice == 1:
        return text.lower()
    return " ".join(w.capitalize() for w in text.split())


def _repunctuate(text: str, rng: random.Random) -> str:
    # punctuation dropped or changed, never so that two words become one
    text = re.sub(r"[,.!?;:，。！？]+(?=\s)", lambda m: rng.choice(["", "!!", "...", "，"]), text)
    text = re.sub(r"[,.!?;:，。！？]+(?!\s)", lambda m: rng.choice([" ", "!! ", "... ", "，"]), text)
    return re.sub(r"\s+", lambda m: rng.choice([" ", "  ", "\n"]), text) + rng.choice(["", " ???", "!!!"])


def _forward(text: str, rng: random.Random) -> str:
    lead = rng.choice(["Any news on this?", "Still waiting for an answer.", "Ответьте, пожалуйста.",
                       "Xin hãy trả lời.", "请尽快回复", ""])
    quoted = "\n".join(f"> {line}" for line in text.splitlines())
    header = rng.choice(["On Mon, 16 Nov 2026 at 08:42, Me <me@example.com> wrote:",
                         "---------- Forwarded message ---------\nFrom: Me <me@example.com>\n"
                         "Date: Mon, 16 Nov 2026\nSubject: my order"])
    return f"{lead}\n\n{header}\n{quoted}"


def _with_number(text: str, number: int) -> str:
    if _DIGITS.search(text):
        return _DIGITS.sub(lambda m: str(number)[:max(4, len(m.group()))], text, count=1)
    return f"Order #{number}: {text}"


def generated_pairs(data_dir: Path, seed: int = 4, per_source: int = 150) -> list[Pair]:
    rng = random.Random(seed)
    drawn = list(_texts(data_dir, rng, per_source))
    by_source: dict[str, list[str]] = {}
    for source, text in drawn:
        by_source.setdefault(source, []).append(text)
    pairs = []
    for source, text in drawn:
        kind = rng.choice(["resent", "recased", "repunctuated", "trimmed", "forwarded", "other_channel",
                           "template_other_number", "other_customer", "other_text_same_customer",
                           "after_window"])
        if kind == "resent":
            pairs.append(Pair(kind, True, text, text, hours=rng.uniform(0.1, 20)))
        elif kind == "recased":
            pairs.append(Pair(kind, True, text, _recase(text, rng)))
        elif kind == "repunctuated":
            pairs.append(Pair(kind, True, text, _repunctuate(text, rng)))
        elif kind == "trimmed":
            pairs.append(Pair(kind, True, text, _trim(text, rng)))
        elif kind == "forwarded":
            pairs.append(Pair(kind, True, text, _forward(text, rng), "email", "email"))
        elif kind == "other_channel":
            a_channel = rng.choice(["phone", "email"])
            pairs.append(Pair(kind, True, text, rng.choice([text, _recase(text, rng)]), a_channel, "chat"))
        elif kind == "template_other_number":
            n1, n2 = rng.sample(range(100000, 999999), 2)
            pairs.append(Pair(kind, False, _with_number(text, n1), _with_number(text, n2)))
        elif kind == "other_customer":
            pairs.append(Pair(kind, False, text, text, same_customer=False))
        elif kind == "other_text_same_customer":
            other = rng.choice([t for t in by_source[source] if t != text] or [text[::-1]])
            pairs.append(Pair(kind, False, text, other))
        else:
            pairs.append(Pair(kind, False, text, text, hours=rng.uniform(25, 72)))
    return pairs
