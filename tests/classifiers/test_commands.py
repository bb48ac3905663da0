import pytest

pytest.importorskip("spacy")  # declared in pyproject.toml; skips only where it is not installed yet

import json

import pytest
from click.testing import CliRunner

from classifiers.commands import classifiers_group, classify_command
from classifiers.labels import TYPES
from tests.classifiers.textcat_data import rows


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("INTAKE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("INTAKE_STORE__URL", f"sqlite:///{tmp_path}/store.db")  # promote tells running pipelines here
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "none.yaml"))
    (tmp_path / "none.yaml").write_text("{}\n")
    monkeypatch.setattr("classifiers.active_model.SHIPPED_DIR", tmp_path / "no-shipped-model")
    return tmp_path / "models"


def write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture
def labelled(tmp_path):
    return write(tmp_path / "train.jsonl", [{"text": t, "lang": "xx", "proxy": {"type": y}} for t, y in rows()])


def run(*args, stdin=None):
    cmd = classify_command if args[0] == "classify" else classifiers_group
    return CliRunner().invoke(cmd, list(args[1:] if args[0] == "classify" else args), input=stdin)


def test_classify_without_a_model_answers_from_rules(models):
    lines = [{"text": "The charger caught fire and burned my hand", "lang": "en"}, {"text": ""},
             {"text": "where is it " * 90_000, "channel": "chat"}]
    result = run("classify", stdin="".join(json.dumps(x) + "\n" for x in lines) + "not json\n")
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in result.output.splitlines()]
    assert out[0]["urgency"] == "critical" and out[0]["type_source"] == "rules"
    assert any("safety" in r for r in out[0]["reasons"])
    assert out[1]["type_confidence"] == 0.0 and out[1]["urgency_confidence"] == 0.0
    assert out[2]["type"] in TYPES and 0.0 <= out[2]["type_confidence"] <= 1.0  # a megabyte: an answer, no crash
    assert out[3]["error"].startswith("line 4")


def test_classify_answers_every_odd_line_and_names_what_is_wrong(models):
    lines = [json.dumps({"text": "a\u0000b broken, refund now", "lang": "en"}),
             json.dumps({"text": "thanks \udc00 BUT THE SCREEN IS BROKEN AGAIN"}),
             "[1, 2]", json.dumps({"text": "x", "lang": 7}), json.dumps({"text": "x", "lang": "\ud800"}),
             json.dumps({"text": "x", "channel": ["chat"]}), json.dumps({"text": "Η κάρτα μου κλάπηκε", "lang": ""})]
    stdin = ("\n".join(lines) + "\n").encode() + b"\xff\xfe not utf-8\n"
    result = run("classify", stdin=stdin)
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in result.output.splitlines()]
    assert len(out) == 8 and out[6]["lang"] == "el"  # an empty lang is detected, as a missing one
    assert out[0]["type"] == "complaint" and out[1]["type"] in TYPES  # NUL and a lone surrogate: answered
    assert out[2]["error"] == "line 3: expected a JSON object, got list"
    assert "field 'lang' must be a language code" in out[3]["error"] and out[4]["error"].startswith("line 5")
    assert out[5]["error"] == "line 6: field 'channel' must be a string"
    assert out[7]["error"] == "line 8: not valid UTF-8"


def test_evaluate_skips_rows_without_a_label(models, tmp_path):
    data = write(tmp_path / "e.jsonl", [
        {"text": "My order arrived broken, refund", "lang": "en", "proxy": {"type": "complaint"}},
        {"text": "thanks", "lang": "en", "proxy": {"type": None}}, {"text": "hello", "lang": "en", "proxy": {}}])
    result = run("evaluate", "--data", data, "--label-field", "proxy.type", "--json", "--out", str(tmp_path / "ev"))
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    assert rep["n"] == 1 and rep["task"] == "type" and rep["model"] == "rules"
    assert {"accuracy", "macro_f1", "per_class", "per_language"} <= set(rep)
    assert (tmp_path / "ev" / "confusion.html").exists()


def test_evaluate_detects_the_language_of_rows_without_one(models, tmp_path):
    data = write(tmp_path / "nolang.jsonl", [
        {"text": "The parcel arrived broken, I want a refund", "proxy": {"type": "complaint"}},
        {"text": "Hàng đẹp, giao nhanh, rất hài lòng", "proxy": {"type": "praise"}},
        {"text": "送餐太慢了，菜都凉了", "lang": "zh", "proxy": {"type": "complaint"}}])
    result = run("evaluate", "--data", data, "--json", "--out", str(tmp_path / "ev"))
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)["per_language"]) == {"en", "vi", "zh"}


