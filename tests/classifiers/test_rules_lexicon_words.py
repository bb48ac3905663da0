"""Lexicon entries that must not fire inside other words, and verdict cues (issue 5 fixes)."""

import pytest

from classifiers.rules import RuleClassifier


@pytest.fixture(scope="module")
def rules():
    return RuleClassifier()


def cues(rules, text, lang):
    return " ".join(rules.classify(text, lang).reasons)


@pytest.mark.parametrize("text, lang, word", [
    ("Ростелеком провёл свой ежегодный форум в Казани", "ru", "'рост'"),
    ("η τράπεζα διοργανώνει hackathon για φοιτητές", "el", "hack"),
    ("το καλοκαίρι άνοιξε νέο κατάστημα", "el", "'καλο'"),
    ("χρησιμοποιώ την εφαρμογή κάθε μέρα", "el", "χρησιμοποιω"),
    ("这次出差住在这里", "zh", "'差'"),
])
def test_a_cue_does_not_fire_inside_another_word(rules, text, lang, word):
    assert word not in cues(rules, text, lang)


def test_te_bie_is_not_a_negation(rules):
    assert rules.classify("房间特别好，服务也特别好", "zh").type == "praise"


@pytest.mark.parametrize("text, lang, expected", [
    ("总体来说很不错，就是早餐一般", "zh", "praise"),
    ("位置还行，但是总体感觉很差", "zh", "complaint"),
    ("почему опять не работает интернет?", "ru", "complaint"),
    ("когда уже почините связь?", "ru", "complaint"),
    ("опять рост тарифов, спасибо", "ru", "complaint"),
])
def test_verdicts_and_rhetorical_questions(rules, text, lang, expected):
    assert rules.classify(text, lang).type == expected


@pytest.mark.parametrize("text", [
    "Thông số kỹ thuật: Chất liệu nhựa ABS, Xuất xứ: Trung Quốc",
    "(QC) Ưu đãi cho thuê bao nhận được tin nhắn này, nhanh tay đăng ký",
])
def test_vi_listings_and_sms_ads_are_spam(rules, text):
    assert rules.classify(text, "vi").type == "spam"


def test_vi_manual_and_sale_in_a_review_are_not_spam(rules):
    text = "Máy đo chính xác, có kèm sách hướng dẫn sử dụng, mua đợt flash sale rẻ"
    assert rules.classify(text, "vi").type != "spam"
