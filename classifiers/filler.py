"""Filler: a review or post with nothing in it to act on, which the rules type as spam when it has no
complaint cue (`RuleClassifier.classify`; not in conversations: chat, email and phone).

- a bare verdict: only a language's verdict words ("tốt", "good", "不错"), with its modifiers and
  particles ("rất", "very", "ạ", "哦") around them, punctuation and emoji, and no question mark:
  "Tốt", "rất đẹp ạ!!", "Good!!", "不错哦". It says nothing about what was good; on shops that pay
  for reviews it is the usual filler. A word naming a thing makes a review ("hàng tốt", "good price");
- no words: a short text with no digit, no question mark, no negative emoji and at most one letter
  of an alphabet ("...", "E", "👍👍"); one Chinese or Japanese character is a word ("不");
- a passage pasted again: one passage of five words or more, two or more times over (padding to a
  required length). The caller applies it to praise only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from classifiers.normalise import fold

_WORD = re.compile(r"\w+")
_STRETCH = re.compile(r"([^\W\d_])\1{2,}")  # a letter three times or more: "tốttt", "goood"; not "good", "100"
_DOUBLED = re.compile(r"([^\W\d_])\1+")
_QUESTION = re.compile(r"[?？❓❔⁉‽؟¿]")
_GREEK_QUESTION = ";"  # NFKC turns the Greek question mark (U+037E) into ";"
_DIGIT = re.compile(r"\d")
_IDEOGRAPH = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_ALPHABET_LETTER = re.compile(r"[^\W\d_]")
_NEGATIVE_MARK = re.compile(r"[👎😡🤬💔😠😤😞😢😭☹🙁😒😔😩😫]|[:;]-?[(\[/]|\)-?:")
_NO_WORDS_LENGTH = 40
_BARE_LENGTH = 200  # characters: a longer run of verdict words is padding, which the noise tests see
_PASTED_SCAN = 2000  # characters
MIN_PASSAGE = 5  # words


def _is_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} must be text: quote numbers and yes / no ('10', 'yes')")
    return value


def _one_phrase(value: str) -> str:
    words = value.split()
    if not words or _WORD.findall(value) != words:
        raise ValueError(f"{value!r} must be letters or digits only, words separated by spaces: text is "
                         "compared word by word, so punctuation in an entry would never match")
    return " ".join(words)


Phrase = Annotated[str, BeforeValidator(_is_text), AfterValidator(_one_phrase)]


class BareVerdictWords(BaseModel):
    """The `bare_verdict` section of a lexicon."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    verdicts: list[Phrase] = Field(description="words that give a verdict and nothing else: 'good', 'tốt'")
    modifiers: list[Phrase] = Field(default_factory=list,
                                    description="words that count only beside a verdict: 'very', 'rất', 'ạ'")


def _squeezed(word: str, one: bool) -> str:
    """The word with each stretched letter written once or twice ("goood" -> "god" or "good")."""
    return _STRETCH.sub(r"\1" if one else r"\1\1", word)


@dataclass(frozen=True, slots=True)
class BareVerdict:
    """Matches text made only of verdicts and modifiers, with at least one verdict."""

    entries: dict[tuple[str, ...], bool]  # an entry's units (words, or characters in Chinese) -> is a verdict
    words: frozenset[str]  # every unit of an entry
    longest: int
    spaced: bool
    greek: bool

    def match(self, folded: str) -> bool:
        if len(folded) > _BARE_LENGTH or _QUESTION.search(folded) or (self.greek and _GREEK_QUESTION in folded):
            return False
        runs = _WORD.findall(folded)
        if not self.spaced:  # Chinese: each run of characters on its own, a verdict in at least one
            covers = [self._covers(list(run)) for run in runs]
            return bool(covers) and None not in covers and any(covers)
        units = []
        for run in runs:  # most texts fail on their first word
            unit = self._known(run)
            if unit is None:
                return False
            units.append(unit)
        return bool(units) and self._covers(units) is True

    def _known(self, word: str) -> str | None:
        if word in self.words:
            return word
        if _STRETCH.search(word):
            for form in (_squeezed(word, one=False), _squeezed(word, one=True)):
                if form in self.words:
                    return form
        once = _DOUBLED.sub(r"\1", word)  # "okk", "tốtt": a letter typed twice for emphasis
        return once if once in self.words else None

    def _covers(self, units: list[str]) -> bool | None:
        """None when the units do not split into entries; else whether a split with a verdict exists.
        A pass over the positions, each reachable without and with a verdict so far: no split is missed."""
        reach: list[set[bool]] = [set() for _ in range(len(units) + 1)]
        reach[0].add(False)
        for start in range(len(units)):
            if not reach[start]:
                continue
            for size in range(1, min(self.longest, len(units) - start) + 1):
                verdict = self.entries.get(tuple(units[start:start + size]))
                if verdict is not None:
                    reach[start + size].update(had or verdict for had in reach[start])
        return (True in reach[-1]) if reach[-1] else None


def bare_verdict(words: BareVerdictWords | None, lang: str, spaced: bool) -> BareVerdict | None:
    if words is None or not words.verdicts:
        return None
    entries: dict[tuple[str, ...], bool] = {}
    for verdict, phrases in ((False, words.modifiers), (True, words.verdicts)):
        for phrase in phrases:
            folded = fold(phrase)
            entries[tuple(folded.split()) if spaced else tuple(folded.replace(" ", ""))] = verdict
    units = frozenset(unit for entry in entries for unit in entry)
    return BareVerdict(entries, units, max(map(len, entries)), spaced, lang == "el")


def merged(all_words: list[BareVerdictWords]) -> BareVerdictWords | None:
    """Every lexicon's words: for a language without a lexicon."""
    if not all_words:
        return None
    return BareVerdictWords(verdicts=[w for words in all_words for w in words.verdicts],
                            modifiers=[w for words in all_words for w in words.modifiers])


def no_words(text: str) -> bool:
    """A short text with nothing to read: no digit, question or negative emoji, at most one letter of
    an alphabet and no Chinese or Japanese character (each is a word)."""
    stripped = text.strip()
    return (0 < len(stripped) <= _NO_WORDS_LENGTH and len(_ALPHABET_LETTER.findall(stripped)) <= 1
            and not _DIGIT.search(stripped) and not _QUESTION.search(stripped)
            and not _IDEOGRAPH.search(stripped) and not _NEGATIVE_MARK.search(stripped))


def pasted_again(folded: str) -> str | None:
    """The passage a text is made of, when it is one passage of MIN_PASSAGE words or more pasted two or
    more times (the last copy may be cut short)."""
    text = folded[:_PASTED_SCAN]
    first = _WORD.search(text)
    if first is None or text.find(first.group(0), first.end()) < 0:  # most texts: the opening never recurs
        return None
    words = _WORD.findall(text)
    period = _shortest_period(words)
    unit = period * -(-MIN_PASSAGE // period)  # the shortest repeat of the period with MIN_PASSAGE words
    return " ".join(words[:unit]) if 2 * unit <= len(words) else None


def _shortest_period(words: list[str]) -> int:
    """The smallest p with words[i] == words[i - p] for every i >= p (Knuth-Morris-Pratt prefix function)."""
    border = [0] * len(words)
    for i in range(1, len(words)):
        k = border[i - 1]
        while k and words[i] != words[k]:
            k = border[k - 1]
        border[i] = k + 1 if words[i] == words[k] else 0
    return len(words) - border[-1] if words else 0