def test_train_promote_classify_rollback(models, labelled, tmp_path):
    result = run("train", "--data", labelled, "--text-field", "text", "--label-field", "proxy.type", "--version", "v1")
    assert result.exit_code == 0, result.output
    meta = json.loads((models / "versions" / "v1" / "metadata.json").read_text())
    assert meta["labels"] == ["complaint", "praise"] and meta["task"] == "type" and meta["seed"] == 0
    assert meta["n_examples"] == len(rows()) and meta["data_hash"].startswith("sha256:")
    assert 0.0 <= meta["metrics"]["accuracy"] <= 1.0

    rep = json.loads(run("evaluate", "--data", labelled, "--model", "v1", "--json", "--out", str(tmp_path)).output)
    assert rep["accuracy"] >= 0.95 and rep["model"] == "v1"
    figures = json.loads(run("bench", "--data", labelled, "--model", "v1", "--json").output)
    assert figures["n"] == len(rows()) and figures["load_s"] > 0 and figures["classify_msgs_per_s"] > 0

    assert run("promote", "v1").exit_code == 0
    stdin = "".join(json.dumps(line) + "\n" for line in ({"text": "房间干净，服务很好，非常满意", "lang": "zh"},
                                                        {"text": "zqx 77 blorp"}))
    confident, unsure = (json.loads(x) for x in run("classify", stdin=stdin).output.splitlines())
    # praise cues: rule polarity plus the model's probability (classifiers/combine.py)
    assert confident["type"] == "praise" and confident["type_source"] == "rules+model:v1"
    assert any("rule polarity plus model probability (model v1 said" in r for r in confident["reasons"])
    assert unsure["type"] in ("complaint", "praise") and unsure["type_source"] == "model:v1"  # no cue: the model
    assert any(r.startswith(f"type {unsure['type']}: model v1 p=") for r in unsure["reasons"])
    listed = json.loads(run("list", "--json").output)
    assert listed["active"] == "v1" and listed["versions"] == ["v1"]

    assert "none (the shipped model, else rules only)" in run("rollback").output
    out = json.loads(run("classify", stdin=json.dumps({"text": "zqx 77 blorp"}) + "\n").output)
    assert out["type_source"] == "rules" and out["type"] == "inquiry"


def test_a_version_that_cannot_be_loaded_is_not_promoted_and_a_damaged_active_one_is_named(models, labelled):
    import os
    import shutil

    assert run("train", "--data", labelled, "--version", "v1").exit_code == 0
    shutil.copytree(models / "versions" / "v1", models / "versions" / "bad")
    for weights in (models / "versions" / "bad" / "model").rglob("model"):
        weights.write_bytes(b"garbage")
    refused = run("promote", "bad")
    assert refused.exit_code != 0 and "version 'bad' cannot be loaded" in refused.output
    assert json.loads(run("list", "--json").output)["active"] is None

    promoted = CliRunner().invoke(classifiers_group, ["promote", "v1"])
    assert promoted.exit_code == 0, promoted.output
    assert "note: v1 knows 2 of the 5 type labels; it never answers suggestion, inquiry, spam" in promoted.stderr
    for weights in (models / "versions" / "v1" / "model").rglob("model"):
        weights.write_bytes(b"garbage")
    meta = models / "versions" / "v1" / "metadata.json"
    os.utime(meta, (meta.stat().st_atime, meta.stat().st_mtime + 5))  # a changed version is loaded again
    result = run("classify", stdin=json.dumps({"text": "hello"}) + "\n")
    assert result.exit_code != 0 and "the active model version 'v1' cannot be loaded" in result.output
    assert "Traceback" not in result.output


def test_training_file_with_a_missing_field_names_line_and_field(models, tmp_path):
    data = write(tmp_path / "bad.jsonl", [{"text": "a", "proxy": {"type": "praise"}},
                                          {"body": "b", "proxy": {"type": "spam"}}])
    result = run("train", "--data", data, "--version", "bad")
    assert result.exit_code != 0
    assert "bad.jsonl:2: field 'text' is missing" in result.output
    data = write(tmp_path / "nolabel.jsonl", [{"text": "a", "proxy": {}}])
    assert "field 'proxy.type' is missing" in run("train", "--data", data, "--version", "bad").output


