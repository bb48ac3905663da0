"""Language detection that combines what each method is best at.

1. Writing system: a script that belongs to one language (Greek, Hangul, Thai, Devanagari, ...) answers
   by counting letters; kana means Japanese; Han alone is Chinese unless its characters or words are
   Japanese; Arabic script is Arabic, Persian or Urdu by their letters.
2. Latin and Cyrillic text: word frequencies (wordfreq lists, with Vietnamese also typed without
   diacritics) and langdetect's character n-grams restricted to the candidate languages, summed as
   log-probabilities with the caller's prior; the word model carries short texts, the n-grams carry
   unknown words and long texts.
3. Text in several scripts or with quoted blocks in another language is split into segments, each
   detected on its own; the main language is the one with the most weight (quotes count less).
Text without letters is `und`, and so is an answer whose confidence is under `min_confidence`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from classifiers.language_script import OWN_SCRIPT, STATISTICAL, ScriptRun, arabic_language, script_runs, sole_group
from classifiers.language_words import HanModel, WordModel, words_of
from classifiers.normalise import ODD_CHARS, printable

UNDETERMINED = "und"
DEFAULT_LANGUAGES = ("en", "vi", "zh", "ru", "el", "es", "de", "fr", "pt", "ja", "ar", "th", "id", "tr", "uk",
                     "ko", "hi")
Backend = Literal["langdetect-rs", "langdetect"]
CYRILLIC_LANGS = frozenset({"ru", "uk", "bg", "mk", "sr", "be", "kk", "ky", "mn", "tg"})
MAX_CHARS = 20_000  # beyond this the language is already clear; 1 MB of text costs no more than 20 kB
_LN10 = math.log(10)
_WORD_WEIGHT = 1.0
_NGRAM_WEIGHT = 0.6
_NGRAM_FULL_LETTERS = 60  # langdetect is sure and often wrong on a word or two: its weight grows with length
_NGRAM_FLOOR = 1e-3
_NGRAM_MIN_LETTERS = 15  # below this the n-grams add noise, not evidence
_NGRAM_MARGIN = 3.0  # log10: words that far apart settle it without the n-grams
_MAX_STATISTICAL_CHARS = 500  # ~80 words: enough to decide; a long text costs no more
# A span over twice this is first read up to here (at a space); when its words alone lead by this much
# (log10), with most of them known, the rest is not read. Otherwise the span is read up to the maximum.
_SAMPLE_CHARS = 64
_SAMPLE_MARGIN = 6.0
_CACHED_SPAN_CHARS = 64
_SPAN_CACHE_SIZE = 50_000
_PRIOR_FLOOR = 0.1  # a language the prior never saw keeps this weight against 1.0 for the usual one
# log10: a lead of 10x or more without the prior is clear evidence, and the prior is not even consulted
# (its largest possible effect, log10((1 + 0.1) / 0.1) = 1.04, could not overturn it by much anyway)
_PRIOR_MAX_MARGIN = 1.0
_QUOTED_WEIGHT = 0.25
_NON_LATIN_WEIGHT = 3.0  # brand names and URLs put Latin letters into every script, rarely the reverse
_MIN_RUN_LETTERS = 3
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_MIN_BLOCK_LETTERS = 20
# An address is tried only where a token starts, and its name part is never given back: otherwise every letter
# of every word starts a scan to the word's end (quadratic in a word's length; a third of a tweet's cost).
_SANITISE = re.compile(r"https?://\S+|www\.\S+|(?<![\w.+-])[\w.+-]++@[\w-]+\.[\w.]+|@\w+|"
                       + ODD_CHARS.pattern)
# Frequent pairs of Vietnamese syllables typed without diacritics; each one seen adds evidence.
_VI_BARE_PAIRS = frozenset(
    "cam on|xin chao|don hang|giao hang|bao gio|tai sao|bao nhieu|khong duoc|chua nhan|hoan tien|doi tra|"
    "san pham|dia chi|dien thoai|thanh toan|van chuyen|khach hang|ho tro|lien he|giup em|giup minh|shop oi|"
    "ad oi|nhe shop|a shop|cho em|cho minh|em muon|minh muon|toi muon|khong nhan|nhan duoc|giao tre|"
    "hang chua|bi loi|bi hong|tra hang|huy don|dat hang|mua hang|chat luong|dong goi|giao nham|sai mau|"
    "tu van|kiem tra|xin loi|cam on ban|the nao|nhu the|duoc khong|co khong|roi ma|lau qua|cham qua".split("|")
)
_VI_PAIR_FIRSTS = frozenset(pair.split(" ", 1)[0] for pair in _VI_BARE_PAIRS)
_VI_BARE_PAIR_TUPLES = frozenset(tuple(pair.split(" ")) for pair in _VI_BARE_PAIRS)
_VI_PAIR_BONUS = 2.5  # log10 per pair


class LanguageConfig(BaseModel):
    """Settings of the language stage (`language:` in the config file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    languages: tuple[str, ...] = Field(default=DEFAULT_LANGUAGES, min_length=1,
                                       description="candidate languages (ISO 639-1)")
    min_confidence: float = Field(default=0.3, ge=0, le=1, description="below this the answer is `und`")
    backend: Backend = "langdetect-rs"
    prior_customer_messages: int = Field(default=20, ge=0, description="the customer's recent messages whose "
                                         "languages tip close calls (0: no prior)")
    prior_channel_messages: int = Field(default=2000, ge=0, description="the store's recent messages whose "
                                        "language mix per channel account tips close calls (0: none)")
    prior_channel_weight: float = Field(default=0.25, ge=0, description="the account's mix against 1.0 for the "
                                        "customer's own history")
    prior_max_age_days: int = Field(default=365, ge=1, description="older messages are not read for the prior")


@dataclass(frozen=True, slots=True)
class LanguageSegment:
    start: int
    end: int
    lang: str
    confidence: float

    def as_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "lang": self.lang, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True, slots=True)
