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
    with pytest.raises(RulesError, match=r"xx.yaml:\d+: types.complaint.0"):
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


@pytest.mark.parametrize("lang, text", [
    ("zh", "房间太小了，隔音很差，不推荐！服务还可以吧？😡"), ("zh", "充电宝爆炸了 加微信 abc12345"),
    ("vi", "Giao hàng quá chậm, không hài lòng 😡 liên hệ 0912 345 678"), ("en", "STILL WAITING for my refund!!! 😡"),
    ("el", "Το προϊόν ήρθε χαλασμένο :("), ("ru", "Деньги списали дважды, не работает приложение))"),
])
def test_the_literal_lookup_finds_what_every_regex_finds(rules, lang, text):
    """The lookup by literals (automaton, characters, character pairs) picks out exactly the cues
    that running every cue's regex would match."""
    from classifiers.rules import fold

    folded = fold(text)
    lang_rules = rules._by_lang[lang]
    brute = sorted((cue.source, m.span()) for _, cue in lang_rules.cues if (m := cue.pattern.search(folded)))
    found = sorted((cue.source, m.span()) for matched in lang_rules.matches(folded).values() for cue, m in matched)
    assert found == brute and found


@pytest.mark.parametrize("pattern, needles", [
    (r"\bне работа(ет|ют)\b", ("не работает", "не работают")), (r"\b(broken|damaged)\b", ("broken", "damaged")),
    (r"x?yz", ("yz",)), (r"(?i)refund", ()), (r"\b(a|b)c", ("ac", "bc")), (r"colou?r", ("color", "colour")),
    (r"\b(a|b)", ()), ("(太|很)(硬|老)", ("太硬", "太老", "很硬", "很老")), ("(?<!不)差(?!不多)", ("差",)),
    ("[吗嗎]", ("吗", "嗎")), (r"(?i:ab)cd", ("cd",)), (r"\*\d{3}\*\d+#", ("*",)), (r"\.\d", ()),
])
def test_required_literals(pattern, needles):
    from classifiers.rules import required_literals

    assert required_literals(pattern) == needles


# Team-written urgency test: every safety and every fraud / security message is critical, in each language.
SAFETY_AND_FRAUD = {
    "en": ["The charger caught fire and burned my hand", "My son got food poisoning after eating your chicken",
           "I got an electric shock from the kettle", "Someone used my card without my permission",
           "There is a payment on my account I did not make, this is fraud", "My card was stolen yesterday",
           "my account has been hacked", "There is a fire in my kitchen caused by your heater",
           "There was broken glass in my food and my son cut his mouth"],
    "vi": ["Sạc điện thoại bị cháy nổ, con tôi bị bỏng tay", "Cả nhà bị ngộ độc sau khi ăn đồ của quán",
           "Tôi bị điện giật khi cắm ấm siêu tốc", "Tài khoản của tôi bị hack, có giao dịch lạ",
           "Thẻ của tôi bị đánh cắp", "tai khoan bi hack, mat tien trong tai khoan",
           "Đây là lừa đảo, tôi bị mất tiền trong tài khoản", "Có cháy trong bếp, do cái máy sưởi",
           "Có người lạ đã đăng nhập tài khoản của tôi và rút hết tiền"],
    "zh": ["充电器着火了，把我的手烧伤了", "吃了你们的外卖以后全家食物中毒", "热水壶漏电，我被电到了",
           "我的银行卡被盗刷了", "账户被盗，有一笔不是我本人的交易", "我遇到诈骗了，钱被转走了",
           "你们的取暖器引起了火灾", "外卖里有玻璃碎片，我孩子吃了嘴出血了"],
    "ru": ["Зарядка загорелась и обожгла мне руку", "После вашей шаурмы у всей семьи отравление",
           "Меня ударило током от чайника", "С моей карты украли деньги, это мошенничество",
           "Мой аккаунт взломали", "У меня украли карту"],
    "el": ["Ο φορτιστής πήρε φωτιά και κάηκε το χέρι μου", "Πάθαμε τροφική δηλητηρίαση από το φαγητό σας",
           "με χτυπησε ρευμα η συσκευη", "Μου έκλεψαν την κάρτα",
           "Έγινε απάτη, χάθηκαν τα χρήματα από τον λογαριασμό μου", "μου εκλεψαν την καρτα",
           "εγινε απατη με την καρτα μου", "Έπιασε φωτιά η θερμάστρα σας"],
}


