"""The learned classifier: a spaCy `textcat` over weighted character and word n-grams.

A blank multilingual (`xx`) spaCy pipeline with one `textcat` whose model is `omnintake.NgramBOW.v1`
(classifiers/textcat_features.py): spaCy's bag-of-n-grams classifier fed with character 1-4-grams
and word 1-2-grams (for Vietnamese, syllable pairs). Documents are the NFKC-normalised, case-folded
text split into words and punctuation; Chinese gets no word features (the character n-grams cover
its words, and a segmenter would cost more than the whole model).
Text beyond MAX_CHARS is cut before it reaches the model.

Every choice that shapes training is a field of `TextCatSettings`, saved with each model version.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import spacy
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch
from thinc.api import Adam

from classifiers.normalise import fold, nfkc_casefold, printable
from classifiers.textcat_features import (
    ARCHITECTURE,
    ARCHITECTURE_IDF,
    fit_document_frequencies,
    model_doc,
    text_batch,
)

MAX_CHARS = 1000
EMPTY_CONFIDENCE = 0.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TextCatSettings:
    """How a model is built and trained; the defaults were chosen on held-out slices of training halves."""

    # ARCHITECTURE_IDF: TF-IDF weighted inputs (normalise does not apply); ARCHITECTURE (v1): the
    # shipped model's, raw counts. v2's settings beat the reference on all nine check sets' test halves
    # (v1 missed three); on a split of the training halves alone it won on six of nine
    architecture: str = ARCHITECTURE_IDF
    char_sizes: tuple[int, ...] = (1, 2, 3, 4)
    word_sizes: tuple[int, ...] = (2,)  # word unigrams only repeated the character n-grams under v2
    word_weight: float = 0.3  # of the word group beside the character group (each has unit length)
    normalise: bool = False  # True: 1 + log(count), unit length per group; False: raw counts as in TextCatBOW
    # Greek accents and diaeresis removed before the model reads a text, as the rules do: Greek tweets and
    # SMS often come without them, and accented training lines then share no n-gram with them
    fold_accents: bool = True
    hash_rows: int = 2**20
    learn_rate: float = 0.012  # v2's unit-length inputs need a larger step than v1's raw counts (0.001)
    l2: float = 0.0  # weight decay (thinc's Adam L2)
    batch_size: int = 64
    max_epochs: int = 10
    # early stopping: a seeded slice of the training data (never the evaluation data) is held out,
    # training stops once its mean log-likelihood has not improved for `patience` epochs
    dev_fraction: float = 0.0  # 0: no early stopping (on the check sets' training halves it chose too few epochs)
    min_dev_examples: int = 30
    patience: int = 2
    min_epochs: int = 1  # early stopping chooses among epochs from this one on
    refit: bool = True  # after early stopping, train a fresh model on all of the data for the best epoch count
    epochs_without_dev: int = 4  # a set too small for a dev slice trains this many epochs
    # class balance: each example of a class with n examples is seen (n_largest / n) ** balance times
    # per epoch (0: as given, 1: every class as often as the largest)
    balance: float = 0.0


DEFAULT_SETTINGS = TextCatSettings()


class TrainingDataError(ValueError):
    """The training examples cannot make a model; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    scores: dict[str, float]


def model_text(text: str, fold_accents: bool = False) -> str:
    return " ".join((fold if fold_accents else nfkc_casefold)(printable(text)).split())[:MAX_CHARS]