class LanguageResult:
    lang: str
    confidence: float
    method: str
    segments: tuple[LanguageSegment, ...] = ()  # only when parts of the text are in different languages

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"lang": self.lang, "confidence": round(self.confidence, 4), "method": self.method}
        if self.segments:
            out["segments"] = [s.as_dict() for s in self.segments]
        return out


@dataclass(slots=True)
class _Piece:
    start: int
    end: int
    group: str
    letters: int
    quoted: bool = False


_NO_LETTERS = LanguageResult(UNDETERMINED, 0.0, "no-letters")


class LanguageDetector:
    def __init__(self, backend: Backend = "langdetect-rs", min_confidence: float = 0.3,
                 languages: Sequence[str] = DEFAULT_LANGUAGES) -> None:
        self.backend = backend
        self.min_confidence = min_confidence
        self.languages = tuple(dict.fromkeys(lang.lower() for lang in languages))
        profiles = _langdetect_profiles()
        self.statistical = tuple(lang for lang in self.languages if lang in profiles
                                 and lang not in OWN_SCRIPT.values() and lang not in _SCRIPT_DECIDED)
        self._factory = _ngram_factory(backend, [profiles[lang] for lang in self.statistical])
        self._seed_state = _seed_state(backend)
        self.words = WordModel(self.statistical)
        self.han = HanModel()
        # Latin and Cyrillic text each compete among the candidates written in that script
        self._cyrillic_idx = tuple(i for i, lang in enumerate(self.words.langs) if lang in CYRILLIC_LANGS)
        self._latin_idx = tuple(i for i, lang in enumerate(self.words.langs) if lang not in CYRILLIC_LANGS)
        self._cyrillic_langs = tuple(self.words.langs[i] for i in self._cyrillic_idx)
        self._latin_langs = tuple(self.words.langs[i] for i in self._latin_idx)
        self._vi = self._latin_langs.index("vi") if "vi" in self._latin_langs else None
        self._span_cache: dict[tuple[str, bool], LanguageResult] = {}  # short lines repeat: "ok", "thanks", brands
        for columns in (self._latin_idx, self._cyrillic_idx):
            self.words.warm(columns)
        self._ngram("warm up the n-gram tables")  # langdetect-rs builds them on first use: 20 ms, part of loading

    @classmethod
    def from_config(cls, config: LanguageConfig) -> LanguageDetector:
        return cls(config.backend, config.min_confidence, config.languages)

    def detect(self, text: str, prior: Mapping[str, float] | None = None) -> LanguageResult:
        clean = _sanitise(text if isinstance(text, str) else "")
        if "\n" not in clean:  # the usual message: one line in one script is one piece, found in one scan
            group = sole_group(clean)
            if group == "":
                return _NO_LETTERS
            if group is not None:
                return self._threshold(self._detect_span(clean, group, prior))
        pieces = _pieces(clean)
        if not pieces:
            return _NO_LETTERS
        if len(pieces) == 1:
            return self._threshold(self._detect_piece(clean, pieces[0], prior))
        return self._threshold(self._detect_mixed(clean, pieces, prior))

    def detect_batch(self, texts: Iterable[str], prior: Mapping[str, float] | None = None,
                     priors: Sequence[Mapping[str, float] | None] | None = None) -> list[LanguageResult]:
        """`prior` for every text, or `priors`, one per text (a customer's own history)."""
        if priors is None:
            return [self.detect(t, prior) for t in texts]
        texts = list(texts)
        if len(priors) != len(texts):
            raise ValueError(f"{len(priors)} priors for {len(texts)} texts")
        return [self.detect(t, p) for t, p in zip(texts, priors, strict=True)]

    detect_many = detect_batch

    def _answer(self, lang: str, confidence: float) -> str:
        return lang if confidence >= self.min_confidence else UNDETERMINED

    def _threshold(self, result: LanguageResult) -> LanguageResult:
        if result.lang != UNDETERMINED and result.confidence < self.min_confidence:
            return LanguageResult(UNDETERMINED, result.confidence, result.method, result.segments)
        return result

    def _detect_mixed(self, text: str, pieces: list[_Piece], prior: Mapping[str, float] | None) -> LanguageResult:
        segments: list[LanguageSegment] = []
        weights: dict[str, float] = {}
        for piece in pieces:
            found = self._threshold(self._detect_piece(text, piece, prior))  # a brand name is no language
            weight = piece.letters * found.confidence
            if piece.quoted:
                weight *= _QUOTED_WEIGHT
            elif piece.group != "LATIN":
                weight *= _NON_LATIN_WEIGHT
            weights[found.lang] = weights.get(found.lang, 0.0) + weight
            if segments and segments[-1].lang == found.lang:
                last = segments[-1]
                merged = (last.confidence * (last.end - last.start) + found.confidence * (piece.end - piece.start))
                segments[-1] = LanguageSegment(last.start, piece.end, found.lang,
                                               merged / (piece.end - last.start))
            else:
                segments.append(LanguageSegment(piece.start, piece.end, found.lang, found.confidence))
        best = max(weights, key=lambda lang: (weights[lang], lang))
        confidence = weights[best] / (sum(weights.values()) or 1.0)
        if len(segments) == 1:
            return LanguageResult(best, segments[0].confidence, "mixed")
        if best == UNDETERMINED:
            confidence = 0.0
        return LanguageResult(best, confidence, "mixed", tuple(segments))

    def _detect_piece(self, text: str, piece: _Piece, prior: Mapping[str, float] | None) -> LanguageResult:
        return self._detect_span(text[piece.start:piece.end], piece.group, prior)

    def _detect_span(self, span: str, group: str, prior: Mapping[str, float] | None) -> LanguageResult:
        if group in OWN_SCRIPT:
            return LanguageResult(OWN_SCRIPT[group], 0.99, "script")
        if group == "CJK":
            return self._cjk(span)
        if group == "ARABIC":
            return LanguageResult(arabic_language([ch for ch in span if ch.isalpha()]), 0.99, "script")
        if group in STATISTICAL:
            return self._statistical(span, group == "CYRILLIC", prior)
        return LanguageResult(UNDETERMINED, 0.0, "unknown-script")

    def _cjk(self, span: str) -> LanguageResult:
        kana = len(_KANA.findall(span)) if _KANA.search(span) else 0
        han = "".join(_HAN.findall(span))
        if kana and (kana >= 0.1 * (kana + len(han)) or kana + len(han) <= 12):
            return LanguageResult("ja", 0.99, "script")
        share = self.han.japanese_share(han)
        if share >= 0.5:
            return LanguageResult("ja", share, "kanji")
        return LanguageResult("zh", 0.99 - share, "script")

    def _statistical(self, span: str, cyrillic: bool, prior: Mapping[str, float] | None) -> LanguageResult:
        """Softmax over the candidates of this script of words + n-grams + prior (log scores)."""
        if prior or len(span) > _CACHED_SPAN_CHARS:
            return self._score_span(span, cyrillic, prior)
        key = (span, cyrillic)
        found = self._span_cache.get(key)
        if found is None:
            found = self._score_span(span, cyrillic, None)
            if len(self._span_cache) < _SPAN_CACHE_SIZE:
                self._span_cache[key] = found
        return found

    def _score_span(self, span: str, cyrillic: bool, prior: Mapping[str, float] | None) -> LanguageResult:
        columns = self._cyrillic_idx if cyrillic else self._latin_idx
        if not columns:
            return LanguageResult(UNDETERMINED, 0.0, "no-candidate")
        langs = self._cyrillic_langs if cyrillic else self._latin_langs
        cut = span.rfind(" ", 0, _SAMPLE_CHARS) if len(span) > _SAMPLE_CHARS + _SAMPLE_CHARS // 2 else -1
        if cut > 0:  # a long span: its first sentence or two usually settle it
            words, scores, known = self._word_scores(span[:cut], cyrillic, columns)
            if known * 2 < len(words) or _margin(scores) < _SAMPLE_MARGIN:
                cut = -1
        if cut <= 0:
            words, scores, known = self._word_scores(span[:_MAX_STATISTICAL_CHARS], cyrillic, columns)
        letters = sum(map(len, words))
        ngram: dict[str, float] = {}
        if letters >= _NGRAM_MIN_LETTERS and (known * 2 < len(words) or _margin(scores) < _NGRAM_MARGIN):
            ngram = self._ngram(span[:_MAX_STATISTICAL_CHARS])
        if ngram:
            weight = _NGRAM_WEIGHT * min(1.0, letters / _NGRAM_FULL_LETTERS)
            scores = [s + weight * math.log(max(ngram.get(lang, 0.0), _NGRAM_FLOOR))
                      for s, lang in zip(scores, langs, strict=True)]
        if not known and not ngram:
            return LanguageResult(UNDETERMINED, 0.0, "no-features")
        method = "words+ngrams" if known and ngram else ("words" if known else self.backend)
        lang, confidence = _best(scores, langs)
        if prior and _margin(scores) < _PRIOR_MAX_MARGIN:  # a close call: the customer's history may tip it
            tipped, tipped_confidence = _best([s + b for s, b in zip(scores, _prior_bias(prior, langs), strict=True)],
                                              langs)
            if self._answer(tipped, tipped_confidence) != self._answer(lang, confidence):
                method += "+prior"
            lang, confidence = tipped, tipped_confidence
        return LanguageResult(lang, confidence, method)

    def _word_scores(self, span: str, cyrillic: bool, columns: tuple[int, ...]) -> tuple[list[str], list[float], int]:
        """The span's words, their summed log-probabilities (natural log) per candidate, and how many are known."""
        words = words_of(span)
        word_scores, known = self.words.score(words, columns)
        scores = [_LN10 * s for s in word_scores]  # _WORD_WEIGHT is 1
        if not cyrillic and self._vi is not None and len(words) >= 2:
            pairs = _vi_pairs(words)
            if pairs:
                scores[self._vi] += _LN10 * _VI_PAIR_BONUS * pairs
        return words, scores, known

    def _ngram(self, span: str) -> dict[str, float]:
        core = getattr(self._factory, "_core", None)
        if self._seed_state is not None and core is not None:  # langdetect-rs without its Python Detector
            found = core.detect_langs(span, self._seed_state)
            return dict(found) if found else {}
        detector = self._factory.create()
        detector.append(span)
        try:
            ranked = detector.get_probabilities()
        except Exception:  # langdetect raises when the text has no features it knows
            return {}
        return {r.lang: r.prob for r in ranked}