@pytest.mark.parametrize(("text", "lang"), [("You should fire the agent who was rude to me", "en"),
                                            ("My Fire TV stick stopped working", "en"),
                                            ("Sản phẩm cháy hàng quá nhanh", "vi"), ("这个玻璃杯很好看", "zh"),
                                            ("Tôi đã rút hết tiền ra khỏi tài khoản rồi đóng tài khoản", "vi"),
                                            ("Tôi bị trừ tiền 2 lần", "vi"), ("may co chay khong shop", "vi"),
                                            ("双十一大出血，价格很划算", "zh"), ("快递箱子被划破了", "zh"),
                                            ("My Kindle Fire started crashing", "en"),
                                            ("Great deals at the fire sale", "en"),
                                            ("One glass in my order arrived chipped", "en"),
                                            ("Ο πυροσβεστήρας ήρθε χωρίς βάση", "el")])
def test_fire_the_verb_a_fire_tv_sold_out_a_glass_cup_and_own_withdrawals_are_not_critical(rules, text, lang):
    assert rules.classify(text, lang).urgency != "critical"


@pytest.mark.parametrize("lang, text", [(lang, t) for lang, texts in SAFETY_AND_FRAUD.items() for t in texts])
def test_every_safety_and_fraud_message_is_critical(rules, lang, text):
    labels = rules.classify(text, lang)
    assert labels.urgency == "critical", labels.reasons
    assert labels.type == "complaint", labels.reasons
    assert any(r.startswith(("signal safety", "signal security")) for r in labels.reasons)


@pytest.mark.parametrize("text, lang, expected", [
    ("The food was not good at all", "en", "complaint"),
    ("The hotel was good but the room was dirty and the staff were rude", "en", "complaint"),
    ("Hàng không đẹp, không giống hình", "vi", "complaint"),
    ("hang ko tot, ko nen mua", "vi", "complaint"),
    ("Giao hàng hơi chậm nhưng sản phẩm rất đẹp, rất hài lòng", "vi", "praise"),
    ("菜不好吃，送得也慢", "zh", "complaint"),
    ("送餐有点慢，但是味道很好，下次还会再点", "zh", "praise"),
    ("Мне совсем не понравилось обслуживание", "ru", "complaint"),
    ("Спасибо, всё отлично, очень довольна", "ru", "praise"),
    ("Δεν ήταν καθόλου καλό το φαγητό", "el", "complaint"),
    ("δεν ηταν καθολου καλο το φαγητο", "el", "complaint"),
    ("Ευχαριστώ πολύ, εξαιρετική εξυπηρέτηση", "el", "praise"),
    ("ευχαριστω πολυ, εξαιρετικη εξυπηρετηση", "el", "praise"),
])
def test_negation_contrast_and_accents(rules, text, lang, expected):
    labels = rules.classify(text, lang)
    assert labels.type == expected, labels.reasons


def test_a_negated_praise_cue_says_so_in_its_reason(rules):
    labels = rules.classify("Мне не понравилось", "ru")
    assert labels.type == "complaint"
    assert any("negated by 'не'" in r for r in labels.reasons), labels.reasons


@pytest.mark.parametrize(("text", "lang"), [
    ("If you do not refund me I will post this on Facebook", "en"), ("再不退款我就发微博曝光你们", "zh"),
    ("Shop chưa hoàn tiền cho tôi", "vi"), ("Shop chua hoan tien cho toi", "vi"),
    ("Нет возврата денег уже месяц", "ru"), ("δεν εχω παρει επιστροφη χρηματων", "el")])
