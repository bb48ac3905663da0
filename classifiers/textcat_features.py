"""The learned classifier's features: a spaCy architecture, a bag of weighted character and word n-grams.

`omnintake.NgramBOW.v1` is spaCy's TextCatBOW with its feature extractor replaced. TextCatBOW feeds raw
n-gram counts of one token attribute to a sparse linear layer; here each document gives two groups:
- character n-grams of its text (word boundaries included), which need no segmenter for Chinese and
  let Vietnamese, Russian and Greek inflections share stems;
- word n-grams of its tokens (for Vietnamese, word bigrams are syllable pairs, often whole words).
With `normalise`, a count becomes 1 + log(count) and each group is scaled to unit length (TF-IDF's
sublinear, L2-normalised variant without the IDF); without it (the default, see TextCatSettings) the
counts are raw, as in TextCatBOW. The n-grams of a whole batch are hashed at once with numpy.

`omnintake.NgramBOW.v2` weights the same n-grams as TF-IDF does: (1 + log count) times the feature's
inverse document frequency, each group scaled to unit length. The document frequencies are counted from
the training texts (`fit_document_frequencies`, hashed into `idf_rows` buckets) and kept as a parameter of
the model, so a saved model weights its inputs after loading as it did when trained. Features never seen
in training weigh 0, as a TF-IDF vocabulary drops them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from spacy.attrs import ORTH
from spacy.ml.models.textcat import SparseLinear_v2
from spacy.strings import get_string_id
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Model, chain, softmax_activation

ARCHITECTURE = "omnintake.NgramBOW.v1"
ARCHITECTURE_IDF = "omnintake.NgramBOW.v2"
_TOKEN = re.compile(r"\w+|[^\w\s]+")  # words and runs of punctuation
# A run of Chinese or Japanese characters is not a word (a clause, usually); the character n-grams cover
# those words, and as word features the runs only added noise on held-out slices of training halves.
_IDEOGRAPH_RUN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_IDEOGRAPHS = "\u3007"  # one placeholder token per run, so a Chinese text is never an empty Doc
_TEXT = "model_text"
_DOC_GAP = 0  # code point between two documents' texts: no character n-gram spans it
_MIX = np.uint64(0x9E3779B97F4A7C15)
_GROUP_CHARS, _GROUP_WORDS = np.uint64(0x1000), np.uint64(0x2000)
_KEY_BITS = 40  # of a key kept under the document index when counting; the linear layer has 2**20 rows


def _words(text: str) -> list[str]:
    return _TOKEN.findall(_IDEOGRAPH_RUN.sub(_IDEOGRAPHS, text))


def model_doc(vocab: Vocab, text: str) -> Doc:
    """The Doc the model reads in training: the words and punctuation of the text, which it also keeps
    whole. Rebuilding `Doc.text` token by token would cost more than the whole model, and the tokens only
    serve as words, so their trailing spaces are left at spaCy's default."""
    doc = Doc(vocab, words=_words(text))
    doc.user_data[_TEXT] = text
    return doc


@dataclass(frozen=True, slots=True)
class TextBatch:
    """What the features read of a batch of texts, for prediction without building spaCy Docs (which
    cost more than the rest of the model): the texts, and their words' ORTH ids (as `Doc.to_array(ORTH)`
    gives them) text after text."""

    texts: list[str]
    orths: np.ndarray
    lengths: list[int]  # words per text

    def __len__(self) -> int:
        return len(self.texts)


def text_batch(texts: Sequence[str]) -> TextBatch:
    words = [_words(text) for text in texts]
    flat = [word for text_words in words for word in text_words]
    ids = {word: get_string_id(word) for word in set(flat)}  # each distinct word hashed once
    return TextBatch(list(texts), np.array([ids[w] for w in flat], dtype=np.uint64), [len(w) for w in words])


Docs = Sequence[Doc] | TextBatch


def _texts(docs: Docs) -> list[str]:
    if isinstance(docs, TextBatch):
        return docs.texts
    return [doc.text if (text := doc.user_data.get(_TEXT)) is None else text for doc in docs]


def _orths(docs: Docs) -> tuple[np.ndarray, list[int]]:
    if isinstance(docs, TextBatch):
        return docs.orths, docs.lengths
    arrays = [doc.to_array(ORTH) for doc in docs]
    return (np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)), [len(a) for a in arrays]


