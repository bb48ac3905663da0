"""Writing systems: which script each letter belongs to, script runs, and the languages a script decides.

Greek, Hangul, Thai, Devanagari, Hebrew, Georgian, Armenian, ... belong to one language each among the
ones we serve, so counting letters answers them; kana means Japanese; Han without kana is Chinese unless
the characters are ones only Japanese uses. Latin and Cyrillic need the statistical models.
"""

from __future__ import annotations

import re
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
_group_cache: dict[str, str] = {}
_inside_cache: dict[tuple[str, str], bool] = {}
_LETTERS = re.compile(r"[^\W\d_]+")
_LETTER = re.compile(r"[^\W\d_]")
# a letter outside the group's blocks (the class excludes the blocks, non-letters, digits and _)
_OUTSIDE = {group: re.compile(rf"[^{blocks}\W\d_]") for group, blocks in {
    "LATIN": "\x00-\u024f\u1e00-\u1eff", "CYRILLIC": "\u0400-\u052f", "GREEK": "\u0370-\u03ff\u1f00-\u1fff",
    "CJK": "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "HANGUL": "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff", "THAI": "\u0e00-\u0e7f",
    "DEVANAGARI": "\u0900-\u097f\ua8e0-\ua8ff", "HEBREW": "\u0590-\u05ff",
    "ARABIC": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"}.items()}


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


def _letter_group(ch: str) -> str:
    group = group_of(script_of(ch))
    if len(_group_cache) < 100_000:
        _group_cache[ch] = group
    return group


def group_of(script: str) -> str:
    """Han and kana are written together; both belong to the CJK group for segmenting."""
    return "CJK" if script in ("HAN", "KANA") else script


@dataclass(frozen=True, slots=True)
class ScriptRun:
    start: int
    end: int
    group: str
    letters: int


def sole_group(text: str) -> str | None:
    """The script group of every letter in the text; "" when it has no letters, None when it has several
    groups (or one this shortcut does not know: `script_runs` tells)."""
    if text.isascii():
        return "LATIN" if _LETTERS.search(text) else ""
    first = _LETTERS.search(text)
    if first is None:
        return ""
    group = group_of(script_of(first.group()[0]))
    others = _OUTSIDE.get(group)
    return group if others is not None and others.search(text) is None else None


def script_runs(text: str) -> list[ScriptRun]:
    """Maximal spans whose letters share a script group; digits, spaces and punctuation join the run
    they follow (or the next one, at the start). A word takes the script of its first letter."""
    if text.isascii():
        letters = sum(map(len, _LETTERS.findall(text)))
        return [ScriptRun(0, len(text), "LATIN", letters)] if letters else []
    first = _LETTERS.search(text)
    if first is None:
        return []
    group = group_of(script_of(first.group()[0]))
    others = _OUTSIDE.get(group)
    if others is not None and others.search(text) is None:  # one script throughout: the usual case
        return [ScriptRun(0, len(text), group, sum(map(len, _LETTERS.findall(text))))]
    return _runs_from(text, first.start())


def _runs_from(text: str, pos: int) -> list[ScriptRun]:
    """Word by word from `pos` (a word's start): a word takes the group of its first letter, or stays in the
    current group when that letter lies inside the group's Unicode blocks (as in the one-script shortcut)."""
    runs: list[ScriptRun] = []
    start, group, letters = 0, "", 0
    groups, inside = _group_cache, _inside_cache
    for word in _LETTERS.finditer(text, pos):
        begin, end = word.span()
        ch = text[begin]
        g = groups.get(ch) or _letter_group(ch)
        if g != group:
            stays = inside.get((group, ch))
            if stays is None:
                stays = _inside(group, ch)
            if not stays:
                if group:
                    runs.append(ScriptRun(start, begin, group, letters))
                    start = begin
                group, letters = g, 0
        letters += end - begin
    runs.append(ScriptRun(start, len(text), group, letters))
    return runs


def _inside(group: str, ch: str) -> bool:
    """Whether a letter lies inside the Unicode blocks of `group` (which then keeps the word)."""
    others = _OUTSIDE.get(group)
    found = others is not None and others.match(ch) is None
    if len(_inside_cache) < 100_000:
        _inside_cache[(group, ch)] = found
    return found


def arabic_language(letters: Sequence[str]) -> str:
    present = set(letters)
    if present & _URDU:
        return "ur"
    return "fa" if present & _PERSIAN else "ar"


def script_counts(letters: Sequence[str]) -> Counter[str]:
    return Counter(script_of(ch) for ch in letters)