def test_a_refund_not_given_is_no_praise(rules, text, lang):
    # a refund is a topic, not a verdict: its cues are `negatable: false`
    labels = rules.classify(text, lang)
    assert labels.type == "complaint", labels.reasons
    assert not any("negated" in r for r in labels.reasons)


def test_greek_cues_match_accented_and_accent_free_text_alike(rules):
    accented = rules.classify("Μου έκλεψαν την κάρτα, είναι απάτη", "el")
    plain = rules.classify("μου εκλεψαν την καρτα, ειναι απατη", "el")
    assert accented.as_dict() == plain.as_dict()


@pytest.mark.parametrize("text", ["Hsnhshshhahhshshhdhdhbdbxb", "Sản phẩm ok Tjdtjdtjdtjdtjd rhsrjsrjstjdrjd",
                                  "🧡🧡🧡🧡🧡🧡🧡🧡", "okokokokokokokokok"])
def test_gibberish_is_spam_with_the_evidence(rules, text):
    labels = rules.classify(text, "vi")
    assert labels.type == "spam", labels.reasons
    assert labels.urgency == "low"


@pytest.mark.parametrize("text", ["Sản phẩm rất tốt, đẹp lắm, giao hàng nhanh, hài lòng jdjdjskskdjfjfjf",
                                  "Great product, love it, excellent quality okokokokokokokokokokok"])
def test_padding_outweighs_praise(rules, text):
    labels = rules.classify(text, "en" if text.startswith("Great") else "vi")
    assert labels.type == "spam", labels.reasons
    assert labels.type_confidence >= 0.5


def test_padding_does_not_hide_a_complaint(rules):
    labels = rules.classify("Hàng bị lỗi, giao chậm, rất thất vọng jdjdjskskdjfjfjf", "vi")
    assert labels.type == "complaint", labels.reasons


@pytest.mark.parametrize("text", ["Áo đẹp lắm luônnnnnnn, giao nhanh", "hahahahahahaha thích quá",
                                  "Strengths of the new app: speed", "https://example.com/abc"])
def test_emphasis_laughter_and_links_are_not_gibberish(text):
    from classifiers.rules import gibberish

    assert gibberish(text) is None


