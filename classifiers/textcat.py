"""The learned classifier: spaCy text classification over character n-grams.

A blank multilingual spaCy pipeline with one `textcat` (TextCatBOW). Its documents are built here,
one token per character of the case-folded, NFKC-normalised text, so the bag-of-n-grams model sees
character 1-4-grams: Chinese needs no word segmenter, and Vietnamese syllables, Russian and Greek
inflections share their stems. Text beyond MAX_CHARS is cut before it reaches the model.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import spacy
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch
from thinc.api import Adam

MAX_CHARS = 1000
NGRAM_SIZE = 4
EPOCHS = 4
BATCH_SIZE = 64
LEARN_RATE = 0.001
L2 = 0.0
EMPTY_CONFIDENCE = 0.0


class TrainingDataError(ValueError):
    """The training examples cannot make a model; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    scores: dict[str, float]


def model_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())[:MAX_CHARS]


class TextCatClassifier:
    """Predicts one label per text; `train` builds it, `save` / `load` keep it on disk."""

    name = "textcat"

    def __init__(self, nlp: spacy.language.Language) -> None:
        self.nlp = nlp
        self._textcat = nlp.get_pipe("textcat")
        self.labels: tuple[str, ...] = tuple(self._textcat.labels)

    def _doc(self, text: str) -> Doc:
        # the " " tokens mark word starts and ends as n-gram context; the model reads token text only, so
        # the default trailing spaces do no harm and halve the time it takes to build the Doc
        return Doc(self.nlp.vocab, words=[" ", *model_text(text), " "])

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0, epochs: int = EPOCHS,
              progress: Callable[[int, int], None] | None = None) -> TextCatClassifier:
        check_training_data(texts, labels)
        fix_random_seed(seed)
        nlp = spacy.blank("xx")
        textcat = nlp.add_pipe("textcat", config={"model": {
            "@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True, "length": 2**20,
            "ngram_size": NGRAM_SIZE, "no_output_layer": False}})
        label_set = sorted(set(labels))
        for label in label_set:
            textcat.add_label(label)
        model = cls(nlp)
        examples = [Example.from_dict(model._doc(t), {"cats": {x: float(x == y) for x in label_set}})
                    for t, y in zip(texts, labels, strict=True)]
        nlp.initialize(lambda: examples[:500])
        # averaged weights (as `spacy train` saves them) are steadier than the last step's
        optimizer = Adam(LEARN_RATE, L2=L2, use_averages=True)
        rng = random.Random(seed)
        done, total = 0, epochs * len(examples)
        for _ in range(epochs):
            rng.shuffle(examples)
            for batch in minibatch(examples, BATCH_SIZE):
                nlp.update(batch, sgd=optimizer, drop=0.0)
                done += len(batch)
                if progress:
                    progress(done, total)
        with nlp.use_params(optimizer.averages):
            weights = nlp.to_bytes()
        nlp.from_bytes(weights)
        model.labels = tuple(textcat.labels)
        return model

    def predict(self, texts: Iterable[str], batch_size: int = 512) -> list[Prediction]:
        texts = list(texts)
        out: list[Prediction] = []
        docs = self._textcat.pipe((self._doc(t) for t in texts), batch_size=batch_size)
        for text, doc in zip(texts, docs, strict=True):
            scores = {k: round(float(v), 4) for k, v in doc.cats.items()}
            label = max(scores, key=scores.__getitem__)
            confidence = scores[label] if model_text(text) else EMPTY_CONFIDENCE
            out.append(Prediction(label, confidence, scores))
        return out

    def save(self, path: Path) -> None:
        self.nlp.to_disk(path)

    @classmethod
    def load(cls, path: Path) -> TextCatClassifier:
        return cls(spacy.load(path))


def check_training_data(texts: Sequence[str], labels: Sequence[str]) -> None:
    if len(texts) != len(labels):
        raise TrainingDataError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise TrainingDataError("no training examples")
    counts = Counter(labels)
    if len(counts) < 2:
        raise TrainingDataError(f"only one class in the training data: {next(iter(counts))!r} "
                                f"({len(labels)} examples); a classifier needs at least two")
