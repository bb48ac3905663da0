"""The combined detector: bad input, mixed text, Vietnamese without marks, priors, candidates, the team set."""

from collections import Counter, defaultdict

import pytest

from classifiers.language import LanguageConfig, LanguageDetector
from classifiers.language_bench import TARGET_LANGS, mixed_items, team_items


@pytest.fixture(scope="module")
def detector():
    return LanguageDetector()


@pytest.mark.parametrize("text", [
    "", " ", "12345", "👍", "👍👍🔥", "+1 (555) 010-2030", "\x00\x01\x02", "\ud800\udfff", "...!!!???",
    "https://example.com/order/12345", "user@example.com", "\u200b\u200d\ufeff",
])
def test_text_without_letters_is_undetermined(detector, text):
    result = detector.detect(text)
    assert (result.lang, result.confidence) == ("und", 0.0)


@pytest.mark.parametrize("text, lang", [
    ("Моя посылка\ud800 не пришла уже две недели", "ru"),  # a lone surrogate inside
    ("Η παραγγελία\x00 μου\x07 ήρθε\x1b χαλασμένη", "el"),  # control characters
    ("\ufeffWhere is my parcel? It was due on Monday.", "en"),
    ("订单12345号还没有到，请尽快处理！！！", "zh"),
])
def test_noise_inside_text_does_not_change_the_answer(detector, text, lang):
    assert detector.detect(text).lang == lang


def test_a_megabyte_of_text_is_answered(detector):
    text = "Die Lieferung ist leider immer noch nicht angekommen. " * 20_000
    assert len(text) > 1_000_000
    result = detector.detect(text)
    assert result.lang == "de" and result.confidence > 0.9


def test_every_answer_has_a_confidence_between_0_and_1(detector):
    texts = [i.text for i in team_items()[::7]] + ["ok", "a", "x y z", "ß", "İ", "ǅ"]
    for result in detector.detect_batch(texts):
        assert 0.0 <= result.confidence <= 1.0
        assert result.lang == "und" or len(result.lang) == 2


def test_a_low_confidence_answer_is_undetermined():
    strict, lenient = LanguageDetector(min_confidence=0.9), LanguageDetector(min_confidence=0.0)
    assert lenient.detect("ok").lang != "und"
    assert strict.detect("ok").lang == "und"
    assert strict.detect("ok").confidence == lenient.detect("ok").confidence


@pytest.mark.parametrize("text", [
    "cam on shop", "cam on shop nhe", "don hang giao tre", "shop oi sao em chua nhan duoc hang",
    "cho em doi tra duoc khong", "bao gio thi hoan tien vay",
])
def test_vietnamese_without_diacritics(detector, text):
    assert detector.detect(text).lang == "vi"


@pytest.mark.parametrize("text, lang", [
    ("ok", "und"), ("12345 ok", "und"), ("谢谢", "zh"), ("駅はどこですか", "ja"), ("気持ち", "ja"), ("会社", "ja"),
    ("東京駅", "ja"), ("问题", "zh"), ("спасибо", "ru"), ("дякую", "uk"), ("gracias", "es"), ("obrigado", "pt"),
    ("danke", "de"), ("merci", "fr"), ("teşekkürler", "tr"), ("terimakasih", "id"), ("감사합니다", "ko"),
    ("ขอบคุณ", "th"), ("धन्यवाद", "hi"), ("شكرا", "ar"), ("ευχαριστώ", "el"),
])
def test_single_words(detector, text, lang):
    assert detector.detect(text).lang == lang


def test_greek_with_english_product_names_has_segments(detector):
    text = "Αγόρασα το Apple MacBook Air και το Magic Mouse, αλλά το ποντίκι δεν συνδέεται"
    result = detector.detect(text)
    assert result.lang == "el"
    langs = [s.lang for s in result.segments]
    assert "el" in langs and "en" in langs
    for s in result.segments:
        assert 0 <= s.start < s.end <= len(text)
    assert "MacBook" in "".join(text[s.start:s.end] for s in result.segments if s.lang == "en")