class TextCatClassifier:
    """Predicts one label per text; `train` builds it, `save` / `load` keep it on disk."""

    name = "textcat"

    def __init__(self, nlp: spacy.language.Language) -> None:
        self.nlp = nlp
        self._textcat = nlp.get_pipe("textcat")
        self._lock = threading.Lock()
        # the model reads token text only: skip computing spaCy's lexical attributes for every new word
        nlp.vocab.lex_attr_getters = {}
        # versions saved before omnintake.NgramBOW read spaCy's TextCatBOW over one token per character
        self._char_tokens = (nlp.config["components"]["textcat"]["model"]["@architectures"]
                             not in (ARCHITECTURE, ARCHITECTURE_IDF))
        self.labels: tuple[str, ...] = tuple(self._textcat.labels)
        self.fold_accents = bool(nlp.config["components"]["textcat"]["model"].get("fold_accents", False))

    def _doc(self, text: str) -> Doc:
        return self._model_doc(model_text(text, self.fold_accents))

    def _model_doc(self, normalised: str) -> Doc:
        if self._char_tokens:
            return Doc(self.nlp.vocab, words=[" ", *normalised, " "])
        return model_doc(self.nlp.vocab, normalised)

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0,
              settings: TextCatSettings = DEFAULT_SETTINGS,
              progress: Callable[[int, int], None] | None = None) -> TextCatClassifier:
        """Early stopping on a slice of the training data picks the number of epochs; with `refit`, a fresh
        model then learns from all of the data for that many epochs."""
        check_training_data(texts, labels)
        label_set = sorted(set(labels))
        model = cls._blank(label_set, settings, seed)
        examples = [_example(model._doc(t), {x: float(x == y) for x in label_set})
                    for t, y in zip(texts, labels, strict=True)]
        rng = random.Random(seed)
        fit, dev = dev_split(examples, labels, settings, rng)
        fit = balanced(fit, settings.balance)
        work = (settings.max_epochs * len(fit) + (settings.max_epochs * len(examples) if settings.refit else 0)
                if dev else settings.epochs_without_dev * len(fit))
        counter = _Progress(work, progress)
        epochs = model._fit(fit, dev, settings.max_epochs if dev else settings.epochs_without_dev, settings, rng,
                            counter)
        if dev and settings.refit:
            counter.total = counter.done + epochs * len(examples)
            model = cls._blank(label_set, settings, seed)
            model._fit(balanced(examples, settings.balance), [], epochs, settings, random.Random(seed), counter)
        counter.finish()
        return model

    @classmethod
    def _blank(cls, label_set: Sequence[str], settings: TextCatSettings, seed: int) -> TextCatClassifier:
        fix_random_seed(seed)
        nlp = spacy.blank("xx")
        if settings.architecture not in (ARCHITECTURE, ARCHITECTURE_IDF):
            raise ValueError(f"unknown architecture {settings.architecture!r}: "
                             f"expected {ARCHITECTURE!r} or {ARCHITECTURE_IDF!r}")
        model_config: dict[str, Any] = {
            "@architectures": settings.architecture, "char_sizes": list(settings.char_sizes),
            "word_sizes": list(settings.word_sizes), "word_weight": settings.word_weight,
            "length": settings.hash_rows, "fold_accents": settings.fold_accents}
        if settings.architecture == ARCHITECTURE:
            model_config["normalise"] = settings.normalise
        else:
            model_config["idf_rows"] = settings.hash_rows
        textcat = nlp.add_pipe("textcat", config={"model": model_config})
        for label in label_set:
            textcat.add_label(label)
        return cls(nlp)

    def _fit(self, fit: list[Example], dev: list[Example], max_epochs: int, settings: TextCatSettings,
             rng: random.Random, counter: _Progress) -> int:
        """Train up to `max_epochs` (fewer when the dev score stops improving); keeps the best epoch's
        averaged weights and returns how many epochs that was."""
        self.nlp.initialize(lambda: fit[:500])
        if settings.architecture == ARCHITECTURE_IDF:
            # each training text counts once, however often class balance repeats it
            unique = {id(eg): eg.predicted for eg in fit}
            fit_document_frequencies(self._textcat.model, list(unique.values()))
        # averaged weights (as `spacy train` saves them) are steadier than the last step's
        optimizer = Adam(settings.learn_rate, L2=settings.l2, use_averages=True)
        best_score, best_weights, best_epochs = -math.inf, b"", 0
        for epoch in range(1, max_epochs + 1):
            rng.shuffle(fit)
            for batch in minibatch(fit, settings.batch_size):
                self._textcat.update(batch, sgd=optimizer, drop=0.0)
                counter.add(len(batch))
            if not dev or epoch < settings.min_epochs:
                continue
            with self.nlp.use_params(optimizer.averages):
                score = self._dev_score(dev)
                if score > best_score:
                    best_score, best_weights, best_epochs = score, self.nlp.to_bytes(), epoch
            if epoch - best_epochs >= settings.patience:
                break
        if not dev:
            with self.nlp.use_params(optimizer.averages):
                best_weights, best_epochs = self.nlp.to_bytes(), max_epochs
        self.nlp.from_bytes(best_weights)
        self.labels = tuple(self._textcat.labels)
        return best_epochs

    def _dev_score(self, examples: Sequence[Example]) -> float:
        """Mean log-probability of the gold labels: smoother than accuracy on a small slice."""
        docs = self._textcat.pipe((eg.predicted for eg in examples), batch_size=512)
        total = sum(math.log(max(doc.cats[_gold(eg)], 1e-6)) for doc, eg in zip(docs, examples, strict=True))
        return total / len(examples)

    def predict(self, texts: Iterable[str], batch_size: int = 512) -> list[Prediction]:
        normalised = [model_text(t, self.fold_accents) for t in texts]
        if self._char_tokens:
            return self._predict_docs(normalised, batch_size)
        out: list[Prediction] = []
        for start in range(0, len(normalised), batch_size):
            batch = normalised[start:start + batch_size]
            probabilities = self._textcat.model.ops.to_numpy(self._textcat.model.predict(text_batch(batch)))
            out.extend(_prediction(text, dict(zip(self.labels, row.tolist(), strict=True)))
                       for text, row in zip(batch, probabilities, strict=True))
        return out

    def _predict_docs(self, normalised: list[str], batch_size: int) -> list[Prediction]:
        """Versions from before omnintake.NgramBOW read spaCy Docs."""
        # a memory zone frees the words of these texts from the vocabulary afterwards: a long-running
        # process would otherwise keep every word it has ever seen. Zones must not nest or overlap, and
        # one model is shared by the pipeline's threads, hence the lock.
        with self._lock, self.nlp.memory_zone():
            docs = self._textcat.pipe((self._model_doc(t) for t in normalised), batch_size=batch_size)
            return [_prediction(text, doc.cats) for text, doc in zip(normalised, docs, strict=True)]

    def save(self, path: Path) -> None:
        self.nlp.to_disk(path)

    @classmethod
    def load(cls, path: Path) -> TextCatClassifier:
        return cls(spacy.load(path))