def _char_keys(texts: Sequence[str], sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(document index, key) of every character n-gram of the given sizes in each text."""
    joined = "\0".join(f" {t} " for t in texts)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    doc_of = np.cumsum(codes == _DOC_GAP).astype(np.uint64)
    gaps_before = np.concatenate(([0], np.cumsum(codes == _DOC_GAP)))
    docs, keys = [], []
    rolling = np.zeros(len(codes), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for n in range(1, max(sizes) + 1):
            starts = len(codes) - n + 1
            if starts <= 0:
                break
            rolling = rolling[:starts] * _MIX + codes[n - 1:]
            if n in sizes:
                clean = gaps_before[n:n + starts] == gaps_before[:starts]  # no gap inside the window
                docs.append(doc_of[:starts][clean])
                keys.append((rolling[clean] + np.uint64(n)) * _MIX ^ _GROUP_CHARS)
    if not keys:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(docs), np.concatenate(keys)


def _word_keys(docs: Docs, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(document index, key) of every word n-gram of the given sizes in each document."""
    orths, lengths = _orths(docs)
    if not len(orths):
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    words = orths.astype(np.uint64)
    doc_of = np.repeat(np.arange(len(lengths), dtype=np.uint64), lengths)
    out_docs, out_keys = [], []
    with np.errstate(over="ignore"):
        for n in sizes:
            starts = len(words) - n + 1
            if starts <= 0:
                continue
            key = words[:starts].copy()
            for k in range(1, n):
                key = key * _MIX + words[k:starts + k]
            whole = doc_of[:starts] == doc_of[n - 1:]  # the n-gram lies inside one document
            out_keys.append((key[whole] + np.uint64(n)) * _MIX ^ _GROUP_WORDS)
            out_docs.append(doc_of[:starts][whole])
    if not out_keys:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(out_docs), np.concatenate(out_keys)


def _distinct(doc_ids: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document index, key, count) of each distinct key of each document."""
    compound = (doc_ids << np.uint64(_KEY_BITS)) | (keys >> np.uint64(64 - _KEY_BITS))
    distinct, counts = np.unique(compound, return_counts=True)
    owner = (distinct >> np.uint64(_KEY_BITS)).astype(np.int64)
    return owner, distinct & np.uint64((1 << _KEY_BITS) - 1), counts


def _weighted(doc_ids: np.ndarray, keys: np.ndarray, n_docs: int, normalise: bool = True,
              idf: np.ndarray | None = None, word_group: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys per document with 1 + log(count), times the key's idf when given, scaled to unit
    length per document (or raw counts)."""
    if not normalise:  # the linear layer sums repeated keys: one entry per occurrence is the count
        return doc_ids.astype(np.int64), keys >> np.uint64(64 - _KEY_BITS), np.ones(len(keys), dtype=np.float32)
    owner, keys, counts = _distinct(doc_ids, keys)
    if word_group:
        keys = keys | np.uint64(1 << _KEY_BITS)  # words and characters never share a key
    values = 1.0 + np.log(counts.astype(np.float32))
    if idf is not None:
        values = values * idf[_idf_bucket(keys, len(idf))]
    norms = np.sqrt(np.bincount(owner, weights=values * values, minlength=n_docs))
    values = values / np.maximum(norms[owner], 1e-9)
    return owner, keys, values.astype(np.float32)


def _idf_bucket(keys: np.ndarray, rows: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((keys * _MIX) >> np.uint64(32)) % np.uint64(rows)


def extract(docs: Docs, char_sizes: Sequence[int], word_sizes: Sequence[int],
            word_weight: float, normalise: bool = True,
            idf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, values, lengths) for spaCy's sparse linear layer, documents in order."""
    n = len(docs)
    texts = _texts(docs)
    c_owner, c_keys, c_vals = _weighted(*_char_keys(texts, char_sizes), n, normalise, idf)
    parts_owner, parts_keys, parts_vals = [c_owner], [c_keys], [c_vals]
    if word_sizes:
        w_owner, w_keys, w_vals = _weighted(*_word_keys(docs, word_sizes), n, normalise, idf, word_group=True)
        if not normalise:
            w_keys = w_keys | np.uint64(1 << _KEY_BITS)
        parts_owner.append(w_owner)
        parts_keys.append(w_keys)
        parts_vals.append(w_vals * np.float32(word_weight))
    owner = np.concatenate(parts_owner)
    order = np.argsort(owner, kind="stable")
    lengths = np.bincount(owner, minlength=n).astype(np.int32)
    return np.concatenate(parts_keys)[order], np.concatenate(parts_vals)[order], lengths


def ngram_features(char_sizes: Sequence[int], word_sizes: Sequence[int], word_weight: float,
                   normalise: bool) -> Model:
    def forward(model: Model, docs: Sequence[Doc], is_train: bool):
        keys, values, lengths = extract(docs, char_sizes, word_sizes, word_weight, normalise)
        return (model.ops.asarray(keys, dtype="uint64"), model.ops.asarray(values, dtype="f"),
                model.ops.asarray(lengths, dtype="int32")), lambda d_out: []

    return Model("ngram_features", forward)


@registry.architectures(ARCHITECTURE)
def build_ngram_bow(char_sizes: list[int], word_sizes: list[int], word_weight: float = 1.0,
                    normalise: bool = True, length: int = 2**20, nO: int | None = None,
                    fold_accents: bool = False) -> Model:
    """Weighted character + word n-grams -> sparse linear -> softmax (exclusive classes). `fold_accents`
    is read by TextCatClassifier, which prepares the texts (kept in the config, so a saved model keeps it)."""
    sparse_linear = SparseLinear_v2(nO=nO, length=2 ** (length - 1).bit_length())
    model = chain(ngram_features(char_sizes, word_sizes, word_weight, normalise), sparse_linear, softmax_activation())
    model.set_ref("output_layer", sparse_linear)
    model.attrs["multi_label"] = False
    return model


def document_frequencies(docs: Sequence[Doc], char_sizes: Sequence[int], word_sizes: Sequence[int],
                         rows: int, chunk: int = 2000) -> np.ndarray:
    """How many of the documents hold each hashed feature (by idf bucket), chunk by chunk to bound memory."""
    counts = np.zeros(rows, dtype=np.int64)
    for start in range(0, len(docs), chunk):
        part = docs[start:start + chunk]
        groups = [(_char_keys(_texts(part), char_sizes), 0)]
        if word_sizes:
            groups.append((_word_keys(part, word_sizes), 1 << _KEY_BITS))
        for (doc_ids, keys), group_bit in groups:
            _, distinct_keys, _ = _distinct(doc_ids, keys)
            counts += np.bincount(_idf_bucket(distinct_keys | np.uint64(group_bit), rows).astype(np.int64),
                                  minlength=rows)
    return counts


def inverse_document_frequencies(frequencies: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smoothed idf, ln((1 + n) / (1 + df)) + 1, and 0 for features no document holds."""
    idf = np.log((1.0 + n_docs) / (1.0 + frequencies)) + 1.0
    return np.where(frequencies > 0, idf, 0.0).astype(np.float32)


def idf_ngram_features(char_sizes: Sequence[int], word_sizes: Sequence[int], word_weight: float,
                       idf_rows: int) -> Model:
    def forward(model: Model, docs: Sequence[Doc], is_train: bool):
        idf = model.ops.to_numpy(model.get_param("idf"))
        keys, values, lengths = extract(docs, char_sizes, word_sizes, word_weight, True, idf)
        return (model.ops.asarray(keys, dtype="uint64"), model.ops.asarray(values, dtype="f"),
                model.ops.asarray(lengths, dtype="int32")), lambda d_out: []

    def init(model: Model, X=None, Y=None) -> None:
        if not model.has_param("idf"):  # every feature weighs 1 until fit_document_frequencies counts them
            model.set_param("idf", model.ops.alloc1f(idf_rows) + 1.0)

    model = Model("idf_ngram_features", forward, init=init, params={"idf": None},
                  attrs={"char_sizes": list(char_sizes), "word_sizes": list(word_sizes)})
    return model


def fit_document_frequencies(model: Model, docs: Sequence[Doc]) -> None:
    """Count the features' document frequencies in `docs` (the training texts) into an NgramBOW.v2 model."""
    features = model.get_ref("features")
    rows = features.get_param("idf").shape[0]
    frequencies = document_frequencies(docs, features.attrs["char_sizes"], features.attrs["word_sizes"], rows)
    features.set_param("idf", features.ops.asarray1f(inverse_document_frequencies(frequencies, len(docs))))


@registry.architectures(ARCHITECTURE_IDF)
def build_ngram_bow_idf(char_sizes: list[int], word_sizes: list[int], word_weight: float = 1.0,
                        length: int = 2**20, idf_rows: int = 2**20, nO: int | None = None,
                        fold_accents: bool = False) -> Model:
    """TF-IDF weighted character + word n-grams -> sparse linear -> softmax (exclusive classes)."""
    features = idf_ngram_features(char_sizes, word_sizes, word_weight, idf_rows)
    sparse_linear = SparseLinear_v2(nO=nO, length=2 ** (length - 1).bit_length())
    model = chain(features, sparse_linear, softmax_activation())
    model.set_ref("output_layer", sparse_linear)
    model.set_ref("features", features)
    model.attrs["multi_label"] = False
    return model
