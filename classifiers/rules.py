"""The explainable rule baseline: per-language lexicons (YAML, edited by operators) scored into
a type, a complaint category and urgency signals, each with the rule that fired as its reason.

Phrases match whole words in spaced scripts and as substrings in Chinese and Japanese; regexes
run on the NFKC-normalised, case-folded text with Greek accents removed (cues are folded the same
way, so accented and accent-free Greek both match). Languages without a lexicon use all of them.

Complaint and praise cues are polarity cues: a negator just before one flips it to the other side
("not good" is a complaint cue, "not bad" a mild praise cue), an intensifier raises its weight,
and cues after a contrast word ("good, but ...") count double, those before it half.
"""

from __future__ import annotations

import re

try:  # Python 3.11+: the regex parser lives in re._parser
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants
    import sre_parse  # type: ignore[no-redef]
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from classifiers import filler
from classifiers.filler import BareVerdictWords
from classifiers.labels import CATEGORIES, TYPES, URGENCIES, URGENCY_SIGNALS, Labels
from classifiers.normalise import GREEK_FOLD, fold, printable

RULES_DIR = Path(__file__).with_name("rules")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the lexicons ten times faster


class _StrictLoader(_YAML_LOADER):  # type: ignore[misc,valid-type]
    """A key given twice is an error: YAML would keep the second list and silently drop the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        first_line: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor" may repeat
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, str | int | float | bool | None):  # a list or mapping as a key
                raise yaml.constructor.ConstructorError(None, None, f"a key must be a name, not {key!r}",
                                                        key_node.start_mark)
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {first_line[key]})", key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)
MODIFIERS = ("negation", "intensifier", "contrast")
_UNSPACED = {"zh", "ja"}
_POLAR = {"complaint": "praise", "praise": "complaint"}
_NEGATION_WINDOW = {"spaced": 14, "unspaced": 3}  # characters between a negator's end and the cue
_CLAUSE_BREAK = re.compile(r"[.!?;,:\n。！？；，、…]")


class RulesError(ValueError):
    """A lexicon file is invalid; the message names the file and key."""


class Cue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    phrase: str | None = None
    regex: str | None = None
    weight: float = Field(default=1.0, gt=0)
    # False for a topic rather than a verdict ("refund"): "not refunded" is no praise
    negatable: bool = True
    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)
    _parsed: object = PrivateAttr(default=None)  # the regex's parse, kept: parsing is most of the load time

    @model_validator(mode="after")
    def _one_of(self) -> Cue:
        if (self.phrase is None) == (self.regex is None):
            raise ValueError("give exactly one of phrase or regex")
        if self.phrase is not None and not self.phrase.strip():
            raise ValueError("empty phrase: it would match every message")
        if self.regex is not None:
            try:
                self._pattern = re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from exc
            self._parsed = sre_parse.parse(self.regex)
            if self._parsed.getwidth()[0] == 0:  # type: ignore[attr-defined]
                raise ValueError("regex can match empty text: it would fire on every message")
        return self


class Lexicon(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    lang: str
    types: dict[str, list[Cue]] = Field(default_factory=dict)
    categories: dict[str, list[Cue]] = Field(default_factory=dict)
    urgency: dict[str, list[Cue]] = Field(default_factory=dict)
    modifiers: dict[str, list[Cue]] = Field(default_factory=dict)
    # words that alone say nothing about what was good or bad (classifiers/filler.py)
    bare_verdict: BareVerdictWords | None = None

    @model_validator(mode="after")
    def _known_keys(self) -> Lexicon:
        for section, allowed in (("types", TYPES), ("categories", CATEGORIES), ("urgency", URGENCY_SIGNALS),
                                 ("modifiers", MODIFIERS)):
            unknown = set(getattr(self, section)) - set(allowed)
            if unknown:
                raise ValueError(f"{section}: unknown keys {sorted(unknown)}; allowed {list(allowed)}")
        return self


@dataclass(frozen=True, slots=True)
class _Compiled:
    label: str
    pattern: re.Pattern[str]
    weight: float
    source: str
    needles: tuple[str, ...]  # the pattern can only match text containing one of these
    reach: int  # the longest match (lookarounds aside), -1 when unbounded: no match starts further
    # than this before the first needle found
    negatable: bool = True


_MAX_VARIANTS = 256  # spellings of one needle set: the lookup tables take thousands
_RARE_ASCII = frozenset("*#@$%^&=+~|<>[]{}\\_`")
_FIRST_SYMBOL = "\u2000"  # punctuation, symbols, emoji, kana, ideographs, Hangul: none is in every text


def _exact(op: object, value: object) -> tuple[str, ...] | None:
    """Every string an item matches, when that is a small finite set: a literal, a small literal
    class, an optional item, or a group or alternation made of such items."""
    if op is sre_constants.LITERAL:
        return (chr(value),)  # type: ignore[arg-type]
    if op is sre_constants.IN and len(value) <= 32 and all(o is sre_constants.LITERAL for o, _ in value):  # type: ignore[arg-type]
        return tuple(chr(v) for _, v in value)  # type: ignore[union-attr]
    if op is sre_constants.SUBPATTERN and not value[1] & re.IGNORECASE:  # type: ignore[index]
        return _exact_sequence(list(value[-1]))  # type: ignore[index]
    if op is sre_constants.BRANCH:
        options = [_exact_sequence(list(branch)) for branch in value[1]]  # type: ignore[index]
        if all(o is not None for o in options) and sum(map(len, options)) <= _MAX_VARIANTS:  # type: ignore[arg-type]
            return tuple(dict.fromkeys(s for option in options for s in option))  # type: ignore[union-attr]
        return None
    if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and value[0] == 0 and value[1] == 1:  # type: ignore[index]
        inner = _exact_sequence(list(value[2]))  # type: ignore[index]
        return None if inner is None else tuple(dict.fromkeys(("", *inner)))
    return None


def _exact_sequence(items: list[tuple[object, object]]) -> tuple[str, ...] | None:
    strings: tuple[str, ...] = ("",)
    for op, value in items:
        choices = _exact(op, value)
        if choices is None or len(strings) * len(choices) > _MAX_VARIANTS:
            return None
        strings = tuple(run + ch for run in strings for ch in choices)
    return strings


def _needles(items: list[tuple[object, object]]) -> tuple[str, ...]:
    """Strings one of which every match of this sequence contains (empty: no cheap test).
    Runs of items with a few exact spellings (literals, small classes such as `[坏壞]`, groups and
    alternations of them, spelled out) and other alternations are candidates; the longest, with the
    fewest variants, wins."""
    candidates: list[tuple[str, ...]] = []
    current: tuple[str, ...] = ("",)
    for op, value in items:
        choices = _exact(op, value)
        if choices is not None and len(current) * len(choices) <= _MAX_VARIANTS:
            current = tuple(run + ch for run in current for ch in choices)
            continue
        candidates.append(current)
        current = choices if choices is not None else ("",)
        if op is sre_constants.BRANCH:
            options = [_needles(list(branch)) for branch in value[1]]  # type: ignore[index]
            if all(options):
                candidates.append(tuple(n for option in options for n in option))
        elif op is sre_constants.SUBPATTERN and not value[1] & re.IGNORECASE:  # type: ignore[index]
            candidates.append(_needles(list(value[-1])))  # type: ignore[index]
    candidates.append(current)
    usable = [_shortest(c) for c in candidates if c and all(map(_selective, c))]
    if not usable:
        return ()
    return max(usable, key=lambda c: (min(min(map(len, c)), 3), -len(c), min(map(len, c))))


def _shortest(needles: tuple[str, ...]) -> tuple[str, ...]:
    """Without the needles that contain another one (finding "yz" is enough for "xyz" too)."""
    unique = tuple(dict.fromkeys(needles))
    kept: list[str] = []
    for needle in sorted(unique, key=len):  # only a shorter needle can be inside another
        if not any(m in needle for m in kept):
            kept.append(needle)
    keep = set(kept)
    return tuple(n for n in unique if n in keep)


def _selective(needle: str) -> bool:
    """Whether finding this literal is rare enough to be worth a test: one Latin letter is in every
    text, one Chinese character, emoji or a symbol such as "*" is not."""
    return len(needle) >= 2 or (len(needle) == 1 and (needle >= _FIRST_SYMBOL or needle in _RARE_ASCII))


def required_literals(pattern: str) -> tuple[str, ...]:
    """Literals one of which any match must contain, or () when there is no such cheap test.
    Checking them with `in` is far cheaper than running hundreds of regexes on every message."""
    return _analyse(pattern)[0]


def _analyse(pattern: str, parsed: Any = None) -> tuple[tuple[str, ...], int]:
    """The required literals and the longest match (-1: unbounded), from one parse of the pattern
    (`parsed` when the caller has it): parsing is most of what loading the lexicons costs."""
    try:
        parsed = parsed if parsed is not None else sre_parse.parse(pattern)
    except re.error:
        return (), -1
    longest = parsed.getwidth()[1]
    reach = longest if longest < sre_constants.MAXREPEAT else -1
    return (() if parsed.state.flags & re.IGNORECASE else _needles(list(parsed))), reach


def _compile(lang: str, label: str, cue: Cue) -> _Compiled:
    if cue.regex is not None:
        source = cue.regex.translate(GREEK_FOLD)
        # the cue compiled and parsed its regex when it was validated; folding seldom changes it
        unchanged = source == cue.regex and cue._pattern is not None
        pattern = cue._pattern if unchanged else re.compile(source)
        analysis = _analyse(source, cue._parsed if unchanged else None)
        return _Compiled(label, pattern, cue.weight, f"regex {cue.regex!r}", *analysis, cue.negatable)
    folded = fold(cue.phrase)  # type: ignore[arg-type]
    phrase = re.escape(folded)
    body = phrase if lang in _UNSPACED else rf"(?<!\w){phrase}(?!\w)"
    return _Compiled(label, re.compile(body), cue.weight, f"phrase {cue.phrase!r}", (folded,), len(folded),
                     cue.negatable)


def _line_of(source: str, loc: tuple[int | str, ...]) -> int | None:
    """The line (1-based) of the deepest YAML node on the path `loc`, to point an operator at it."""
    try:
        node = yaml.compose(source)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if str(k.value) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def load_lexicon(path: Path) -> Lexicon:
    source = path.read_text(encoding="utf-8")
    try:
        lexicon = Lexicon.model_validate(yaml.load(source, Loader=_StrictLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesError(f"{where}: not valid YAML: {problem}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        line = _line_of(source, tuple(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        unknown = re.search(r"unknown keys \['([^']+)'", message)
        if unknown:  # a model-level check has no path: find the key itself
            found = re.search(rf"^[ \t]*{re.escape(unknown.group(1))}[ \t]*:", source, re.MULTILINE)
            line = source.count("\n", 0, found.start()) + 1 if found else line
        raise RulesError(f"{path}{f':{line}' if line else ''}: {f'{key}: ' if key else ''}{message}") from None
    if lexicon.lang != path.stem:  # the file name is what the pipeline looks a language up by
        found = re.search(r"^lang[ \t]*:", source, re.MULTILINE)
        line = source.count("\n", 0, found.start()) + 1 if found else 1
        raise RulesError(f"{path}:{line}: lang: {lexicon.lang!r} differs from the file name ({path.stem}.yaml)")
    return lexicon


def _compile_lexicon(lex: Lexicon) -> list[tuple[str, _Compiled]]:
    return [(section, _compile(lex.lang, label, cue))
            for section in ("types", "categories", "urgency", "modifiers")
            for label, cues in getattr(lex, section).items() for cue in cues]


class _LangRules:
    """All cues of some lexicons, found in one pass: an Aho-Corasick automaton finds the literals the
    cues need, and only the cues whose literals occur run their regexes, from just before the first one."""

    def __init__(self, cues: list[tuple[str, _Compiled]]) -> None:
        self.cues = cues
        self.always = [i for i, (_, cue) in enumerate(self.cues) if not cue.needles]
        by_needle: dict[str, list[int]] = defaultdict(list)
        for i, (_, cue) in enumerate(self.cues):
            for needle in cue.needles:
                by_needle[needle].append(i)
        self.automaton = ahocorasick.Automaton()
        for needle, indices in by_needle.items():
            self.automaton.add_word(needle, (len(needle), tuple(indices)))
        if len(self.automaton):
            self.automaton.make_automaton()

    def matches(self, text: str) -> dict[str, list[tuple[_Compiled, re.Match[str]]]]:
        first: dict[int, int] = dict.fromkeys(self.always, 0)  # cue -> where its first needle starts
        if self.automaton.kind == ahocorasick.AHOCORASICK:
            for end, (length, indices) in self.automaton.iter(text):
                start = end - length + 1  # hits come in order of their ends, not their starts
                for i in indices:
                    if first.get(i, start) >= start:
                        first[i] = start
        found: dict[str, list[tuple[_Compiled, re.Match[str]]]] = defaultdict(list)
        for i in sorted(first):
            section, cue = self.cues[i]
            # no match starts before this: it would have to contain a needle found earlier
            match = cue.pattern.search(text, max(0, first[i] - cue.reach) if cue.reach >= 0 else 0)
            if match:
                found[section].append((cue, match))
        return found


def _score(matched: list[tuple[_Compiled, re.Match[str]]]) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Score per label, and the reasons: the words that matched (and the cue's weight)."""
    scores: dict[str, float] = defaultdict(float)
    why: dict[str, list[str]] = defaultdict(list)
    for cue, match in matched:
        scores[cue.label] += cue.weight
        why[cue.label].append(f"{match.group(0).strip()!r}" + (f" x{cue.weight:g}" if cue.weight != 1 else ""))
    return scores, why


