from classifiers.normalise import nfkc_casefold


def test_full_width_forms_and_case_fold_once_for_rules_and_model():
    assert nfkc_casefold("房间很差，ＯＫ！") == "房间很差,ok!"
    assert nfkc_casefold("Straße") == "strasse"
    long_text = "Ｘ" * 5000  # beyond the cache's text length: still normalised
    assert nfkc_casefold(long_text) == "x" * 5000
