"""The text normalisation the rules and the model share (NFKC, case-folded), computed once per text.

In a batch the rules and then the model read the same texts; NFKC is the costliest step for Chinese
(full-width punctuation is a compatibility form), so the last few thousand results are kept.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_CACHED_CHARS = 4000  # longer texts are normalised each time rather than held in the cache


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
