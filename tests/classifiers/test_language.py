import pytest

from classifiers.language import LanguageDetector


@pytest.fixture(scope="module")
def detector():
    return LanguageDetector()


@pytest.mark.parametrize("text, lang", [
    ("Моя посылка не пришла уже две недели", "ru"), ("спасибо", "ru"),
    ("Η παραγγελία μου ήρθε χαλασμένη", "el"), ("谢谢", "zh"), ("我的订单还没有到", "zh"),
    ("Đơn hàng của tôi bị giao trễ", "vi"), ("cảm ơn", "vi"),
    ("don hang cua toi giao tre qua", "vi"), ("cam on shop nhe", "vi"),
    ("The parcel never arrived and support does not answer my emails", "en"),
    ("注文した商品がまだ届きません", "ja"), ("Дякую за допомогу, все працює", "uk"),
])
def test_detects(detector, text, lang):
    assert detector.detect(text).lang == lang


@pytest.mark.parametrize("text", ["12345", "👍", "", "  ...  ", "http://example.com/x"])
def test_no_letters_is_undetermined(detector, text):
    result = detector.detect(text)
    assert (result.lang, result.confidence) == ("und", 0.0)


def test_is_deterministic(detector):
    text = "ok thanks"
    assert len({detector.detect(text) for _ in range(20)}) == 1
    assert LanguageDetector().detect(text) == detector.detect(text)


def test_langdetect_backend_agrees_with_the_fast_one():
    fast, slow = LanguageDetector("langdetect-rs"), LanguageDetector("langdetect")
    texts = ["Where is my refund for the broken blender?", "Mi pedido llegó roto y quiero un reembolso",
             "Ich möchte meine Bestellung stornieren"]
    assert [fast.detect(t).lang for t in texts] == [slow.detect(t).lang for t in texts]
