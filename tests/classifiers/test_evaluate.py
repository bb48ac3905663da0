import pytest

from classifiers.evaluate import Scored, confusion_html, report, save_confusion, task_of


def items():
    return [Scored("a", "en", "complaint", "complaint", 0.9), Scored("b", "en", "complaint", "praise", 0.8),
            Scored("c", "zh", "praise", "praise", 0.7), Scored("d", "zh", "praise", "complaint", 0.99),
            Scored("e", "zh", "praise", "praise", 0.6)]


def test_figures():
    rep = report(items())
    assert rep["n"] == 5 and rep["accuracy"] == 0.6
    assert rep["per_class"]["complaint"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert rep["per_class"]["praise"]["precision"] == 0.6667 and rep["per_class"]["praise"]["recall"] == 0.6667
    assert rep["macro_f1"] == round((0.5 + 0.6667) / 2, 4)
    assert {lang: (m["n"], m["accuracy"]) for lang, m in rep["per_language"].items()} == {"en": (2, 0.5),
                                                                                          "zh": (3, 0.6667)}
    assert rep["confusion"] == {"labels": ["complaint", "praise"], "matrix": [[1, 1], [1, 2]]}
    assert [m["text"] for m in rep["worst_mistakes"]] == ["d", "b"]  # most confident mistake first


def test_a_prediction_without_a_label_has_its_own_column_so_the_matrix_adds_up():
    rep = report([Scored("a", "en", "billing", "billing", 0.9), Scored("b", "en", "delivery", None, 0.8)])
    assert rep["n"] == 2 and rep["accuracy"] == 0.5
    assert rep["confusion"] == {"labels": ["billing", "delivery", "(none)"],
                                "matrix": [[1, 0, 0], [0, 0, 1], [0, 0, 0]]}
    assert sum(map(sum, rep["confusion"]["matrix"])) == rep["n"]


def test_task_follows_from_the_labels():
    assert task_of({"complaint", "spam"}) == "type"
    assert task_of({"billing", "delivery"}) == "category"
    assert task_of({"low", "critical"}) == "urgency"
    with pytest.raises(ValueError, match="not all type, category or urgency"):
        task_of({"complaint", "banana"})


def test_confusion_matrix_files(tmp_path):
    rep = report([*items(), Scored("<b>x</b>", "en", "spam", "praise", 0.5)])
    assert "&lt;b&gt;x&lt;/b&gt;" in confusion_html(rep)
    written = save_confusion(rep, tmp_path)
    page = (tmp_path / "confusion.html").read_text()
    confusion = page[page.index("<table id=confusion"):page.index("</table>")]
    assert confusion.count("<tr>") == 4
    assert "<h3>Per class</h3>" in page and "<h3>Per language</h3>" in page and "spam F1=0.0" in page
    pytest.importorskip("matplotlib")  # the PNG needs matplotlib; the HTML does not
    assert tmp_path / "confusion.png" in written
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_language_has_its_own_per_class_figures():
    zh = report(items())["per_language"]["zh"]
    assert zh["per_class"]["praise"] == {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3}
    assert zh["per_class"]["complaint"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert zh["macro_f1"] == 0.8  # over the gold labels of that language only


def test_json_contract_keys_and_empty_input():
    rep = report(items())
    assert {"accuracy", "macro_f1", "per_class", "per_language", "n"} <= set(rep)
    empty = report([])
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and empty["per_class"] == {} and empty["worst_mistakes"] == []