class _Progress:
    def __init__(self, total: int, report: Callable[[int, int], None] | None) -> None:
        self.done, self.total, self.report = 0, total, report

    def add(self, n: int) -> None:
        self.done += n
        if self.report:
            self.report(self.done, self.total)

    def finish(self) -> None:
        self.total = self.done
        self.add(0)


def _prediction(text: str, probabilities: dict[str, float]) -> Prediction:
    scores = {k: round(float(v), 4) for k, v in probabilities.items()}
    label = max(scores, key=scores.__getitem__)
    return Prediction(label, scores[label] if text else EMPTY_CONFIDENCE, scores)


def settings_dict(settings: TextCatSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    return asdict(settings)


def _example(doc: Doc, cats: dict[str, float]) -> Example:
    # cheaper than Example.from_dict, which rebuilds the reference Doc word by word in Python
    reference = doc.copy()
    reference.cats = cats
    return Example(doc, reference)


def _gold(example: Example) -> str:
    cats = example.reference.cats
    return max(cats, key=cats.__getitem__)


def dev_split(examples: list[T], labels: Sequence[str], settings: TextCatSettings,
              rng: random.Random) -> tuple[list[T], list[T]]:
    """A seeded, stratified slice of the training examples for early stopping (none for tiny sets)."""
    n_dev = int(len(examples) * settings.dev_fraction)
    if n_dev < settings.min_dev_examples:
        return list(examples), []
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    dev_ids: set[int] = set()
    for label in sorted(by_label):
        ids = by_label[label]
        rng.shuffle(ids)
        dev_ids.update(ids[: round(len(ids) * settings.dev_fraction)])
    return ([eg for i, eg in enumerate(examples) if i not in dev_ids],
            [eg for i, eg in enumerate(examples) if i in dev_ids])


def balanced(examples: list[Example], balance: float) -> list[Example]:
    """The examples with those of smaller classes repeated, (n_largest / n_class) ** balance times."""
    if balance <= 0 or not examples:
        return examples
    counts = Counter(_gold(eg) for eg in examples)
    largest = max(counts.values())
    out: list[Example] = []
    for eg in examples:
        out.extend([eg] * max(1, round((largest / counts[_gold(eg)]) ** balance)))
    return out


def check_training_data(texts: Sequence[str], labels: Sequence[str]) -> None:
    if len(texts) != len(labels):
        raise TrainingDataError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise TrainingDataError("no training examples")
    if not any(model_text(t) for t in texts):
        raise TrainingDataError(f"all {len(texts)} training examples have no text (empty or only spaces)")
    counts = Counter(labels)
    if len(counts) < 2:
        raise TrainingDataError(f"only one class in the training data: {next(iter(counts))!r} "
                                f"({len(labels)} examples); a classifier needs at least two")
