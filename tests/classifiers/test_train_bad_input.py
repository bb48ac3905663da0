"""`intake classifiers train` on bad training files: a clear error naming what is wrong, never a model."""

import pytest

pytest.importorskip("spacy")  # declared in pyproject.toml; skips only where it is not installed yet

import json

from click.testing import CliRunner

from classifiers.commands import classifiers_group


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("INTAKE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr("classifiers.active_model.SHIPPED_DIR", tmp_path / "no-shipped-model")
    return tmp_path / "models"


def write(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return str(path)


def train(data):
    return CliRunner().invoke(classifiers_group, ["train", "--data", data, "--text-field", "text",
                                                  "--label-field", "proxy.type", "--version", "bad"])


def refused(result, models, *fragments):
    assert result.exit_code != 0, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert not (models / "versions" / "bad").exists()


def test_empty_file(models, tmp_path):
    refused(train(write(tmp_path / "empty.jsonl", [])), models, "empty.jsonl", "no row has a 'proxy.type' label")


def test_only_blank_lines_and_null_labels(models, tmp_path):
    data = write(tmp_path / "nulls.jsonl", ["", {"text": "a", "proxy": {"type": None}}, "   "])
    refused(train(data), models, "nulls.jsonl", "no row has a 'proxy.type' label")


def test_missing_text_field_names_file_and_line(models, tmp_path):
    data = write(tmp_path / "m.jsonl", [{"text": "fine", "proxy": {"type": "praise"}}, {"proxy": {"type": "spam"}}])
    refused(train(data), models, "m.jsonl:2: field 'text' is missing")


def test_missing_label_field_names_file_and_line(models, tmp_path):
    data = write(tmp_path / "m.jsonl", [{"text": "a", "proxy": {"type": "praise"}}, {"text": "b", "proxy": {}},
                                        {"text": "c", "proxy": {"type": "spam"}}])
    refused(train(data), models, "m.jsonl:2: field 'proxy.type' is missing")


def test_not_json_names_file_and_line(models, tmp_path):
    data = write(tmp_path / "j.jsonl", [{"text": "a", "proxy": {"type": "praise"}}, "{oops"])
    refused(train(data), models, "j.jsonl:2: not JSON")


def test_label_that_is_not_a_string(models, tmp_path):
    data = write(tmp_path / "n.jsonl", [{"text": "a", "proxy": {"type": 3}}])
    refused(train(data), models, "n.jsonl:1: field 'proxy.type' is 3")


def test_one_class_only(models, tmp_path):
    data = write(tmp_path / "one.jsonl", [{"text": f"broken {i}", "proxy": {"type": "complaint"}} for i in range(40)])
    refused(train(data), models, "only one class", "'complaint'")


def test_unknown_label_value_is_named(models, tmp_path):
    data = write(tmp_path / "odd.jsonl", [{"text": "a", "proxy": {"type": "praise"}},
                                          {"text": "b", "proxy": {"type": "banana"}}])
    refused(train(data), models, "odd.jsonl", "banana", "not all type, category or urgency labels")


def test_labels_of_two_tasks_mixed(models, tmp_path):
    data = write(tmp_path / "mix.jsonl", [{"text": "a", "proxy": {"type": "complaint"}},
                                          {"text": "b", "proxy": {"type": "billing"}}])
    refused(train(data), models, "mix.jsonl", "not all type, category or urgency labels")


def test_texts_all_empty(models, tmp_path):
    data = write(tmp_path / "blank.jsonl", [{"text": "", "proxy": {"type": "complaint"}},
                                            {"text": " ", "proxy": {"type": "praise"}}])
    refused(train(data), models, "no text")
