"""The text normalisation the rules and the model share (NFKC, case-folded, and for the rules and newer
models Greek accents removed), computed once per text.

In a batch the rules and then the model read the same texts; NFKC is the costliest step for Chinese
(full-width punctuation is a compatibility form), so the last few thousand results are kept.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CACHED_CHARS = 4000  # longer texts are normalised each time rather than held in the cache
# lone surrogates (JSON allows "\udc00") cannot be encoded, and NUL separates texts inside the model
ODD_CHARS = re.compile(r"[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """The text with lone surrogates and control characters (tab and line breaks aside) as spaces,
    so every later step can encode it; same length as the input."""
    return ODD_CHARS.sub(" ", text) if ODD_CHARS.search(text) else text


@lru_cache(maxsize=4096)
def _cached(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def nfkc_casefold(text: str) -> str:
    if text.isascii():
        return text.casefold()
    if len(text) > _CACHED_CHARS:
        return unicodedata.normalize("NFKC", text).casefold()
    return _cached(text)


def clear_cache() -> None:
    """Forget the kept results (benchmarks use it so that every text is new, as in the pipeline)."""
    _cached.cache_clear()


def _greek_fold_table() -> dict[int, str]:
    table = {}
    for code in (*range(0x0370, 0x0400), *range(0x1F00, 0x2000)):
        base = "".join(ch for ch in unicodedata.normalize("NFD", chr(code)) if not unicodedata.combining(ch))
        if base and base != chr(code) and len(base) == 1:
            table[code] = base
    return table


GREEK_FOLD = _greek_fold_table()
_GREEK = re.compile("[\u0370-\u03ff\u1f00-\u1fff]")  # translating with the table costs a lookup per character


def fold(text: str) -> str:
    """What the rules' cues (and models from omnintake.NgramBOW with `fold_accents`) see: NFKC, case-folded,
    Greek accents and diaeresis removed (Greek tweets and SMS often come without them)."""
    if not text.isascii():
        text = nfkc_casefold(text)
        return text.translate(GREEK_FOLD) if _GREEK.search(text) else text
    return text.casefold()
