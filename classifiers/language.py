"""Language detection: writing-system rules first, Vietnamese cues, then langdetect (seeded).

Scripts that belong to one language (Greek, Han without kana, Hangul, Thai, ...) are answered
by counting characters; Latin and Cyrillic text goes to a deterministic langdetect backend
(`langdetect-rs`, bit-identical to `langdetect` and much faster, or `langdetect` itself).
Text without letters is `und`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

UNDETERMINED = "und"
Backend = Literal["langdetect-rs", "langdetect"]

_URLS = re.compile(r"https?://\S+|www\.\S+|\S+@\S+\.\w+")
_VI_LETTERS = set("ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
# Frequent Vietnamese syllables typed without diacritics that are rare words in other languages.
_VI_BARE = frozenset(
    "khong duoc cua toi minh hang giao dat nhan nguoi nhung voi chua roi lam gui tien tra sao vay "
    "nhe nha shop cam biet muon duoc qua rat lai hoan huy doi nhanh cham tre bao gio oi ban chi anh "
    "em dung sai hong loi phai thi cung nhu nay kia dau".split()
)
_SCRIPT_LANG = {"GREEK": "el", "HANGUL": "ko", "THAI": "th", "HEBREW": "he", "DEVANAGARI": "hi",
                "GEORGIAN": "ka", "ARMENIAN": "hy", "BENGALI": "bn", "TAMIL": "ta"}
_LANGDETECT_CODES = {"zh-cn": "zh", "zh-tw": "zh"}


@dataclass(frozen=True, slots=True)
class LanguageResult:
    lang: str
    confidence: float
    method: str

    def as_dict(self) -> dict[str, object]:
        return {"lang": self.lang, "confidence": round(self.confidence, 4), "method": self.method}


def _script(ch: str) -> str:
    if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf":
        return "HAN"
    if "\u3040" <= ch <= "\u30ff":
        return "KANA"
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "OTHER"
    return name.split(" ", 1)[0]


def _letters(text: str) -> list[str]:
    return [ch for ch in _URLS.sub(" ", text) if ch.isalpha()]


class LanguageDetector:
    def __init__(self, backend: Backend = "langdetect-rs", min_confidence: float = 0.5) -> None:
        self.min_confidence = min_confidence
        if backend == "langdetect-rs":
            from langdetect_rs.detector_factory import PROFILES_DIRECTORY, DetectorFactory
        else:
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
        self._factory = DetectorFactory()
        self._factory.load_profile(PROFILES_DIRECTORY)
        self._factory.set_seed(0)  # langdetect is random unless seeded
        self.backend = backend

    def detect(self, text: str) -> LanguageResult:
        letters = _letters(text)
        if not letters:
            return LanguageResult(UNDETERMINED, 0.0, "no-letters")
        by_script = _script_rule(letters)
        if by_script is not None:
            return by_script
        lowered = text.casefold()
        vi_marks = sum(ch in _VI_LETTERS for ch in lowered)
        if vi_marks >= 2 or (vi_marks and len(letters) < 12):
            return LanguageResult("vi", min(1.0, 0.6 + 0.1 * vi_marks), "vietnamese-letters")
        words = re.findall(r"[a-z]+", lowered)
        if len(words) >= 2:
            bare = sum(w in _VI_BARE for w in words) / len(words)
            if bare >= 0.5:
                return LanguageResult("vi", round(0.5 + bare / 2, 3), "vietnamese-bare-syllables")
        return self._statistical(text)

    def detect_many(self, texts: Iterable[str]) -> list[LanguageResult]:
        return [self.detect(t) for t in texts]

    def _statistical(self, text: str) -> LanguageResult:
        detector = self._factory.create()
        detector.append(text)
        try:
            ranked = detector.get_probabilities()
        except Exception:
            return LanguageResult(UNDETERMINED, 0.0, "no-features")
        if not ranked:
            return LanguageResult(UNDETERMINED, 0.0, "no-features")
        best = ranked[0]
        lang = _LANGDETECT_CODES.get(best.lang, best.lang)
        if best.prob < self.min_confidence:
            return LanguageResult(UNDETERMINED, best.prob, self.backend)
        return LanguageResult(lang, best.prob, self.backend)


def _script_rule(letters: Sequence[str]) -> LanguageResult | None:
    if all(ch < "\u0250" for ch in letters):
        return None  # Latin script: the statistical detector decides
    counts = Counter(_script(ch) for ch in letters)
    script, n = counts.most_common(1)[0]
    share = n / len(letters)
    if counts.get("KANA", 0) and counts["KANA"] + counts.get("HAN", 0) >= 0.5 * len(letters):
        return LanguageResult("ja", (counts["KANA"] + counts.get("HAN", 0)) / len(letters), "script")
    if share < 0.5:
        return None
    if script == "HAN":
        return LanguageResult("zh", share, "script")
    if script in _SCRIPT_LANG:
        return LanguageResult(_SCRIPT_LANG[script], share, "script")
    if script == "CYRILLIC":
        lowered = {ch.lower() for ch in letters}
        if lowered & set("іїєґ"):
            return LanguageResult("uk", share, "script")
        if not lowered & set("ўәғқңөұүһ"):
            return LanguageResult("ru", share, "script") if len(letters) < 40 else None
    if script == "ARABIC":
        return LanguageResult("fa" if set(letters) & set("پچژگ") else "ar", share, "script")
    return None
