"""Does `intake classifiers train` beat the reference on splits nobody tuned on?

check.py's `trained` check splits each labelled set in halves by a hash of the text; the model's
settings were chosen on those halves. This splits the sets again with other salts and compares, on
each split, our model (`train` then `evaluate`) with a re-implementation of the reference: character
1-4-gram TF-IDF and logistic regression (C=4, balanced classes). Needs scikit-learn (`pip install
-e ".[reference]"`) and ../shared/data. Prints one line per set and salt.

    python -m benchmarks.trained_fresh_splits --salts fresh2:,fresh3: vi-spam-reviews zh-hotel
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from classifiers.oob_report import DEFAULT_DATA

KEEP = {"complaint", "praise", "spam", "inquiry"}


def _half(salt: str, text: str) -> int:
    return int(hashlib.sha1((salt + text).encode()).hexdigest()[:8], 16) % 2


def halves(rows: list[dict], salt: str) -> tuple[list[dict], list[dict]]:
    """Train and test halves by a salted hash of the text, as check.py splits (salt 'split:')."""
    return [r for r in rows if _half(salt, r["text"]) == 0], [r for r in rows if _half(salt, r["text"]) == 1]


def fit_reference(train: list[dict]) -> tuple[Any, Any]:
    """The reference fitted on rows' `proxy.type`: (vectoriser, logistic regression)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectoriser = TfidfVectorizer(analyzer="char", ngram_range=(1, 4))
    model = LogisticRegression(C=4, class_weight="balanced", max_iter=2000)
    model.fit(vectoriser.fit_transform([r["text"] for r in train]), [r["proxy"]["type"] for r in train])
    return vectoriser, model


def reference_accuracy(train: list[dict], test: list[dict]) -> float:
    vectoriser, model = fit_reference(train)
    predicted = model.predict(vectoriser.transform([r["text"] for r in test]))
    return sum(p == r["proxy"]["type"] for p, r in zip(predicted, test, strict=True)) / len(test)


def our_accuracy(train: list[dict], test: list[dict]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        for part, rows in (("train", train), ("test", test)):
            Path(tmp, f"{part}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                                  encoding="utf-8")
        env = dict(os.environ, INTAKE_MODELS_DIR=f"{tmp}/models")
        fields = ["--text-field", "text", "--label-field", "proxy.type"]
        subprocess.run(["intake", "classifiers", "train", "--data", f"{tmp}/train.jsonl", *fields,
                        "--version", "split"], env=env, check=True, capture_output=True)
        out = subprocess.run(["intake", "classifiers", "evaluate", "--data", f"{tmp}/test.jsonl", *fields,
                              "--model", "split", "--json"], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", help="names in ../shared/data/labeled, such as zh-hotel")
    parser.add_argument("--salts", default="fresh2:,fresh3:", help="comma-separated; check.py uses 'split:'")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    for name in args.sets:
        lines = (args.data / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [r for r in map(json.loads, lines) if r["proxy"].get("type") in KEEP]
        for salt in args.salts.split(","):
            train, test = halves(rows, salt)
            ours, reference = our_accuracy(train, test), reference_accuracy(train, test)
            print(f"{name} salt={salt!r} n_test={len(test)} ours={ours:.4f} reference={reference:.4f} "
                  f"diff={ours - reference:+.4f}", flush=True)


if __name__ == "__main__":
    main()
