from dataclasses import dataclass

import pytest

from classifiers.combine import CombinedClassifier, Message
from classifiers.rules import RuleClassifier


@dataclass(frozen=True)
class _Prediction:
    label: str
    confidence: float
    scores: dict[str, float]


class _FixedModel:
    """Answers every text with the same probabilities: enough to see how the combination decides."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def predict(self, texts):
        label = max(self.scores, key=self.scores.__getitem__)
        return [_Prediction(label, self.scores[label], self.scores) for _ in texts]


@pytest.fixture(scope="module")
def rules():
    return RuleClassifier()


def _one(rules, scores, text, lang="en"):
    return CombinedClassifier(rules, _FixedModel(scores), "test", "type").classify([Message(text, lang)])[0]


def test_rule_polarity_overrides_a_model_leaning_the_other_way(rules):
    out = _one(rules, {"complaint": 0.6, "praise": 0.3, "inquiry": 0.1}, "Great service, very friendly staff")
    assert out["type"] == "praise"
    assert out["type_source"] == "rules+model:test"


def test_the_model_decides_when_the_rules_see_no_polarity(rules):
    out = _one(rules, {"complaint": 0.2, "praise": 0.1, "inquiry": 0.1, "suggestion": 0.6}, "hmm the blue one")
    assert (out["type"], out["type_source"]) == ("suggestion", "model:test")


def test_noise_found_by_the_rules_stays_spam(rules):
    out = _one(rules, {"praise": 0.9, "spam": 0.1}, "Hàng đẹp giao nhanh shkslwgwjwlwkwjwbwhwbwjwnqlqljqbwbq", "vi")
    assert out["type"] == "spam"


def test_polarity_does_not_override_stronger_other_cues(rules):
    out = _one(rules, {"inquiry": 0.7, "complaint": 0.2, "praise": 0.1}, "What are your opening hours on Saturday?")
    assert out["type"] == "inquiry"


@pytest.mark.parametrize(("text", "lang"), [
    ("@shop предложение: добавьте в приложение фильтр по пункту выдачи. Сейчас очень неудобно.", "ru"),
    ("Suggestion: please add a dark mode, the white screen is annoying at night.", "en"),
])
def test_clear_suggestion_cues_decide_over_a_model_that_reads_a_complaint(rules, text, lang):
    out = _one(rules, {"complaint": 0.95, "suggestion": 0.05}, text, lang)
    assert out["type"] == "suggestion", out["reasons"]
    assert any("clear suggestion cues decide" in r for r in out["reasons"])


def test_a_passing_suggestion_in_a_complaint_leaves_it_to_the_model(rules):
    out = _one(rules, {"complaint": 0.9, "suggestion": 0.1}, "The app keeps crashing, maybe add a fix?")
    assert out["type"] == "complaint"


@pytest.mark.parametrize(("text", "lang"), [
    ("Suggestion: answer your phone! I've called 5 times about my missing refund, my lawyer is next", "en"),
    ("@Shop_VN góp ý: nhân viên thái độ kém, tôi sẽ kiện", "vi"),
])
def test_a_complaint_or_threat_labelled_as_a_suggestion_stays_a_complaint(rules, text, lang):
    out = _one(rules, {"complaint": 0.9, "suggestion": 0.1}, text, lang)
    assert out["type"] == "complaint", out["reasons"]


def test_urgency_follows_the_final_type(rules):
    out = CombinedClassifier(rules, _FixedModel({"praise": 0.9, "inquiry": 0.1}), "test", "type").classify(
        [Message("Love the new app! Any plans for a dark mode?", "en", "twitter")])[0]
    assert (out["type"], out["urgency"]) == ("praise", "low"), out["reasons"]
    out = CombinedClassifier(rules, _FixedModel({"complaint": 0.9, "inquiry": 0.1}), "test", "type").classify(
        [Message("hmm the blue one, again", "en", "twitter")])[0]
    assert (out["type"], out["urgency"]) == ("complaint", "high"), out["reasons"]
