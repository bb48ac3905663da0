"""Word-level evidence for short texts: how frequent each word is in each language (wordfreq lists).

One dictionary maps a case-folded word to its log10 frequency in every candidate language, with a floor
where a language does not list it. Vietnamese also gets its syllables without diacritics ("cam on",
"don hang"), a little less likely than the written forms, because chat often drops them. The lists are
read from the installed `wordfreq` package (code Apache-2.0, data CC-BY-SA 4.0); nothing is copied
into this repository.
"""

from __future__ import annotations

import math
import operator
import re
import unicodedata
from collections.abc import Iterable, Sequence

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_VI_BARE_PENALTY = 0.7  # log10: a syllable typed without its marks is rarer than written with them
_FLOOR_BELOW = 0.7  # log10 below a list's rarest word for words it does not list
_HAN_WORD_RATIO = 0.5  # log10 margin before a Han-only word counts as Japanese rather than Chinese
_MEMO_SIZE = 200_000  # words seen before skip the per-language lookups; support text repeats itself


def strip_marks(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _read(lang: str) -> list[list[str]] | None:
    from wordfreq import DATA_PATH, read_cBpack

    path = DATA_PATH / f"small_{lang}.msgpack.gz"
    return read_cBpack(str(path)) if path.is_file() else None


class WordModel:
    """log10 P(word | language) for the languages given; `score` sums them over a text's words."""

    def __init__(self, langs: Sequence[str]) -> None:
        tables = {lang: _read(lang) for lang in langs}
        self.langs = tuple(lang for lang in langs if tables[lang] is not None)
        self.floors = tuple(-len(tables[lang] or ()) / 100 - _FLOOR_BELOW for lang in self.langs)
        self.tables: list[dict[str, float]] = []
        for lang in self.langs:
            bins = tables[lang] or []
            table = {word: -cb / 100 for cb in range(len(bins) - 1, -1, -1) for word in bins[cb]}
            if lang == "vi":
                table = _with_bare_syllables(table)
            self.tables.append(table)
        self._pairs = tuple(zip(self.tables, self.floors, strict=True))
        self._memo: dict[str, tuple[float, ...] | None] = {}

    def vector(self, word: str) -> tuple[float, ...] | None:
        """log10 frequencies of one word per language; None when no list knows it."""
        vec = self._memo.get(word)
        if vec is not None or word in self._memo:
            return vec
        found = tuple(t.get(word, f) for t, f in self._pairs)
        if found == self.floors:
            found = None
            if "'" in word:  # "l'ordre", "c'est": the lists hold the parts
                parts = [self.vector(p) for p in word.split("'") if p]
                known = [p for p in parts if p is not None]
                if known:
                    found = tuple(map(sum, zip(*known, strict=True)))
        if len(self._memo) < _MEMO_SIZE:
            self._memo[word] = found
        return found

    def score(self, words: Iterable[str]) -> tuple[list[float], int]:
        """Summed log10 probabilities per language, and how many words any list knows."""
        total = [0.0] * len(self.langs)
        known = 0
        for word in words:
            vec = self.vector(word)
            if vec is not None:  # a word no list knows adds nothing; the n-gram model covers it
                total = list(map(operator.add, total, vec))
                known += 1
        return total, known


def _with_bare_syllables(table: dict[str, float]) -> dict[str, float]:
    bare: dict[str, float] = {}
    for word, logf in table.items():
        if not word.isascii():
            plain = strip_marks(word)
            if plain.isascii():
                bare[plain] = bare.get(plain, 0.0) + 10 ** logf
    for plain, freq in bare.items():
        table[plain] = max(table.get(plain, -99.0), math.log10(freq) - _VI_BARE_PENALTY)
    return table


def words_of(text: str) -> list[str]:
    return [w.replace("’", "'") for w in WORD.findall(text.casefold())]


def _simplified_map() -> dict[int, str]:
    """wordfreq's traditional -> simplified character table."""
    import gzip

    import msgpack
    from wordfreq import DATA_PATH

    with gzip.open(DATA_PATH / "_chinese_mapping.msgpack.gz") as f:
        return msgpack.load(f, raw=False, strict_map_key=False)


class HanModel:
    """Chinese or Japanese for text written in Han characters only."""

    def __init__(self) -> None:
        zh, ja = _read("zh") or [], _read("ja") or []
        self.zh = {w: -cb / 100 for cb, words in enumerate(zh) for w in words}
        self.ja = {w: -cb / 100 for cb, words in enumerate(ja) for w in words}
        zh_chars = {ch for w in self.zh for ch in w}
        self.simplify = _simplified_map()
        traditional = {chr(k) for k in self.simplify}
        # kanji Japanese writes but Chinese does not (気, 駅, 円, 売, 込 ...)
        self.ja_only = frozenset(ch for w in self.ja for ch in w if "\u4e00" <= ch <= "\u9fff"
                                 and ch not in zh_chars and ch not in traditional)

    def japanese_share(self, han: str) -> float:
        """How much of this Han-only text reads as Japanese: 0 for plain Chinese."""
        if not han:
            return 0.0
        only = sum(ch in self.ja_only for ch in han)
        if only:
            return min(1.0, 0.6 + only / len(han))
        if len(han) <= 6:
            ja = self.ja.get(han)
            zh = self.zh.get(han.translate(self.simplify))
            if ja is not None and (zh is None or ja > zh + _HAN_WORD_RATIO):
                return 0.7
        return 0.0
