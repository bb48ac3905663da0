import json

from classifiers.oob_report import measure


def test_repeated_texts_count_once_in_the_distinct_figure(tmp_path):
    rows = ([{"text": "Great service, thank you so much!", "lang": "en", "proxy": {"type": "praise"}}] * 8
            + [{"text": "Terrible, my card was charged twice and nobody answers", "lang": "en",
                "proxy": {"type": "praise"}}]
            + [{"text": "The worst bank ever, I am furious", "lang": "en", "proxy": {"type": "complaint"}}])
    (tmp_path / "en-set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    figures = measure(tmp_path, rules_only=True)["per_set"]["en-set"]
    assert figures["n"] == 10 and figures["n_distinct"] == 3
    assert figures["complaint_praise"] == 0.9  # the mislabelled complaint is the one miss
    assert figures["complaint_praise_distinct"] == round(2 / 3, 4)
