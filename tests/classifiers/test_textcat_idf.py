import pytest

pytest.importorskip("spacy")  # declared in pyproject.toml; skips only where it is not installed yet

import dataclasses

import numpy as np
import spacy

from classifiers.textcat import DEFAULT_SETTINGS, TextCatClassifier, settings_dict
from classifiers.textcat_features import (
    ARCHITECTURE_IDF,
    document_frequencies,
    extract,
    inverse_document_frequencies,
    model_doc,
)
from tests.classifiers.textcat_data import COMPLAINT, PRAISE, rows

IDF_SETTINGS = dataclasses.replace(DEFAULT_SETTINGS, architecture=ARCHITECTURE_IDF, learn_rate=0.01,
                                   hash_rows=2**16)


@pytest.fixture(scope="module")
def model():
    data = rows()
    return TextCatClassifier.train([t for t, _ in data], [y for _, y in data], seed=3, settings=IDF_SETTINGS)


def _idf(model: TextCatClassifier) -> np.ndarray:
    return model._textcat.model.get_ref("features").get_param("idf")


def test_idf_model_learns_both_classes(model):
    preds = model.predict(COMPLAINT + PRAISE)
    assert [p.label for p in preds] == ["complaint"] * len(COMPLAINT) + ["praise"] * len(PRAISE)


def test_document_frequencies_come_from_the_training_texts(model):
    idf = _idf(model)
    assert idf.shape == (2**16,)
    n_docs = len(rows())
    seen = idf[idf > 0]
    # features no training text holds weigh 0; the others ln((1 + n) / (1 + df)) + 1, at most ln(1 + n) + 1
    assert 0 < len(seen) < len(idf)
    assert seen.min() >= 1.0 and seen.max() <= np.log(1 + n_docs / 2) + 1 + 1e-5


def test_idf_round_trip_gives_identical_predictions(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = TextCatClassifier.load(tmp_path / "m")
    assert np.array_equal(_idf(loaded), _idf(model))
    assert spacy.load(tmp_path / "m").config["components"]["textcat"]["model"]["@architectures"] == ARCHITECTURE_IDF
    texts = COMPLAINT + PRAISE + ["送餐太慢", "excellent", "πολύ κακό", "something never seen: qzxv"]
    assert [p.scores for p in loaded.predict(texts)] == [p.scores for p in model.predict(texts)]


def test_common_features_weigh_less_and_rows_have_unit_length():
    vocab = spacy.blank("xx").vocab
    docs = [model_doc(vocab, t) for t in ["aab", "aac", "aad", "aae", "aaf"]]
    frequencies = document_frequencies(docs, (1,), (), 2**12)
    idf = inverse_document_frequencies(frequencies, len(docs))
    keys, values, _ = extract(docs[:1], (1,), (), 1.0, True, idf)
    assert np.isclose(float(np.sum(values * values)), 1.0, atol=1e-5)
    weighted = dict(zip(keys.tolist(), values.tolist(), strict=True))
    plain_keys, plain_values, _ = extract(docs[:1], (1,), (), 1.0, True)
    plain = dict(zip(plain_keys.tolist(), plain_values.tolist(), strict=True))
    # " aab ": 'a' and ' ' twice each and in every text, 'b' once and only here
    b_key = min(plain, key=plain.__getitem__)
    everywhere = [k for k in plain if k != b_key]
    assert all(plain[k] > plain[b_key] for k in everywhere)
    assert all(weighted[k] < weighted[b_key] for k in everywhere)


def test_unknown_architecture_is_an_error():
    data = rows()[:20] + rows()[-20:]
    with pytest.raises(ValueError, match="unknown architecture"):
        TextCatClassifier.train([t for t, _ in data], [y for _, y in data],
                                settings=dataclasses.replace(DEFAULT_SETTINGS, architecture="nope.v1"))


def test_settings_record_the_architecture():
    assert settings_dict(IDF_SETTINGS)["architecture"] == ARCHITECTURE_IDF
