"""Word-level evidence for short texts: how frequent each word is in each language (wordfreq lists).

One dictionary maps a case-folded word to its log10 frequency in every candidate language, with a floor
where a language does not list it. Vietnamese also gets its syllables without diacritics ("cam on",
"don hang"), a little less likely than the written forms, because chat often drops them. The lists are
read from the installed `wordfreq` package (code Apache-2.0, data CC-BY-SA 4.0); nothing is copied
into this repository.
"""

from __future__ import annotations

import gzip
import math
import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from importlib.util import find_spec
from itertools import chain, islice, repeat
from pathlib import Path

import msgpack

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_ASCII_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")  # WORD on case-folded ASCII text
_VI_BARE_PENALTY = 0.7  # log10: a syllable typed without its marks is rarer than written with them
_FLOOR_BELOW = 0.7  # log10 below a list's rarest word for words it does not list
_HAN_WORD_RATIO = 0.5  # log10 margin before a Han-only word counts as Japanese rather than Chinese
_MEMO_SIZE = 200_000  # words seen before skip the per-language lookups; support text repeats itself
_NO_VECTOR: tuple[float, ...] = ()
_FREQUENT = 2_000


def strip_marks(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def wordfreq_data() -> Path:
    """wordfreq's data folder, found without importing wordfreq (its import costs 0.3 s of load time)."""
    spec = find_spec("wordfreq")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the wordfreq package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read(lang: str) -> list[list[str]] | None:
    """A wordfreq "cBpack": a header, then lists of words whose index is minus their log10 frequency x 100."""
    path = wordfreq_data() / f"small_{lang}.msgpack.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rb") as f:
        data = msgpack.load(f, raw=False)
    header = data[0]
    if not isinstance(header, dict) or header.get("format") != "cB" or header.get("version") != 1:
        raise ValueError(f"unexpected wordfreq header in {path}: {header!r}")
    return data[1:]


def _table(bins: list[list[str]]) -> dict[str, float]:
    """word -> log10 frequency; a word listed twice keeps its most frequent entry."""
    table: dict[str, float] = {}
    for cb in range(len(bins) - 1, -1, -1):
        if bins[cb]:
            table.update(dict.fromkeys(bins[cb], -cb / 100))
    return table


class WordModel:
    """log10 P(word | language) for the languages given; `score` sums them over a text's words."""

    def __init__(self, langs: Sequence[str]) -> None:
        tables = {lang: _read(lang) for lang in langs}
        self.langs = tuple(lang for lang in langs if tables[lang] is not None)
        self.floors = tuple(-len(tables[lang] or ()) / 100 - _FLOOR_BELOW for lang in self.langs)
        self.tables: list[dict[str, float]] = []
        # the most frequent words of each list, in order: warming the memo with them makes a cold start fast
        self.frequent = {lang: list(islice(chain.from_iterable(tables[lang] or []), _FREQUENT)) for lang in self.langs}
        for lang in self.langs:
            table = _table(tables[lang] or [])
            if lang == "vi":
                table = _with_bare_syllables(table)
            self.tables.append(table)
        self._known: dict[str, None] = {}  # every word some list holds: an unknown word costs one lookup
        for table in self.tables:
            self._known.update(dict.fromkeys(table))
        self._all = tuple(range(len(self.langs)))
        self._views: dict[tuple[int, ...], _View] = {}

    def vector(self, word: str) -> tuple[float, ...] | None:
        """log10 frequencies of one word per language; None when no list knows it."""
        return self._view(self._all).vector(word) or None

    def score(self, words: Sequence[str], columns: tuple[int, ...] | None = None) -> tuple[list[float], int]:
        """Summed log10 probabilities per language (only `columns`, indices into `langs`, when given: Cyrillic
        text needs 2 of them, not all), and how many words any list knows."""
        view = self._view(self._all if columns is None else columns)
        found = list(map(view.memo.get, words))
        if None in found:
            found = [vec if vec is not None else view.vector(w) for vec, w in zip(found, words, strict=True)]
        vectors = [vec for vec in found if vec]
        if not vectors:  # a word no list knows adds nothing; the n-gram model covers it
            return [0.0] * len(view.tables), 0
        if len(vectors) == 1:
            return list(vectors[0]), 1
        # the same additions, in the same order, as a running total (Python 3.11's sum is plain addition)
        return list(map(sum, zip(*vectors, strict=True))), len(vectors)

    def warm(self, columns: tuple[int, ...]) -> None:
        """Build the vectors of every list's most frequent words now, at load, rather than on first sight."""
        vector = self._view(columns).vector
        for i in columns:
            for word in self.frequent[self.langs[i]]:
                vector(word)

    def _view(self, columns: tuple[int, ...]) -> _View:
        view = self._views.get(columns)
        if view is None:
            view = self._views[columns] = _View(tuple(self.tables[i] for i in columns),
                                                tuple(self.floors[i] for i in columns), self._known)
        return view


class _View:
    """Word vectors over some of the languages, memoised: support text repeats its words."""

    def __init__(self, tables: tuple[dict[str, float], ...], floors: tuple[float, ...], known: dict[str, None]) -> None:
        self.tables, self.floors, self.known = tables, floors, known
        self.memo: dict[str, tuple[float, ...]] = {}

    def vector(self, word: str) -> tuple[float, ...]:
        """Empty when no list (of any language) knows the word."""
        found = self.memo.get(word)
        if found is not None:
            return found
        if word in self.known:
            found = tuple(map(dict.get, self.tables, repeat(word), self.floors))
        elif "'" in word:  # "l'ordre", "c'est": the lists hold the parts
            parts = [v for v in map(self.vector, [p for p in word.split("'") if p]) if v]
            found = tuple(map(sum, zip(*parts, strict=True))) if parts else _NO_VECTOR
        else:
            found = _NO_VECTOR
        if len(self.memo) < _MEMO_SIZE:
            self.memo[word] = found
        return found


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
    """Case-folded words; the same as WORD.findall on the folded text, but a token that is all letters
    (most of them) skips the regular expression."""
    folded = text.casefold().replace("’", "'")
    if folded.isascii():  # a plain character class scans much faster than the Unicode one
        return _ASCII_WORD.findall(folded)
    tokens = folded.split()
    if all(map(str.isalpha, tokens)):
        return tokens
    words: list[str] = []
    for token in tokens:
        if token.isalpha():
            words.append(token)
        else:
            words += WORD.findall(token)
    return words


def _last_entry_table(bins: list[list[str]]) -> dict[str, float]:
    table: dict[str, float] = {}
    for cb, words in enumerate(bins):
        if words:
            table.update(dict.fromkeys(words, -cb / 100))
    return table


def _simplified_map() -> dict[int, str]:
    """wordfreq's traditional -> simplified character table."""
    with gzip.open(wordfreq_data() / "_chinese_mapping.msgpack.gz") as f:
        return msgpack.load(f, raw=False, strict_map_key=False)


class HanModel:
    """Chinese or Japanese for text written in Han characters only."""

    def __init__(self) -> None:
        zh, ja = _read("zh") or [], _read("ja") or []
        self.zh, self.ja = _last_entry_table(zh), _last_entry_table(ja)
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
        only = 0 if self.ja_only.isdisjoint(han) else sum(ch in self.ja_only for ch in han)
        if only:
            return min(1.0, 0.6 + only / len(han))
        if len(han) <= 6:
            ja = self.ja.get(han)
            zh = self.zh.get(han.translate(self.simplify))
            if ja is not None and (zh is None or ja > zh + _HAN_WORD_RATIO):
                return 0.7
        return 0.0