# Languages the script rules answer without the statistical models.
_SCRIPT_DECIDED = frozenset({"zh", "ja", "ko", "ar", "fa", "ur", "zh-cn", "zh-tw"})


def _langdetect_profiles() -> dict[str, str]:
    """langdetect's own n-gram profiles (Apache-2.0), as JSON text per language."""
    import langdetect

    directory = Path(langdetect.__file__).parent / "profiles"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir()) if p.is_file()}


def _ngram_factory(backend: Backend, profiles: list[str]):
    if backend == "langdetect-rs":
        from langdetect_rs.detector_factory import DetectorFactory
    else:
        from langdetect.detector_factory import DetectorFactory
    factory = DetectorFactory()
    if len(profiles) >= 2:
        factory.load_json_profile(profiles)
    else:
        from langdetect_rs.detector_factory import PROFILES_DIRECTORY
        factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)  # langdetect is random unless seeded
    return factory


def _seed_state(backend: Backend) -> object | None:
    """langdetect-rs's seeded random state for its fast call, which gives what its Detector gives."""
    if backend != "langdetect-rs":
        return None
    try:
        from langdetect_rs._seed import seed_state
    except ImportError:
        return None
    return seed_state(0)


def _margin(scores: list[float]) -> float:
    """How far the best language leads the second, in log10 units."""
    if len(scores) < 2:
        return math.inf
    ranked = sorted(scores)
    return (ranked[-1] - ranked[-2]) / _LN10


