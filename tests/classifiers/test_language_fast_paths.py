"""The shortcuts taken for speed give what the long way gives."""

import pytest

from classifiers.language import LanguageDetector
from classifiers.language_bench import mixed_items, team_items
from classifiers.language_script import script_runs, sole_group
from classifiers.language_words import WORD, words_of

ODD = ["It's O’Neil's 2nd_time", "ǅemal ﬁle ²x", "İstanbul", "e\u0301te\u0301", "a_b c1d 'x' ''", "ẞtraße",
       "Đơn hàng #123 của tôi, giao trễ!!", "Привет,мир", "注文した商品がまだ届きません", "iPhone 15 Про", "", "   ",
       "ok👍ok", "Καλημέρα, το iPhone 15 Pro δεν φορτίζει", "שלום world", "สวัสดี ok", "مرحبا hello"]


@pytest.mark.parametrize("text", ODD + [i.text for i in team_items()[::25]])
def test_words_are_what_the_regular_expression_finds(text):
    assert words_of(text) == [w.replace("’", "'") for w in WORD.findall(text.casefold())]


@pytest.mark.parametrize("text", ODD + [i.text for i in team_items()[::25]] + [i.text for i in mixed_items()])
def test_the_one_script_shortcut_agrees_with_the_script_runs(text):
    runs = script_runs(text)
    group = sole_group(text)
    if group == "":
        assert runs == []
    elif group is not None:
        assert [(r.start, r.end, r.group) for r in runs] == [(0, len(text), group)]
    else:  # several groups, or letters outside the blocks the shortcut knows (ﬁ): the runs tell
        assert runs


def test_cached_answers_are_the_computed_ones():
    texts = ["ok", "eurobank", "Η Eurobank δεν απαντά", "спасибо", "cam on shop"] * 3
    warm = LanguageDetector()
    first = warm.detect_batch(texts)
    assert warm.detect_batch(texts) == first
    assert [LanguageDetector().detect(t) for t in texts] == first


def test_a_long_text_is_read_only_as_far_as_needed():
    detector = LanguageDetector()
    german = "Guten Tag, ich habe am Montag eine Bestellung aufgegeben und bis heute nichts erhalten. "
    assert detector.detect(german * 10).lang == "de"
    assert detector.detect(german * 10 + "and then a lot of English text follows here " * 50).lang == "de"


def _runs_word_by_word(text):
    """The script runs as first written: every word by its first letter's script."""
    from classifiers.language_script import _LETTERS, ScriptRun, group_of, script_of

    runs, start, group, letters = [], 0, "", 0
    for m in _LETTERS.finditer(text):
        word = m.group()
        g = group_of(script_of(word[0]))
        if g == group:
            letters += len(word)
            continue
        if group:
            runs.append(ScriptRun(start, m.start(), group, letters))
            start = m.start()
        group, letters = g, len(word)
    if group:
        runs.append(ScriptRun(start, len(text), group, letters))
    return runs


@pytest.mark.parametrize("text", [t for t in ODD if "²" not in t] + [i.text for i in mixed_items()] + [
    "iPhone 15 Про", "pаypal ok", "ok пpивет", "abc Ｆｕｌｌ def", "中文English日本語テスト한국어", "x\u0301y зз"])
def test_script_runs_jump_over_words_as_the_word_by_word_scan_would(text):
    assert script_runs(text) == _runs_word_by_word(text)


def test_a_letter_inside_a_scripts_blocks_counts_as_that_script():
    """The one difference from the word-by-word scan: "²x" no longer starts a SUPERSCRIPT run in Latin text."""
    assert [r.group for r in script_runs("ǅemal ﬁle ²x")] == ["LATIN"]
    assert [r.group for r in _runs_word_by_word("ǅemal ﬁle ²x")] == ["LATIN", "SUPERSCRIPT"]


def test_a_long_span_whose_start_is_unclear_is_read_further():
    """The first 80 characters are product names and numbers; the Spanish after them decides."""
    detector = LanguageDetector()
    start = "Samsung Galaxy S24 Ultra 512GB, Apple AirPods Pro 2, Sony WH-1000XM5, Xiaomi Redmi Note 13 Pro "
    spanish = "no funciona desde ayer y quiero que me devuelvan el dinero lo antes posible, gracias."
    assert len(start) > 80 and detector.detect(start).lang != "es"
    assert detector.detect(start + spanish).lang == "es"


@pytest.mark.parametrize("lang", ["en", "de", "fr", "es", "pt", "id", "tr", "vi", "ru", "uk"])
def test_long_texts_of_the_team_set_keep_their_language(lang):
    sentences = [i.text for i in team_items() if i.lang == lang and i.kind == "sentence"]
    detector = LanguageDetector()
    for i in range(0, len(sentences) - 3, 3):
        text = " ".join(sentences[i:i + 4])
        assert len(text) > 120
        assert detector.detect(text).lang == lang, text