def test_an_invalid_regex_names_its_line(tmp_path):
    lines = ["lang: xx", "types:", "  complaint:", "    - {phrase: ok}", "    - {regex: '(unclosed'}"]
    (tmp_path / "xx.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(RulesError, match=r"xx.yaml:5: types.complaint.1: .*regex does not compile"):
        RuleClassifier(tmp_path)


def test_an_unknown_label_names_its_line(tmp_path):
    lines = ["lang: xx", "types:", "  complaint:", "    - {phrase: ok}", "  grumble:", "    - {phrase: x}"]
    (tmp_path / "xx.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(RulesError, match=r"xx.yaml:5: .*unknown keys \['grumble'\]"):
        RuleClassifier(tmp_path)


def test_an_unknown_label_after_a_blank_line_names_its_own_line_and_no_empty_key(tmp_path):
    lines = ["lang: xx", "types:", "  complaint:", "    - {phrase: ok}", "", "  suggestionz:", "    - {phrase: x}"]
    (tmp_path / "xx.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(RulesError) as caught:
        RuleClassifier(tmp_path)
    assert str(caught.value).endswith("xx.yaml:6: types: unknown keys ['suggestionz']; allowed "
                                      "['complaint', 'suggestion', 'inquiry', 'praise', 'spam']")


@pytest.mark.parametrize(("cue", "error"), [
    ("{regex: '', weight: 3}", "regex can match empty text"),
    ("{regex: '(fire)?', weight: 3}", "regex can match empty text"),
    ("{phrase: '  '}", "empty phrase"),
])
def test_a_cue_that_would_match_every_message_is_refused(tmp_path, cue, error):
    lines = ["lang: xx", "urgency:", "  safety:", "    - {phrase: fire}", f"    - {cue}"]
    (tmp_path / "xx.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(RulesError, match=rf"xx.yaml:5: urgency.safety.1: {error}"):
        RuleClassifier(tmp_path)


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    lines = ["lang: xx", "urgency:", "  safety:", "    - {phrase: fire}", "  safety:", "    - {phrase: smoke}"]
    (tmp_path / "xx.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(RulesError, match=r"xx.yaml:5: not valid YAML: key 'safety' given twice \(first on line 3\)"):
        RuleClassifier(tmp_path)


def test_a_list_as_a_key_is_a_rules_error(tmp_path):
    (tmp_path / "xx.yaml").write_text("lang: xx\ntypes:\n  ? [complaint, praise]\n  : []\n")
    with pytest.raises(RulesError, match=r"xx.yaml:3: not valid YAML: a key must be a name"):
        RuleClassifier(tmp_path)


def test_hidden_files_an_editor_saves_through_are_not_lexicons(tmp_path):
    (tmp_path / "xx.yaml").write_text("lang: xx\ntypes:\n  complaint:\n    - {phrase: broken}\n")
    (tmp_path / ".xx.k3j2.yaml").write_text("lang: xx\ntypes: [half written\n")
    assert RuleClassifier(tmp_path).classify("it is broken", "xx").type == "complaint"


def test_lang_must_be_the_file_name(tmp_path):
    (tmp_path / "xx.yaml").write_text("# comment\nlang: en\ntypes: {}\n")
    with pytest.raises(RulesError, match=r"xx.yaml:2: lang: 'en' differs from the file name \(xx.yaml\)"):
        RuleClassifier(tmp_path)


@pytest.mark.parametrize(("text", "lang"), [
    ("Hàng đẹp giao nhanh shkslwgwjwlwkwjwbwhwbwjwnqlqljqbwbq", "vi"),  # a Latin run no Vietnamese word has
    ("chất lượng tuyệt vời rất đáng tiềnnnnnnnnnnnnnnnnnn", "vi"),  # one letter stretched past emphasis
    ("good product " * 8, "en"),  # the same words pasted over and over
    ("ok 😍😍😍😍😍😍😍😍😍😍😍😍", "vi"),  # a flood of emoji
])
def test_noise_padding_a_short_praise_is_spam(rules, text, lang):
    assert rules.classify(text, lang).type == "spam"


@pytest.mark.parametrize("text", ["Giao hàng nhanh, đóng gói cẩn thận, rất hài lòng", "áo đẹp lắmmmm", "haha ok 😍😍"])
def test_emphasis_is_not_noise(rules, text):
    assert rules.classify(text, "vi").type != "spam"


@pytest.mark.parametrize(("text", "lang"), [
    ("Tốt", "vi"), ("rất đẹp ạ!!", "vi"), ("Okkkk luônnn", "vi"), ("Good!!", "en"), ("very nice", "en"),
    ("goood", "en"), ("Отлично!", "ru"), ("Всё супер", "ru"), ("不错哦。。。", "zh"), ("很好评", "zh"),
    ("Τέλεια!", "el"), ("...", "vi"), ("👍👍", "en"), ("E", "vi"),
])
def test_a_bare_verdict_or_no_words_is_spam_with_no_content_as_the_reason(rules, text, lang):
    labels = rules.classify(text, lang)
    assert labels.type == "spam" and labels.type_confidence >= 0.5, labels.reasons
    assert "no content" in labels.reasons[0]


@pytest.mark.parametrize(("text", "lang"), [
    ("hàng tốt", "vi"), ("giao nhanh, rất hài lòng", "vi"), ("không tốt", "vi"), ("Tạm được", "vi"),
    ("tôi", "vi"), ("Good?", "en"), ("Is it good", "en"), ("good price", "en"), ("not good", "en"),
    ("too much", "en"), ("It was too much", "en"), ("god", "en"), ("100", "en"), ("1000", "vi"), ("fine", "en"),
    ("Ужасно", "ru"), ("Нормально", "ru"), ("Просто", "ru"), ("很好吃", "zh"), ("真的", "zh"), ("还行", "zh"),
    ("不", "zh"), ("Πολύ", "el"), ("Καλά...", "el"), ("", "en"), ("?", "en"), ("❓", "en"), ("👎", "en"),
    ("😡😡😡", "en"), (":(", "en"),
])
def test_a_verdict_about_something_a_complaint_a_question_or_a_mild_word_is_not_filler(rules, text, lang):
    labels = rules.classify(text, lang)
    assert labels.type != "spam" and not any("no content" in r for r in labels.reasons), labels.reasons


@pytest.mark.parametrize("text", ["ok", "Great!", "Tốt", "好的", "👍"])
def test_in_a_conversation_a_bare_ok_answers_someone_and_is_not_filler(rules, text):
    assert not any("no content" in r for r in rules.classify(text, "und", conversation=True).reasons)


def test_a_passage_pasted_again_is_spam_when_it_only_praises(rules):
    padded = rules.classify("Giao hàng nhanh, đóng gói cẩn thận. Giao hàng nhanh, đóng gói cẩn thận.", "vi")
    assert padded.type == "spam" and any("pasted again" in r for r in padded.reasons), padded.reasons
    assert padded.type_confidence >= 0.5
    for text in ("The screen cracked after a day. The screen cracked after a day.",
                 "Please cancel my subscription today. Please cancel my subscription today.",
                 "Can I change my delivery address? Can I change my delivery address?",
                 "Great app, I suggest a dark mode please. Great app, I suggest a dark mode please."):
        assert not any("pasted again" in r for r in rules.classify(text, "en").reasons), text


def test_pasted_again_is_linear_on_a_text_that_almost_repeats():
    from classifiers.filler import pasted_again

    assert pasted_again("a b c d e " * 3) == "a b c d e"
    assert pasted_again("a " * 999 + "x") is None
    assert pasted_again("good " * 12) == "good good good good good"


def test_an_operator_can_switch_bare_verdicts_off_for_a_language(tmp_path):
    for path in RULES_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == "vi":
            text = text[:text.index("\nbare_verdict:")] + "\n"
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    assert RuleClassifier(tmp_path).classify("Tốt", "vi").type != "spam"
    assert RuleClassifier(tmp_path).classify("Good!!", "en").type == "spam"


@pytest.mark.parametrize(("entry", "message"), [
    ("'!!'", "must be letters or digits only"), ("'so-so'", "must be letters or digits only"),
    ("10", "must be text: quote numbers"),
])
def test_a_bare_verdict_entry_that_could_never_match_is_refused_with_its_line(tmp_path, entry, message):
    (tmp_path / "en.yaml").write_text(f"lang: en\nbare_verdict:\n  verdicts: [good,\n    {entry}]\n",
                                      encoding="utf-8")
    with pytest.raises(RulesError, match=rf"en.yaml:4: bare_verdict.verdicts.1: .*{message}"):
        RuleClassifier(tmp_path)



@pytest.mark.parametrize("text", [
    "There is a payment in the app that isn't mine.",
    "I have an unusual withdrawal on my statement",
    "I don't know where this charge came from",
    "I left my phone at the hotel and can't access the app",
])
def test_money_or_devices_the_customer_cannot_account_for_are_critical(rules, text):
    assert rules.classify(text, "en").urgency == "critical"


@pytest.mark.parametrize(("text", "lang"), [
    ("Is the delivery free for the islands?", "en"),
    ("Γεια σας, ισχύει η δωρεάν αποστολή και για τα νησιά; Θέλω να στείλω ένα δώρο στη Νάξο.", "el"),
])
def test_a_praise_word_in_a_question_asks_rather_than_praises(rules, text, lang):
    labels = rules.classify(text, lang)
    assert labels.type != "praise", labels.reasons


def test_a_public_post_raises_a_complaint_not_praise(rules):
    assert rules.classify("Love your shop, the staff are great!", "en", public=True).urgency == "low"
    assert rules.classify("My parcel never arrived and nobody answers", "en", public=True).urgency == "high"
