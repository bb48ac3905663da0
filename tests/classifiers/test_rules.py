import pytest

from classifiers.rules import RULES_DIR, RuleClassifier, RulesError, load_lexicon


@pytest.fixture(scope="module")
def rules():
    return RuleClassifier()


def test_every_shipped_lexicon_loads():
    langs = {load_lexicon(p).lang for p in RULES_DIR.glob("*.yaml")}
    assert {"en", "vi", "zh", "ru", "el"} <= langs


@pytest.mark.parametrize("text, lang, expected", [
    ("My order arrived broken and I want a refund", "en", "complaint"),
    ("Thank you so much, excellent service, I love it!", "en", "praise"),
    ("How do I change my delivery address?", "en", "inquiry"),
    ("Sản phẩm bị lỗi, tôi muốn hoàn tiền", "vi", "complaint"),
    ("san pham bi loi, toi muon hoan tien", "vi", "complaint"),
    ("商品质量太差了，我要退款", "zh", "complaint"),
    ("Верните деньги, товар сломался через день", "ru", "complaint"),
    ("Το προϊόν ήρθε χαλασμένο, θέλω επιστροφή χρημάτων", "el", "complaint"),
])
def test_types(rules, text, lang, expected):
    labels = rules.classify(text, lang)
    assert labels.type == expected, labels.reasons
    assert any(r.startswith(f"type {expected}") for r in labels.reasons)


def test_safety_makes_it_critical_with_the_reason(rules):
    labels = rules.classify("The charger caught fire and burned my hand", "en")
    assert labels.urgency == "critical"
    assert any(r.startswith("signal safety") for r in labels.reasons)


def test_public_post_and_anger_raise_urgency(rules):
    calm = rules.classify("My parcel is late", "en")
    loud = rules.classify("MY PARCEL IS LATE AGAIN!!! THIS IS UNACCEPTABLE", "en", public=True)
    order = ["low", "normal", "high", "critical"]
    assert order.index(loud.urgency) > order.index(calm.urgency)


def test_spam_is_low_urgency(rules):
    assert rules.classify("Earn money from home!!! Click here for a free casino bonus", "en").urgency == "low"


def test_unknown_language_uses_every_lexicon(rules):
    assert rules.classify("Верните деньги, товар сломался", "bg").type == "complaint"


def test_an_invalid_rule_names_the_file_and_key(tmp_path):
    (tmp_path / "xx.yaml").write_text("lang: xx\ntypes:\n  complaint:\n    - regex: '(unclosed'\n")
    with pytest.raises(RulesError, match=r"xx.yaml: types.complaint.0"):
        RuleClassifier(tmp_path)


def test_the_literal_prefilter_never_hides_a_match(rules):
    """Every cue that matches a real text must be found through its required literals."""
    import json

    from tests.conftest import ROOT, SAMPLES

    texts = [p.read_text(errors="ignore").casefold() for p in (ROOT.parent / "shared" / "seeds").glob("*.txt")]
    for path in (SAMPLES / "chat").glob("*.json"):
        texts += [m["text"].casefold() for m in json.loads(path.read_text())]
    texts += ["my order arrived broken!!! i want a refund now", "το προϊόν ήρθε χαλασμένο"]
    checked = 0
    for lang_rules in [*rules._by_lang.values()]:
        for _, cue in lang_rules.cues:
            for text in texts:
                if cue.pattern.search(text):
                    checked += 1
                    assert not cue.needles or any(n in text for n in cue.needles), (cue.source, cue.needles)
    assert checked > 50


@pytest.mark.parametrize("pattern, needles", [
    (r"\bне работа(ет|ют)\b", ("не работа",)), (r"\b(broken|damaged)\b", ("broken", "damaged")),
    (r"x?yz", ("yz",)), (r"(?i)refund", ()), (r"\b(a|b)c", ()), (r"colou?r", ("colo",)),
])
def test_required_literals(pattern, needles):
    from classifiers.rules import required_literals

    assert required_literals(pattern) == needles
