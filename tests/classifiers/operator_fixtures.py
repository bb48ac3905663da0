"""Model versions for operator-loop tests: v1 learned from the small made-up set, v2 the same set
with complaint and praise swapped (so a shadow v2 disagrees with v1 wherever the model decides)."""

from __future__ import annotations

from pathlib import Path

from classifiers.models import ModelMetadata, ModelStore, data_hash, now
from tests.classifiers.textcat_data import rows

SWAP = {"complaint": "praise", "praise": "complaint"}


def build_store(root: Path) -> ModelStore:
    from classifiers.textcat import TextCatClassifier

    store = ModelStore(root)
    data = rows()
    for name, pairs in (("v1", data), ("v2", [(t, SWAP[y]) for t, y in data])):
        texts, labels = [t for t, _ in pairs], [y for _, y in pairs]
        model = TextCatClassifier.train(texts, labels, seed=0)
        store.save(name, model, ModelMetadata(version=name, task="type", labels=sorted(set(labels)),
                                              data_hash=data_hash(pairs), n_examples=len(pairs), seed=0,
                                              created_at=now()))
    return store
