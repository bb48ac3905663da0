"""Text sketches for near-duplicate detection, in any script.

Text is normalised (case, width, punctuation, whitespace, quote markers and forward/reply headers)
and cut into tokens: words where the script spaces its words, single characters where it does not
(Chinese, Japanese, Thai, ...). Shingles are token bigrams, so `订单没有到` and `my order has not arrived`
both give several shingles. A sketch keeps the shingle count, the hashes of identifiers (order
numbers and the like) and the bottom-k shingle hashes: exact for texts up to k shingles, a uniform
sample beyond. Containment (how much of the shorter text the longer one holds) catches trimmed and
forwarded copies that Jaccard alone misses.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

BOTTOM_K = 256
NUM_PERM = 64
BANDS, ROWS = 16, 4  # LSH over NUM_PERM minhashes: candidates from Jaccard ~0.5 up
MIN_SHINGLES = 3  # below this, only the exact-content layer decides
_PRIME = (1 << 31) - 1
_rng = np.random.default_rng(20261120)
_A = _rng.integers(1, _PRIME, NUM_PERM, dtype=np.uint64)
_B = _rng.integers(0, _PRIME, NUM_PERM, dtype=np.uint64)

# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, CJK, Hangul): each
# character is a token; elsewhere a token is a run of letters and digits.
_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
             "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f")
_EMOJI = "\u2600-\u27bf\U0001f000-\U0001faff"  # a message of emoji is still a message
_TOKEN = re.compile(f"[{_UNSPACED}{_EMOJI}]|[^\\W_{_UNSPACED}]+")
_QUOTE_HEADER = re.compile(
    r"^(on .{0,200} wrote:?|.{0,80}(написал|escribió|a écrit|schrieb|έγραψε|đã viết|写道|のメッセージ).{0,5}:?|"
    r"-{2,}\s*(original message|forwarded message|пересылаемое сообщение|weitergeleitete nachricht)\s*-*|"
    r"(from|sent|to|cc|subject|date|de|para|asunto|von|an|betreff|от|кому|тема|发件人|收件人|主题)\s*[:：].*)$",
    re.IGNORECASE)
_QUOTE_MARK = re.compile(r"^(\s*>)+\s?")
_IDENT = re.compile(r"[0-9a-z]*\d[0-9a-z\-/]*")  # order, invoice, tracking numbers: 4+ digits, see _identifiers


def normalise(text: str) -> str:
    """Case, width, quote markers and reply/forward headers gone; what is left is what was said."""
    lines = []
    for line in unicodedata.normalize("NFKC", text).casefold().splitlines():
        line = _QUOTE_MARK.sub("", line).strip()
        if line and not _QUOTE_HEADER.match(line):
            lines.append(line)
    return " ".join(lines)


def tokens(normalised: str) -> list[str]:
    return _TOKEN.findall(normalised)


def shingles(toks: list[str]) -> set[str]:
    if len(toks) < 2:
        return set(toks)
    return {f"{a} {b}" for a, b in itertools.pairwise(toks)}


@dataclass(frozen=True, slots=True)
class Sketch:
    size: int  # number of distinct shingles
    idents: frozenset[int]  # hashes of identifier tokens
    hashes: np.ndarray  # sorted bottom-k shingle hashes (uint32)

    @property
    def exact(self) -> bool:
        return self.size <= len(self.hashes)

    def to_bytes(self) -> bytes:
        head = np.array([self.size, len(self.idents)], dtype=np.uint32)
        return b"".join((head.tobytes(), np.array(sorted(self.idents), dtype=np.uint32).tobytes(),
                         self.hashes.astype(np.uint32).tobytes()))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Sketch:
        values = np.frombuffer(raw, dtype=np.uint32)
        size, n_ids = int(values[0]), int(values[1])
        return cls(size, frozenset(values[2:2 + n_ids].tolist()), values[2 + n_ids:].copy())


def _hash32(value: str) -> int:
    return zlib.crc32(value.encode())


def sketch(text: str) -> Sketch:
    normalised = normalise(text)
    toks = tokens(normalised)
    hashed = sorted({zlib.crc32(s.encode()) for s in shingles(toks)})
    idents = frozenset(_hash32(t) for t in _IDENT.findall(normalised) if sum(c.isdigit() for c in t) >= 4)
    return Sketch(len(hashed), idents, np.array(hashed[:BOTTOM_K], dtype=np.uint32))


@dataclass(frozen=True, slots=True)
class Similarity:
    jaccard: float
    containment: float
    reason: str

    @property
    def score(self) -> float:
        return max(self.jaccard, self.containment)


def compare(a: Sketch, b: Sketch) -> Similarity:
    """Jaccard and containment of the two shingle sets: exact when both sketches hold every
    shingle, else estimated on the bottom-k of their union. Different identifiers on both sides
    (order 12345 against order 56789: each has a number the other lacks) mean different matters,
    whatever the words; a number on one side only (trimmed away, say) does not."""
    if a.idents - b.idents and b.idents - a.idents:
        return Similarity(0.0, 0.0, "different identifiers (order or reference numbers)")
    if not a.size or not b.size:
        return Similarity(0.0, 0.0, "no text")
    if a.exact and b.exact:
        # a set of at most 256 ints: several times cheaper than numpy's sort-based intersect1d at this size
        common = len(set(a.hashes.tolist()).intersection(b.hashes.tolist()))
        jaccard = common / (a.size + b.size - common)
    else:
        k = min(BOTTOM_K, a.size, b.size)
        union = np.union1d(a.hashes, b.hashes)[:k]
        both = np.intersect1d(np.intersect1d(a.hashes, b.hashes, assume_unique=True), union, assume_unique=True)
        jaccard = len(both) / len(union)
    containment = min(1.0, jaccard * (a.size + b.size) / ((1 + jaccard) * min(a.size, b.size)))
    return Similarity(jaccard, containment, f"jaccard {jaccard:.2f}, containment {containment:.2f}")


def band_keys(s: Sketch) -> list[int]:
    """LSH band keys (signed 64-bit, for a BIGINT column) from MinHash over the sketch's hashes.
    Two texts share a key with probability 1-(1-J^ROWS)^BANDS: 0.64 at Jaccard 0.5, 0.99 at 0.7."""
    if s.size < MIN_SHINGLES:
        return []
    x = s.hashes.astype(np.uint64)[:, None]
    signature = ((x * _A + _B) % _PRIME).min(axis=0).astype(np.uint32).reshape(BANDS, ROWS)
    return [int.from_bytes(hashlib.blake2b(bytes([i]) + row.tobytes(), digest_size=8).digest(), "big", signed=True)
            for i, row in enumerate(signature)]


@dataclass(frozen=True, slots=True)
class NearSketch:
    """A message's sketches and band keys, computed where CPU is cheap (the stage worker) so the store
    process only looks them up: what the customer said, and the whole text, quotes included (for an
    email that continues none of our threads; the same object when the two texts are the same)."""

    said: Sketch
    said_keys: tuple[int, ...]
    whole: Sketch
    whole_keys: tuple[int, ...]

    @classmethod
    def of(cls, said_text: str, whole_text: str) -> NearSketch:
        said = sketch(said_text)
        whole = said if whole_text == said_text else sketch(whole_text)
        said_keys = tuple(band_keys(said))
        return cls(said, said_keys, whole, said_keys if whole is said else tuple(band_keys(whole)))

    def keys_of(self, s: Sketch) -> list[int]:
        return list(self.said_keys if s is self.said else self.whole_keys if s is self.whole else band_keys(s))