def test_russian_mail_quoting_an_english_one(detector):
    text = ("Добрый день, пересылаю ответ вашей службы, денег так и нет.\n\n"
            "> Thank you for contacting us. Your refund has been approved and will arrive within five business days.\n"
            "> Best regards, Customer Support")
    result = detector.detect(text)
    assert result.lang == "ru"  # the customer's own words, not the longer quote
    assert [s.lang for s in result.segments] == ["ru", "en"]
    assert text[result.segments[1].start:result.segments[1].end].lstrip(" >").startswith("Thank you")


def test_french_mail_quoting_english_splits_by_paragraph(detector):
    text = ("Bonjour, je vous transfère la réponse reçue hier, je ne comprends pas pourquoi.\n\n"
            "> Dear customer, we are sorry for the delay. Your parcel will be delivered tomorrow.")
    result = detector.detect(text)
    assert result.lang == "fr"
    assert [s.lang for s in result.segments] == ["fr", "en"]
    assert result.as_dict()["segments"][1]["lang"] == "en"


def test_single_language_text_has_no_segments(detector):
    result = detector.detect("Where is my order?\nIt was supposed to arrive on Monday.\n\nThanks, Anna")
    assert result.lang == "en" and result.segments == ()
    assert "segments" not in result.as_dict()


def test_mixed_team_set(detector):
    for item in mixed_items():
        result = detector.detect(item.text)
        assert result.lang == item.lang, item.text
        found = {s.lang for s in result.segments}
        if "\n" in item.text:  # a mail quoting another: both languages exactly
            assert found == set(item.segments), item.text
        else:  # product names: a segment apart, whatever language their letters suggest
            assert item.lang in found and len(result.segments) >= 2, item.text


def test_prior_decides_close_calls(detector):
    assert detector.detect("ok", prior={"de": 5.0}).lang == "de"
    assert detector.detect("ok", prior={"fr": 5.0}).lang == "fr"
    # a prior does not overrule clear evidence
    assert detector.detect("Where is my parcel, it is two weeks late", prior={"de": 100.0}).lang == "en"
    assert detector.detect("Где моя посылка", prior={"uk": 100.0}).lang == "ru"


def test_candidate_languages_limit_the_answers():
    only = LanguageDetector(languages=("en", "de", "ru"))
    assert only.detect("gracias por todo, muy amables").lang in ("en", "de", "und")
    assert only.detect("hola").lang in ("en", "de", "und")
    assert only.detect("дякую").lang in ("ru", "und")
    assert LanguageDetector.from_config(LanguageConfig(languages=("en", "de"))).detect("Danke schön").lang == "de"


def test_batch_gives_the_single_answers_and_is_deterministic(detector):
    texts = [i.text for i in team_items()[::11]]
    batch = detector.detect_batch(texts)
    assert batch == [detector.detect(t) for t in texts]
    assert LanguageDetector().detect_batch(texts) == batch


def test_langdetect_backend_stays_available():
    slow = LanguageDetector("langdetect")
    texts = ["Where is my refund for the broken blender?", "Mi pedido llegó roto y quiero un reembolso",
             "Ich möchte meine Bestellung stornieren", "Моя посылка не пришла"]
    assert [slow.detect(t).lang for t in texts] == ["en", "es", "de", "ru"]


def test_team_set_is_big_enough():
    counts = Counter((i.lang, i.kind) for i in team_items())
    for lang in TARGET_LANGS:
        assert counts[lang, "word"] >= 40, lang
        assert counts[lang, "pair"] >= 40, lang
        assert counts[lang, "sentence"] >= 20, lang


def test_team_set_meets_the_targets(detector):
    """The issue's targets on the team's own test set (sentences 99%, pairs 95%, words 88%)."""
    items = team_items()
    right: dict[str, list[bool]] = defaultdict(list)
    for item, result in zip(items, detector.detect_batch([i.text for i in items]), strict=True):
        right[item.kind].append(result.lang == item.lang)
    accuracy = {kind: sum(v) / len(v) for kind, v in right.items()}
    assert accuracy["sentence"] >= 0.99 and accuracy["pair"] >= 0.95 and accuracy["word"] >= 0.88, accuracy


def test_an_unsure_segment_is_und_not_a_stray_language():
    result = LanguageDetector().detect("Καλημέρα, το iPhone 15 Pro δεν φορτίζει")
    assert result.lang == "el"
    assert all(s.lang in ("el", "und") for s in result.segments), result.segments
