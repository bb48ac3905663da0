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
    assert rep["per_language"] == {"en": {"n": 2, "accuracy": 0.5}, "zh": {"n": 3, "accuracy": 0.6667}}
    assert rep["confusion"] == {"labels": ["complaint", "praise"], "matrix": [[1, 1], [1, 2]]}
    assert [m["text"] for m in rep["worst_mistakes"]] == ["d", "b"]  # most confident mistake first


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
    assert (tmp_path / "confusion.html").read_text().count("<tr>") == 4
    pytest.importorskip("matplotlib")  # the PNG needs matplotlib; the HTML does not
    assert tmp_path / "confusion.png" in written
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