def test_train_refuses_an_existing_version_before_training_and_warns_of_thin_classes(models, tmp_path):
    data = write(tmp_path / "thin.jsonl", [{"text": f"broken thing {i}", "proxy": {"type": "complaint"}}
                                           for i in range(40)] + [{"text": "lovely", "proxy": {"type": "praise"}}])
    first = CliRunner().invoke(classifiers_group, ["train", "--data", data, "--version", "v1"])
    assert first.exit_code == 0, first.output
    assert "warning: few examples of 'praise' 1 (of 41)" in first.stderr
    created = json.loads((models / "versions" / "v1" / "metadata.json").read_text())["created_at"]
    again = run("train", "--data", data, "--version", "v1")
    assert again.exit_code != 0 and "version 'v1' already exists" in again.output
    assert "warning" not in again.output  # refused before the data was read
    assert json.loads((models / "versions" / "v1" / "metadata.json").read_text())["created_at"] == created


def test_training_file_with_one_class_is_refused(models, tmp_path):
    data = write(tmp_path / "one.jsonl", [{"text": f"broken {i}", "proxy": {"type": "complaint"}} for i in range(30)])
    result = run("train", "--data", data, "--version", "one")
    assert result.exit_code != 0 and "only one class" in result.output
    assert not (models / "versions" / "one").exists()


def test_unknown_labels_and_versions_are_named(models, tmp_path):
    data = write(tmp_path / "odd.jsonl", [{"text": "a", "proxy": {"type": "banana"}},
                                          {"text": "b", "proxy": {"type": "spam"}}])
    assert "not all type, category or urgency" in run("train", "--data", data, "--version", "x").output
    assert "no model version 'nope'" in run("promote", "nope").output


def test_train_stores_the_real_settings_the_confusion_matrix_and_the_worst_mistakes(models, tmp_path):
    from classifiers.textcat import settings_dict

    # long texts of no class, labelled at random: the hold-out model gets some of them wrong
    noise = [{"text": f"zq{i} " + "lorem ipsum dolor " * 20, "proxy": {"type": ("complaint", "praise")[i % 3 == 0]}}
             for i in range(60)]
    data = write(tmp_path / "t.jsonl", [{"text": t, "lang": "xx", "proxy": {"type": y}} for t, y in rows()] + noise)
    result = run("train", "--data", data, "--version", "v2")
    assert result.exit_code == 0, result.output
    meta = json.loads((models / "versions" / "v2" / "metadata.json").read_text())
    assert meta["params"] == json.loads(json.dumps({**settings_dict(), "label_field": "proxy.type"}))
    assert meta["params"]["architecture"] != "spacy.TextCatBOW.v3"
    metrics = meta["metrics"]
    confusion = metrics["confusion"]
    assert confusion["labels"] == ["complaint", "praise"]
    assert sum(map(sum, confusion["matrix"])) == metrics["n"] == int(len(rows() + noise) * 0.1)
    wrong = sum(confusion["matrix"][0][1:]) + confusion["matrix"][1][0]
    assert 0 < len(metrics["worst_mistakes"]) == min(wrong, 20)
    for mistake in metrics["worst_mistakes"]:
        assert len(mistake["text"]) <= 200 and mistake["gold"] != mistake["predicted"]
        assert {"text", "gold", "predicted", "confidence"} <= set(mistake)
    confidences = [m["confidence"] for m in metrics["worst_mistakes"]]
    assert confidences == sorted(confidences, reverse=True)  # the most confident mistakes first
    assert any(len(m["text"]) == 200 for m in metrics["worst_mistakes"])  # long ones were cut


def test_a_label_outside_the_known_task_names_file_and_line(models, labelled, tmp_path):
    data = write(tmp_path / "x.jsonl", [{"text": "a", "proxy": {"type": "praise"}},
                                        {"text": "b", "proxy": {"type": "complaint"}},
                                        {"text": "c", "proxy": {"type": "billing"}}])
    result = run("train", "--data", data, "--version", "x")
    assert result.exit_code != 0 and "x.jsonl:3: 'billing' in 'proxy.type' is not a type label" in result.output
    assert not (models / "versions" / "x").exists()
    # a field that names no task: the model's task is the known one
    assert run("train", "--data", labelled, "--version", "v1").exit_code == 0
    gold = write(tmp_path / "gold.jsonl", [{"text": "a", "gold": "praise"}, {"text": "b", "gold": "high"}])
    result = run("evaluate", "--data", gold, "--label-field", "gold", "--model", "v1", "--out", str(tmp_path))
    assert result.exit_code != 0 and "gold.jsonl:2: 'high' in 'gold' is not a type label" in result.output
