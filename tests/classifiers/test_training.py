import json
from collections import defaultdict

import pytest

from classifiers.labels import CATEGORIES, TYPES, URGENCIES
from classifiers.training import build_team_set

LANGS = ("en", "vi", "zh", "ru", "el")
SHIPPED = build_team_set.HERE.parent / "shipped" / "type"
MAY_TRAIN_SHIPPED = {"team.jsonl", "banking77.jsonl", "abcd", "webvtt-py", "harper-valley", "email"}


@pytest.fixture(scope="module")
def team():
    return [json.loads(line) for line in build_team_set.OUTPUT.read_text(encoding="utf-8").splitlines()]


def test_team_set_is_what_the_phrase_files_build(team):
    built = [json.loads(line.as_json()) for path in sorted(build_team_set.PHRASES.glob("*.yaml"))
             for line in build_team_set.build(path)]
    assert built == team, "team.jsonl is stale: run python -m classifiers.training.build_team_set"


def test_every_label_in_every_language(team):
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in team:
        seen[row["lang"]].update({("type", row["type"]), ("urgency", row["urgency"]), ("style", row["style"])})
        if row["category"]:
            seen[row["lang"]].add(("category", row["category"]))
    wanted = ({("type", t) for t in TYPES} | {("urgency", u) for u in URGENCIES}
              | {("category", c) for c in CATEGORIES}
              | {("style", s) for s in ("chat", "email", "phone", "social")})
    for lang in LANGS:
        assert wanted <= seen[lang], (lang, sorted(wanted - seen[lang]))
        assert sum(row["lang"] == lang for row in team) >= 300


def test_labels_are_consistent(team):
    for row in team:
        assert (row["category"] is not None) == (row["type"] == "complaint"), row
        if row["category"] == "account_security":
            assert row["urgency"] == "critical", row
        if row["type"] in ("praise", "suggestion", "spam"):
            assert row["urgency"] == "low", row


def test_greek_lines_come_with_and_without_accents(team):
    greek = [row["text"] for row in team if row["lang"] == "el"]
    assert any(ch in "άέήίόύώ" for text in greek for ch in text)
    assert sum(not any(ch in "άέήίόύώ" for ch in text) for text in greek) >= len(greek) // 4


def test_shipped_model_records_permissive_sources_only():
    meta = json.loads((SHIPPED / "metadata.json").read_text())
    assert meta["task"] == "type" and set(meta["labels"]) == set(TYPES)
    assert set(meta["sources"]) <= MAY_TRAIN_SHIPPED
    assert set(meta["params"]["licences"]) == set(meta["sources"])
    assert meta["data_hash"].startswith("sha256:")
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert size < 8 * 2**20, f"shipped model is {size / 2**20:.1f} MB"


def test_shipped_model_answers_obvious_lines():
    from classifiers.textcat import TextCatClassifier

    model = TextCatClassifier.load(SHIPPED / "model")
    lines = {"How do I reset my password?": "inquiry", "My card was charged twice, I want a refund": "complaint",
             "Cảm ơn shop, giao hàng nhanh, rất hài lòng": "praise", "别再给我打推销电话了": "complaint"}
    got = [p.label for p in model.predict(list(lines))]
    assert got == list(lines.values())
