"""Scores predictions against gold labels: accuracy, macro F1, per class, per language, confusion
matrix (saved as HTML and, with matplotlib installed, PNG) and the worst mistakes."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifiers.labels import CATEGORIES, TYPES, URGENCIES


@dataclass(frozen=True, slots=True)
class Scored:
    text: str
    lang: str
    gold: str
    predicted: str | None
    confidence: float


def task_of(labels: set[str]) -> str:
    """Which label field the gold labels belong to: type, category or urgency."""
    for task, vocab in (("type", TYPES), ("category", CATEGORIES), ("urgency", URGENCIES)):
        if labels <= set(vocab):
            return task
    raise ValueError(f"labels {sorted(labels)[:8]} are not all type, category or urgency labels")


NO_LABEL = "(none)"  # the confusion matrix's column for predictions without a label


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _per_class(items: Sequence[Scored]) -> dict[str, dict[str, float]]:
    labels = sorted({i.gold for i in items} | {i.predicted for i in items if i.predicted is not None})
    pairs = Counter((i.gold, i.predicted) for i in items)
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = pairs[(label, label)]
        predicted = sum(c for (_, p), c in pairs.items() if p == label)
        support = sum(c for (g, _), c in pairs.items() if g == label)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        out[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                      "f1": round(_f1(precision, recall), 4), "support": support}
    return out


def _summary(items: Sequence[Scored]) -> dict[str, Any]:
    """n, accuracy, macro F1 (over the gold labels) and per-class figures of a set of scored items."""
    if not items:
        return {"n": 0, "accuracy": 0.0, "macro_f1": 0.0, "per_class": {}}
    per_class = _per_class(items)
    gold_labels = sorted({i.gold for i in items})
    return {"n": len(items), "accuracy": round(sum(i.predicted == i.gold for i in items) / len(items), 4),
            "macro_f1": round(sum(per_class[g]["f1"] for g in gold_labels) / len(gold_labels), 4),
            "per_class": per_class}


def report(items: Sequence[Scored], worst: int = 20) -> dict[str, Any]:
    """The JSON contract: n, accuracy, macro_f1, per_class, per_language (each with its own per-class
    figures), the confusion matrix and the most confident mistakes."""
    labels = sorted({i.gold for i in items} | {i.predicted for i in items if i.predicted is not None})
    if any(i.predicted is None for i in items):  # a category for a message not typed a complaint: still counted
        labels.append(NO_LABEL)
    pairs = Counter((i.gold, NO_LABEL if i.predicted is None else i.predicted) for i in items)
    by_lang: dict[str, list[Scored]] = defaultdict(list)
    for i in items:
        by_lang[i.lang].append(i)
    mistakes = sorted((i for i in items if i.predicted != i.gold), key=lambda i: -i.confidence)[:worst]
    return {
        **_summary(items),
        "per_language": {lang: _summary(xs) for lang, xs in sorted(by_lang.items())},
        "confusion": {"labels": labels, "matrix": [[pairs[(g, p)] for p in labels] for g in labels]},
        "worst_mistakes": [{"text": i.text[:300], "lang": i.lang, "gold": i.gold, "predicted": i.predicted,
                            "confidence": round(i.confidence, 3)} for i in mistakes],
    }


def confusion_html(rep: dict[str, Any]) -> str:
    labels, matrix = rep["confusion"]["labels"], rep["confusion"]["matrix"]
    peak = max((v for row in matrix for v in row), default=0) or 1
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    rows = []
    for label, row in zip(labels, matrix, strict=True):
        cells = "".join(f'<td style="background:rgba(40,90,200,{v / peak:.2f})">{v}</td>' for v in row)
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    mistakes = "".join(f"<li><b>{html.escape(m['gold'])} &rarr; {html.escape(str(m['predicted']))}</b> "
                       f"({m['confidence']}, {html.escape(m['lang'])}): {html.escape(m['text'])}</li>"
                       for m in rep["worst_mistakes"])
    return (f"<!doctype html><meta charset=utf-8><title>Confusion matrix</title>"
            f"<p>n={rep['n']} accuracy={rep['accuracy']} macro F1={rep['macro_f1']}</p>"
            f"<table id=confusion border=1><tr><th>gold \\ predicted</th>{head}</tr>{''.join(rows)}</table>"
            f"<h3>Per class</h3>{_class_table(rep['per_class'])}"
            f"<h3>Per language</h3>{_language_table(rep['per_language'])}"
            f"<h3>Worst mistakes</h3><ol>{mistakes}</ol>\n")


def _class_table(per_class: dict[str, dict[str, float]]) -> str:
    rows = "".join(f"<tr><th>{html.escape(label)}</th><td>{m['precision']}</td><td>{m['recall']}</td>"
                   f"<td>{m['f1']}</td><td>{m['support']}</td></tr>" for label, m in per_class.items())
    return f"<table class=per-class border=1><tr><th></th><th>P</th><th>R</th><th>F1</th><th>n</th></tr>{rows}</table>"


def _language_table(per_language: dict[str, dict[str, Any]]) -> str:
    def classes(per_class: dict[str, dict[str, float]]) -> str:
        return html.escape(", ".join(f"{label} F1={m['f1']}" for label, m in per_class.items()))

    rows = "".join(f"<tr><th>{html.escape(lang)}</th><td>{m['n']}</td><td>{m['accuracy']}</td><td>{m['macro_f1']}</td>"
                   f"<td>{classes(m['per_class'])}</td></tr>" for lang, m in per_language.items())
    return (f"<table class=per-language border=1><tr><th></th><th>n</th><th>accuracy</th><th>macro F1</th>"
            f"<th>per class</th></tr>{rows}</table>")


def save_confusion(rep: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write confusion.html, and confusion.png when matplotlib is installed; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "confusion.html"]
    written[0].write_text(confusion_html(rep), encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    labels, matrix = rep["confusion"]["labels"], rep["confusion"]["matrix"]
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(labels), 1 + 0.7 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for r, row in enumerate(matrix):
        for c, v in enumerate(row):
            ax.text(c, r, str(v), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=100)
    plt.close(fig)
    return [*written, out_dir / "confusion.png"]