def _preceded(text: str, start: int, spans: list[tuple[int, int]], window: int) -> str | None:
    """The modifier ending at most `window` characters before `start`, in the same clause."""
    for m_start, m_end in spans:
        if m_end <= start and start - m_end <= window and not _CLAUSE_BREAK.search(text, m_end, start):
            return text[m_start:m_end]
    return None


_SENTENCE_END = re.compile(r"[.!?;。！？；\n]")


def _in_question(text: str, end: int, lang: str) -> bool:
    """Whether the sentence around `end` ends in a question mark ("is the delivery free?"): a praise
    word there asks about something rather than praising it. Greek asks with ";"."""
    found = _SENTENCE_END.search(text, end)
    return found is not None and (found.group(0) in "?？" or (lang == "el" and found.group(0) == ";"))


def _score_types(text: str, found: dict[str, list[tuple[_Compiled, re.Match[str]]]], lang: str
                 ) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Type scores with negation, intensifiers and contrast applied to the polarity cues."""
    modifiers: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for cue, _ in found["modifiers"]:  # every occurrence, not only the first
        modifiers[cue.label].extend(m.span() for m in cue.pattern.finditer(text))
    window = _NEGATION_WINDOW["unspaced" if lang in _UNSPACED else "spaced"]
    pivot = max((end for _, end in modifiers["contrast"]), default=-1)
    scores: dict[str, float] = defaultdict(float)
    why: dict[str, list[str]] = defaultdict(list)
    for cue, match in found["types"]:
        label, weight, note = cue.label, cue.weight, ""
        if label in _POLAR:
            start = match.start()
            negator = _preceded(text, start, modifiers["negation"], window) if cue.negatable else None
            if negator is not None:
                label, note = _POLAR[label], f" negated by {negator.strip()!r}"
                weight = weight if label == "complaint" else weight / 2
            elif _preceded(text, start, modifiers["intensifier"], window) is not None:
                weight, note = weight * 1.5, " intensified"
            if pivot >= 0:
                weight, note = (weight * 2, note + " after contrast") if start >= pivot else (weight / 2, note)
            if label == "praise" and _in_question(text, match.end(), lang):
                weight, note = weight / 2, note + " in a question"
        scores[label] += weight
        why[label].append(f"{match.group(0).strip()!r}" + (f" x{weight:g}" if weight != 1 else "") + note)
    return scores, why


_MASH = re.compile(r"[bcdfghjklmnpqrstvwxzBCDFGHJKLMNPQRSTVWXZ]{6,}")  # cheaper than re.IGNORECASE
_STUTTER = re.compile(r"(\w)\1{9,}|(\w{2,4})\2{5,}")
_STUTTER_ROOM = re.compile(r"\w{10,}")  # a stutter lies inside one word run: scanning only those is cheaper
_LAUGHTER = {"ha", "he", "hi", "hu", "ah", "eh", "ih", "haha", "hehe", "hihi", "kaka", "keke", "ja", "xa",
             "ха", "хе", "χα"}
_URLISH = re.compile(r"https?://|www\.|\.(com|net|org|vn|ru|gr|cn)\b|@")
_LETTER = re.compile(r"[^\W\d_]")
_LONG_WORD = {"vi": 15}  # Vietnamese syllables have at most 7 letters: a 15-letter Latin run is not a word
_ANY_LONG_WORD = 30
_LONG_LATIN_RUN = {n: re.compile(rf"[a-zA-Z]{{{n},}}") for n in {*_LONG_WORD.values(), _ANY_LONG_WORD}}
_PICTOGRAPH = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF]")
_NOISE_SCAN = 2000  # characters: noise shows early, and a megabyte of text must stay cheap
# noise outweighs a typical praise phrase or two: a review padded with mashing to reach a length
# or earn a reward is not a sincere message; alone it stays below the confidence where rules decide
NOISE_WEIGHT = 6
NOISE_CONFIDENCE = 0.6
# padding (mashing, a stretched letter, a pasted chunk) outweighs any praise when no complaint cue is
# present: padded praise is reward farming and costs little when taken for spam, while a complaint
# padded the same way must still reach the queue. An emoji flood is too often sincere enthusiasm.
_PADDING = ("keyboard mashing", "stutter", "pasted over and over")
# Filler (classifiers/filler.py) outweighs all other cues together by this much, which keeps the rules'
# confidence above 0.5 (combine.RULES_SPAM)
FILLER_MARGIN = 1.0


def _repeated_chunk(words: list[str]) -> str | None:
    """A three-word chunk pasted over and over: the text is mostly copies of it."""
    # a chunk with n copies (overlapping ones included) has a word seen n times, and 3n must reach 60%
    # of the words: counting words first is cheaper than counting every three-word window
    if len(words) < 12 or max(Counter(words).values()) * 3 < len(words) * 0.6:
        return None
    chunk, n = Counter(zip(words, words[1:], words[2:], strict=False)).most_common(1)[0]
    return " ".join(chunk) if n >= 4 and n * 3 >= len(words) * 0.6 else None


def gibberish(text: str, lang: str = "und") -> str | None:
    """The evidence that a text is noise rather than a message: keyboard mashing (six Latin
    consonants in a row, at least three different ones, or a Latin run far longer than any word
    of the language), one letter ten times or a short unit six times over ("okokokokokok", not
    laughter), the same few words pasted again and again, a flood of emoji, or symbols without a
    single letter. Stretched letters up to nine ("luônnnnn") are emphasis, not noise."""
    text = text[:_NOISE_SCAN]
    for match in _MASH.finditer(text):
        run = match.group(0).lower()
        token = text[text.rfind(" ", 0, match.start()) + 1:match.end() + 40].split(None, 1)[0]
        if len(set(run)) >= 3 and not _URLISH.search(token):
            return f"keyboard mashing {token[:24]!r}"
    for match in _LONG_LATIN_RUN[_LONG_WORD.get(lang, _ANY_LONG_WORD)].finditer(text):
        if len(set(match.group(0).lower())) >= 4:
            token = text[text.rfind(" ", 0, match.start()) + 1:match.end() + 40].split(None, 1)[0]
            if not _URLISH.search(token):
                return f"keyboard mashing {match.group(0)[:24]!r}"
    for room in _STUTTER_ROOM.finditer(text):
        for match in _STUTTER.finditer(room.group(0)):
            if (match.group(2) or "").lower() not in _LAUGHTER:
                return f"stutter {match.group(0)[:16]!r}"
    chunk = _repeated_chunk(text.lower().split())
    if chunk is not None:
        return f"pasted over and over {chunk[:24]!r}"
    stripped = "".join(text.split())
    pictographs = len(_PICTOGRAPH.findall(stripped))
    if pictographs >= 10 and pictographs >= len(stripped) * 0.4:
        return f"{pictographs} emoji"
    if len(stripped) >= 5 and not _LETTER.search(stripped):
        return f"no letters {stripped[:12]!r}"
    return None


def _shouting(text: str) -> bool:
    """Mostly capitals: at least 12 cased letters, over 60% of them upper case."""
    lower = text.lower()
    if lower == text:  # no capitals, or a script without case
        return False
    upper = text.upper()
    if len(lower) != len(text) or len(upper) != len(text):  # a letter such as "ß" changes length
        letters = [ch for ch in text if ch.isalpha() and (ch.isupper() or ch.islower())]
        return len(letters) >= 12 and sum(ch.isupper() for ch in letters) / len(letters) > 0.6
    # a capital changes when lowered, a small letter when uppercased
    capitals, small = _changed(text, lower), _changed(text, upper)
    return capitals + small >= 12 and capitals / (capitals + small) > 0.6


def _changed(text: str, other: str) -> int:
    """How many characters differ between two strings of one length: compared as code point arrays,
    far cheaper than a character loop in Python."""
    return int(np.count_nonzero(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
                                != np.frombuffer(other.encode("utf-32-le"), dtype=np.uint32)))


def rule_files(rules_dir: Path) -> list[Path]:
    """The lexicons of a folder: `<lang>.yaml`, not the hidden temporary files an editor saves through."""
    return sorted(p for p in rules_dir.glob("*.yaml") if not p.name.startswith("."))


class RuleClassifier:
    """Scores a message against the lexicon of its language (all lexicons when it has none)."""

    name = "rules"

    def __init__(self, rules_dir: Path = RULES_DIR) -> None:
        lexicons = [load_lexicon(path) for path in rule_files(rules_dir)]
        compiled = {lex.lang: _compile_lexicon(lex) for lex in lexicons}
        self._by_lang = {lang: _LangRules(cues) for lang, cues in compiled.items()}
        self._fallback = _LangRules([cue for cues in compiled.values() for cue in cues])
        self._bare = {lex.lang: filler.bare_verdict(lex.bare_verdict, lex.lang, lex.lang not in _UNSPACED)
                      for lex in lexicons}
        everyone = filler.merged([lex.bare_verdict for lex in lexicons if lex.bare_verdict is not None])
        self._bare_fallback = filler.bare_verdict(everyone, "und", spaced=True)
        self.languages = frozenset(compiled)

    def _filler(self, text: str, folded: str, lang: str, praise_only: bool) -> str | None:
        """Why a text with no complaint cue is filler rather than a message (classifiers/filler.py)."""
        if filler.no_words(text):
            return f"no content: no words {text.strip()[:12]!r}"
        bare = self._bare.get(lang, self._bare_fallback)
        if bare is not None and bare.match(folded):
            return f"no content: only verdict words {text.strip()[:32]!r}"
        pasted = filler.pasted_again(folded) if praise_only else None
        return None if pasted is None else f"pasted again {pasted[:32]!r}"

    def classify(self, text: str, lang: str, *, public: bool = False, repeat_contacts: int = 0,
                 vip: bool = False, conversation: bool = False) -> Labels:
        """`conversation`: the message is part of a dialogue (chat, email, a call), where a bare "ok" or
        "great" answers someone and is not filler."""
        rules = self._by_lang.get(lang, self._fallback)
        text = printable(text)
        folded = fold(text)
        found = rules.matches(folded)
        type_scores, type_why = _score_types(folded, found, lang)
        noise = gibberish(text, lang)
        if noise is not None:
            type_scores["spam"] += NOISE_WEIGHT
            type_why["spam"].append(noise)
        signals, signal_why = _score(found["urgency"])
        for harm in ("safety", "security"):  # someone reporting harm is complaining, even in a question
            if harm in signals:
                type_scores["complaint"] += 2
                type_why["complaint"].append(f"{harm} signal")
        if noise is not None and noise.startswith(_PADDING) and not type_scores.get("complaint"):
            type_scores["spam"] += type_scores.get("praise", 0.0)
        if not conversation and not type_scores.get("complaint"):
            praise_only = bool(type_scores.get("praise")) and not (type_scores.get("inquiry")
                                                                  or type_scores.get("suggestion"))
            why = self._filler(text, folded, lang, praise_only)
            if why is not None:
                type_scores["spam"] = sum(type_scores.values()) + FILLER_MARGIN
                type_why["spam"].append(why)
        if "?" in text or "？" in text or (lang == "el" and ";" in text):  # Greek asks with ";"
            type_scores["inquiry"] += 1.0
            type_why["inquiry"].append("question mark")
        reasons: list[str] = []
        if type_scores:
            ranked = sorted(type_scores.items(), key=lambda kv: (-kv[1], TYPES.index(kv[0])))
            msg_type, best = ranked[0]
            total = sum(type_scores.values())
            confidence = round(best / total * min(1.0, 0.5 + best / 4), 3)
            if msg_type == "spam" and noise is not None and best <= NOISE_WEIGHT:  # noise alone: a weaker signal
                confidence = min(confidence, NOISE_CONFIDENCE)
            reasons.append(f"type {msg_type}: " + ", ".join(type_why[msg_type][:4]))
        else:
            msg_type, confidence = "inquiry", 0.2
            reasons.append("type inquiry: no cue matched (default)")

        category = None
        if msg_type == "complaint":
            cat_scores, cat_why = _score(found["categories"])
            if cat_scores:
                category = max(cat_scores.items(), key=lambda kv: (kv[1], -CATEGORIES.index(kv[0])))[0]
                reasons.append(f"category {category}: " + ", ".join(cat_why[category][:3]))
            else:
                category = "other"

        if _shouting(text) or "!!!" in text:
            signals["anger"] += 1
            signal_why["anger"].append("capitals or !!!")
        if public:
            signals["public"] += 1
            signal_why["public"].append("public post")
        bumps = (repeat_contacts >= 2) + vip
        urgency = urgency_for(msg_type, frozenset(signals), bumps)
        for name in URGENCY_SIGNALS:
            if name in signals:
                reasons.append(f"signal {name}: " + ", ".join(signal_why[name][:3]))
        if repeat_contacts >= 2:
            reasons.append(f"signal repeat_contact: {repeat_contacts} contacts")
        if vip:
            reasons.append("signal vip: customer is VIP")
        reasons.append(f"urgency {urgency}")
        scores = tuple((label, round(type_scores[label], 3)) for label in TYPES if type_scores.get(label))
        return Labels(msg_type, confidence, category, urgency, tuple(reasons), scores, frozenset(signals), bumps)


def urgency_for(msg_type: str, signals: frozenset[str], bumps: int = 0) -> str:
    """Urgency from the type and the signals found; `bumps` counts a repeat contact and a VIP."""
    level = 0 if msg_type in ("praise", "spam", "suggestion") else 1
    if msg_type == "spam":
        return URGENCIES[0]
    if signals & {"safety", "security"}:  # harm to a person or to their money cannot wait
        level = 3
    if signals & {"legal", "public"} and level:  # a public post of praise or a suggestion is not urgent
        level = max(level, 2)
    bumps += len(signals & {"anger", "deadline"})
    level = min(3, level + bumps) if level >= 2 else min(2, level + bumps)
    return URGENCIES[level]