def _vi_pairs(words: list[str]) -> int:
    """How many neighbouring words form a frequent Vietnamese pair typed without diacritics."""
    if _VI_PAIR_FIRSTS.isdisjoint(words):
        return 0
    return sum(map(_VI_BARE_PAIR_TUPLES.__contains__, itertools.pairwise(words)))


def _best(scores: list[float], langs: Sequence[str]) -> tuple[str, float]:
    """The language with the highest score and its softmax probability."""
    top = max(scores)
    odds = [math.exp(s - top) for s in scores]
    best = odds.index(max(odds))  # the first of equals, as the order of `languages` says
    return langs[best], odds[best] / sum(odds)


def _prior_bias(prior: Mapping[str, float], langs: Sequence[str]) -> list[float]:
    """log(floor + share) per language: a language the prior never saw keeps weight 0.1 against 1.0. Weights
    that add up to more than 1 are normalised; less than 1 is a weaker prior (a channel's mix alone)."""
    total = max(sum(max(w, 0.0) for w in prior.values()), 1.0)
    return [math.log(_PRIOR_FLOOR + max(prior.get(lang, 0.0), 0.0) / total) for lang in langs]


def _sanitise(text: str) -> str:
    """Same length as the input (segments keep their offsets): URLs, addresses, handles, lone
    surrogates and control characters become spaces."""
    text = text[:MAX_CHARS]
    if "@" in text or "://" in text or "www." in text:
        return _SANITISE.sub(lambda m: " " * len(m.group()), text)
    # without those marks only the one-character alternatives can match: a cheaper scan, usually nothing to do
    return printable(text)


