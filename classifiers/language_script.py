"""Writing systems: which script each letter belongs to, script runs, and the languages a script decides.

Greek, Hangul, Thai, Devanagari, Hebrew, Georgian, Armenian, ... belong to one language each among the
ones we serve, so counting letters answers them; kana means Japanese; Han without kana is Chinese unless
the characters are ones only Japanese uses. Latin and Cyrillic need the statistical models.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# Scripts that name one language; Arabic is refined by letters (Persian and Urdu add their own).
OWN_SCRIPT = {"GREEK": "el", "HANGUL": "ko", "THAI": "th", "HEBREW": "he", "DEVANAGARI": "hi", "GEORGIAN": "ka",
              "ARMENIAN": "hy", "BENGALI": "bn", "TAMIL": "ta", "TELUGU": "te", "GUJARATI": "gu", "KHMER": "km",
              "LAO": "lo", "MYANMAR": "my", "SINHALA": "si", "ETHIOPIC": "am", "KANNADA": "kn", "MALAYALAM": "ml",
              "GURMUKHI": "pa", "ORIYA": "or", "TIBETAN": "bo"}
STATISTICAL = frozenset({"LATIN", "CYRILLIC"})
_PERSIAN, _URDU = frozenset("پچژگ"), frozenset("ٹڈڑںھے")
_NAME_ALIASES = {"CJK": "HAN", "HIRAGANA": "KANA", "KATAKANA": "KANA", "FULLWIDTH": "LATIN", "HALFWIDTH": "KANA"}
_cache: dict[str, str] = {}


def script_of(ch: str) -> str:
    """The script of one letter: LATIN, CYRILLIC, GREEK, HAN, KANA, HANGUL, ARABIC, ... or OTHER."""
    found = _cache.get(ch)
    if found is not None:
        return found
    if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff":
        found = "HAN"
    elif "\u3040" <= ch <= "\u30ff" or "\u31f0" <= ch <= "\u31ff":
        found = "KANA"
    else:
        name = unicodedata.name(ch, "OTHER")
        first = name.split(" ", 1)[0]
        if first == "FULLWIDTH" and "LATIN" not in name:
            first = "OTHER"
        found = _NAME_ALIASES.get(first, first)
        if found == "HANGUL" or name.startswith("HANGUL"):
            found = "HANGUL"
    if len(_cache) < 100_000:
        _cache[ch] = found
    return found


def group_of(script: str) -> str:
    """Han and kana are written together; both belong to the CJK group for segmenting."""
    return "CJK" if script in ("HAN", "KANA") else script


@dataclass(frozen=True, slots=True)
class ScriptRun:
    start: int
    end: int
    group: str
    letters: int


def script_runs(text: str) -> list[ScriptRun]:
    """Maximal spans whose letters share a script group; digits, spaces and punctuation join the run
    they follow (or the next one, at the start)."""
    runs: list[ScriptRun] = []
    start, group, letters = 0, "", 0
    for i, ch in enumerate(text):
        if not ch.isalpha():
            continue
        g = group_of(script_of(ch))
        if g == group:
            letters += 1
            continue
        if group:
            runs.append(ScriptRun(start, i, group, letters))
            start = i
        group, letters = g, 1
    if group:
        runs.append(ScriptRun(start, len(text), group, letters))
    return runs


def arabic_language(letters: Sequence[str]) -> str:
    present = set(letters)
    if present & _URDU:
        return "ur"
    return "fa" if present & _PERSIAN else "ar"


def script_counts(letters: Sequence[str]) -> Counter[str]:
    return Counter(script_of(ch) for ch in letters)
