"""The prior (a customer's or channel's earlier languages) tips close calls and leaves clear text alone."""

import pytest

from classifiers.language import LanguageDetector

CLEAR = ["Where is my parcel, it is two weeks late", "Ich möchte meine Bestellung stornieren, bitte",
         "Mi pedido llegó roto y quiero un reembolso", "Где моя посылка, прошло уже две недели",
         "Η παραγγελία μου ήρθε χαλασμένη", "我的订单还没有到", "cam on shop nhe"]


@pytest.fixture(scope="module")
def detector():
    return LanguageDetector()


@pytest.mark.parametrize("text, lang", [("ok", "de"), ("ok", "pt"), ("ok", "en"), ("super", "es"),
                                        ("da", "de"), ("da", "pt"), ("no", "en"), ("no", "pt")])
def test_a_short_ambiguous_line_follows_the_prior(detector, text, lang):
    result = detector.detect(text, prior={lang: 3.0})
    assert result.lang == lang
    assert result.confidence >= detector.min_confidence


def test_without_a_prior_those_lines_are_unsure(detector):
    assert detector.detect("ok").lang == "und"
    assert detector.detect("super").lang == "und"
    assert detector.detect("da").confidence < 0.7


def test_the_method_says_when_the_prior_decided(detector):
    assert detector.detect("ok", prior={"de": 1.0}).method.endswith("+prior")
    assert not detector.detect("danke", prior={"de": 1.0}).method.endswith("+prior")  # de without it too


@pytest.mark.parametrize("text", CLEAR)
@pytest.mark.parametrize("prior", [{"de": 100.0}, {"pt": 1.0, "uk": 1.0}, {"vi": 5.0, "fr": 5.0}])
def test_clear_text_ignores_the_prior(detector, text, prior):
    assert detector.detect(text, prior=prior) == detector.detect(text)


def test_a_mixed_prior_favours_its_larger_share(detector):
    assert detector.detect("ok", prior={"de": 3.0, "pt": 1.0}).lang == "de"
    assert detector.detect("ok", prior={"de": 1.0, "pt": 3.0}).lang == "pt"


def test_a_prior_gives_no_language_to_text_without_letters(detector):
    for text in ("", "12345", "👍", "\ud800"):
        assert detector.detect(text, prior={"en": 10.0}).lang == "und"


def test_a_prior_outside_the_candidates_changes_nothing(detector):
    assert detector.detect("ok", prior={"da": 10.0}) == detector.detect("ok", prior={"da": 10.0, "xx": 0.0})
    assert detector.detect("ok", prior={"da": 10.0}).lang == "und"


def test_batch_takes_one_prior_per_text(detector):
    texts = ["ok", "ok", "ok", "Where is my parcel, it is two weeks late"]
    priors = [{"de": 1.0}, {"pt": 1.0}, None, {"de": 1.0}]
    found = detector.detect_batch(texts, priors=priors)
    assert [r.lang for r in found] == ["de", "pt", "und", "en"]
    assert found == [detector.detect(t, p) for t, p in zip(texts, priors, strict=True)]
    with pytest.raises(ValueError):
        detector.detect_batch(texts, priors=priors[:2])