def _pieces(text: str) -> list[_Piece]:
    """Script runs, with tiny runs joined to their neighbour, and long Latin or Cyrillic runs split
    into blocks (paragraphs, quoted lines) when the text has several lines."""
    runs = _join_tiny(script_runs(text))
    if "\n" not in text:
        return [_Piece(r.start, r.end, r.group, r.letters) for r in runs]
    pieces: list[_Piece] = []
    for run in runs:
        pieces.extend(_blocks(text, run))
    for piece in pieces:  # the `>` of a quoted line sits before the piece's first letter
        piece.quoted = _quoted(text[text.rfind("\n", 0, piece.start) + 1:piece.end])
    return pieces


def _join_tiny(runs: list[ScriptRun]) -> list[ScriptRun]:
    if len(runs) < 2:
        return runs
    out: list[ScriptRun] = []
    for run in runs:
        if out and (run.letters < _MIN_RUN_LETTERS or run.group == out[-1].group):
            last = out[-1]
            out[-1] = ScriptRun(last.start, run.end, last.group, last.letters + run.letters)
        elif out and out[-1].letters < _MIN_RUN_LETTERS:
            last = out[-1]
            out[-1] = ScriptRun(last.start, run.end, run.group, last.letters + run.letters)
        else:
            out.append(run)
    return out


def _blocks(text: str, run: ScriptRun) -> list[_Piece]:
    span = text[run.start:run.end]
    if run.group not in STATISTICAL or run.letters < 2 * _MIN_BLOCK_LETTERS or "\n" not in span:
        return [_Piece(run.start, run.end, run.group, run.letters, _quoted(span))]
    pieces: list[_Piece] = []
    for start, end, quoted in _raw_blocks(span):
        letters = sum(map(str.isalpha, span[start:end]))
        if not letters:
            continue
        last = pieces[-1] if pieces else None
        if last is not None and (letters < _MIN_BLOCK_LETTERS or last.letters < _MIN_BLOCK_LETTERS):
            pieces[-1] = _Piece(last.start, run.start + end, run.group, last.letters + letters,
                                last.quoted and quoted)
        else:
            pieces.append(_Piece(run.start + start, run.start + end, run.group, letters, quoted))
    return pieces or [_Piece(run.start, run.end, run.group, run.letters)]


def _raw_blocks(span: str) -> Iterator[tuple[int, int, bool]]:
    """Paragraphs: split at blank lines and where quoted lines (`>`) start or stop."""
    start, offset, quoted = 0, 0, False
    for line in span.splitlines(keepends=True):
        stripped = line.strip()
        line_quoted = stripped.startswith(">")
        if not stripped or (offset > start and line_quoted != quoted):
            if offset > start:
                yield start, offset, quoted
            start = offset if stripped else offset + len(line)
        if stripped:
            quoted = line_quoted
        offset += len(line)
    if offset > start:
        yield start, offset, quoted


def _quoted(part: str) -> bool:
    lines = [line for line in part.splitlines() if line.strip()]
    return bool(lines) and sum(line.lstrip().startswith(">") for line in lines) * 2 > len(lines)
