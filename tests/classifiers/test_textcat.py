import pytest

pytest.importorskip("spacy")  # declared in pyproject.toml; skips only where it is not installed yet

import dataclasses
import random

from classifiers.textcat import (
    DEFAULT_SETTINGS,
    EMPTY_CONFIDENCE,
    MAX_CHARS,
    TextCatClassifier,
    TrainingDataError,
    dev_split,
    model_text,
)
from classifiers.textcat_features import ARCHITECTURE
from tests.classifiers.textcat_data import COMPLAINT, PRAISE, rows


@pytest.fixture(scope="module")
def model():
    data = rows()
    return TextCatClassifier.train([t for t, _ in data], [y for _, y in data], seed=3)


def test_learns_both_classes_in_every_language(model):
    preds = model.predict(COMPLAINT + PRAISE)
    got = [p.label for p in preds]
    assert got == ["complaint"] * len(COMPLAINT) + ["praise"] * len(PRAISE)
    assert all(0.5 < p.confidence <= 1.0 for p in preds)
    assert set(model.labels) == {"complaint", "praise"}


def test_unseen_wording_uses_character_ngrams(model):
    # "质量太差" and "deньги не вернули" were seen only inside longer sentences
    preds = model.predict(["质量太差", "деньги не вернули"])
    assert [p.label for p in preds] == ["complaint", "complaint"]


def test_same_seed_same_model():
    data = rows()[:40] + rows()[-40:]
    texts, labels = [t for t, _ in data], [y for _, y in data]
    a = TextCatClassifier.train(texts, labels, seed=7).predict(["so so, not sure"])
    b = TextCatClassifier.train(texts, labels, seed=7).predict(["so so, not sure"])
    assert a[0].scores == b[0].scores


def test_save_and_load_give_the_same_answers(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = TextCatClassifier.load(tmp_path / "m")
    texts = ["送餐太慢", "excellent", "πολύ κακό"]
    assert [p.scores for p in loaded.predict(texts)] == [p.scores for p in model.predict(texts)]


def test_empty_text_is_a_low_confidence_answer(model):
    pred = model.predict(["", "   \n"])
    assert [p.confidence for p in pred] == [EMPTY_CONFIDENCE, EMPTY_CONFIDENCE]
    assert all(p.label in model.labels for p in pred)


def test_a_megabyte_of_text_is_cut_not_a_crash(model):
    huge = "terrible service, " * 60_000
    assert len(model_text(huge)) == MAX_CHARS
    [pred] = model.predict([huge])
    assert pred.label == "complaint"


def test_nul_and_lone_surrogates_are_read_as_spaces_in_training_and_prediction(model):
    # NUL separates texts inside the feature extractor, and a lone surrogate (valid in JSON) cannot be encoded
    odd = ["terrible\x00service", "terrible \udc00 service", "great\x01food"]
    assert [p.label for p in model.predict(odd)] == ["complaint", "complaint", "praise"]
    data = rows()
    texts = [t if i % 5 else t + "\x00\ud800" for i, (t, _) in enumerate(data)]
    retrained = TextCatClassifier.train(texts, [y for _, y in data], seed=3)
    assert [p.label for p in retrained.predict(odd)] == ["complaint", "complaint", "praise"]


def test_one_class_is_an_error_naming_the_class():
    with pytest.raises(TrainingDataError, match=r"only one class.*'complaint'"):
        TextCatClassifier.train(["a", "b"], ["complaint", "complaint"])


def test_no_examples_is_an_error():
    with pytest.raises(TrainingDataError, match="no training examples"):
        TextCatClassifier.train([], [])


def test_texts_of_different_lengths_and_labels_are_an_error():
    with pytest.raises(TrainingDataError, match="3 texts but 2 labels"):
        TextCatClassifier.train(["a", "b", "c"], ["complaint", "praise"])


def test_all_texts_empty_is_an_error():
    with pytest.raises(TrainingDataError, match="no text"):
        TextCatClassifier.train(["", "  ", "\n"], ["complaint", "praise", "praise"])


def test_saved_model_records_its_features_and_reloads_them(model, tmp_path):
    model.save(tmp_path / "m")
    config = TextCatClassifier.load(tmp_path / "m").nlp.config["components"]["textcat"]["model"]
    assert config["@architectures"] == DEFAULT_SETTINGS.architecture
    assert config["char_sizes"] == list(DEFAULT_SETTINGS.char_sizes)
    assert config["word_sizes"] == list(DEFAULT_SETTINGS.word_sizes)


def test_progress_reaches_its_total():
    data = rows()
    seen = []
    TextCatClassifier.train([t for t, _ in data], [y for _, y in data], progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and all(d <= t for d, t in seen)


def test_early_stopping_slice_is_stratified_and_seeded():
    settings = dataclasses.replace(DEFAULT_SETTINGS, dev_fraction=0.1, min_dev_examples=30)
    labels = ["a"] * 300 + ["b"] * 100
    fit, dev = dev_split(list(range(400)), labels, settings, random.Random(1))
    assert len(dev) == 40 and sum(labels[i] == "b" for i in dev) == 10 and not set(fit) & set(dev)
    assert dev_split(list(range(400)), labels, settings, random.Random(1))[1] == dev
    assert dev_split(list(range(50)), labels[:50], settings, random.Random(1))[1] == []  # too few


def test_early_stopping_then_refit_learns_and_reports_progress():
    settings = dataclasses.replace(DEFAULT_SETTINGS, dev_fraction=0.25, min_dev_examples=5, max_epochs=6)
    data = rows()
    seen = []
    model = TextCatClassifier.train([t for t, _ in data], [y for _, y in data], settings=settings, seed=2,
                                    progress=lambda d, t: seen.append((d, t)))
    assert [p.label for p in model.predict(COMPLAINT[:2] + PRAISE[:2])] == ["complaint"] * 2 + ["praise"] * 2
    assert seen[-1][0] == seen[-1][1] and all(d <= t for d, t in seen)


def test_threads_sharing_a_model_get_the_same_answers(model):
    from concurrent.futures import ThreadPoolExecutor

    texts = [t for t, _ in rows()]
    expected = [p.scores for p in model.predict(texts)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: [p.scores for p in model.predict(texts)], range(8)))
    assert all(r == expected for r in results)


def test_model_doc_words_and_kept_text():
    import spacy

    from classifiers.textcat_features import model_doc

    doc = model_doc(spacy.blank("xx").vocab, "giao hàng chậm, 送餐太慢了！")
    assert [t.text for t in doc] == ["giao", "hàng", "chậm", ",", "\u3007", "！"]  # ideographs: one placeholder
    assert doc.user_data["model_text"] == "giao hàng chậm, 送餐太慢了！"  # the character n-grams read the whole text


def test_features_have_unit_length_per_group_when_normalised():
    import numpy as np
    import spacy

    from classifiers.textcat_features import extract, model_doc

    vocab = spacy.blank("xx").vocab
    docs = [model_doc(vocab, "aaaa bbb"), model_doc(vocab, "xin chào bạn")]
    keys, values, lengths = extract(docs, (1, 2, 3), (1, 2), 1.0, normalise=True)
    assert lengths.sum() == len(keys) == len(values) and len(set(keys[: lengths[0]].tolist())) == lengths[0]
    first = values[: lengths[0]]
    assert np.isclose(float((first**2).sum()), 2.0, atol=1e-4)  # characters and words, each of unit length
    raw_keys, raw_values, raw_lengths = extract(docs, (1,), (), 1.0, normalise=False)
    counts: dict[int, float] = {}  # raw counts come one entry per occurrence: the linear layer sums them
    for key, value in zip(raw_keys[: raw_lengths[0]].tolist(), raw_values[: raw_lengths[0]].tolist(), strict=True):
        counts[key] = counts.get(key, 0.0) + value
    assert sorted(counts.values()) == [3.0, 3.0, 4.0]  # " aaaa bbb ": " " x3, "b" x3, "a" x4


def test_a_batch_gives_each_document_the_features_it_has_alone():
    """N-grams never span two documents of a batch (characters or words)."""
    import spacy

    from classifiers.textcat_features import extract, model_doc

    vocab = spacy.blank("xx").vocab
    texts = ["giao hàng chậm", "x", "房间很干净，服务好", "ok ok ok"]
    docs = [model_doc(vocab, t) for t in texts]
    keys, values, lengths = extract(docs, (1, 2, 3, 4), (1, 2), 1.0, normalise=False)
    start = 0
    for doc, n in zip(docs, lengths.tolist(), strict=True):
        alone_keys, alone_values, _ = extract([doc], (1, 2, 3, 4), (1, 2), 1.0, normalise=False)
        assert sorted(zip(keys[start:start + n].tolist(), values[start:start + n].tolist(), strict=True)) == sorted(
            zip(alone_keys.tolist(), alone_values.tolist(), strict=True))
        start += n


def test_balance_repeats_the_smaller_classes():
    import spacy

    from classifiers.textcat import _example, balanced

    nlp = spacy.blank("xx")
    examples = [_example(nlp.make_doc(f"t{i}"), {"a": float(i < 8), "b": float(i >= 8)}) for i in range(10)]
    assert balanced(examples, 0.0) is examples
    assert len(balanced(examples, 1.0)) == 8 + 2 * 4
    assert len(balanced(examples, 0.5)) == 8 + 2 * 2


def test_v1_stays_selectable_and_round_trips(tmp_path):
    data = rows()
    v1 = dataclasses.replace(DEFAULT_SETTINGS, architecture=ARCHITECTURE, word_sizes=(1, 2), word_weight=1.0,
                             learn_rate=0.001)
    model = TextCatClassifier.train([t for t, _ in data], [y for _, y in data], seed=3, settings=v1)
    assert [p.label for p in model.predict(COMPLAINT)] == ["complaint"] * len(COMPLAINT)
    model.save(tmp_path / "v1")
    loaded = TextCatClassifier.load(tmp_path / "v1")
    assert loaded.nlp.config["components"]["textcat"]["model"]["@architectures"] == ARCHITECTURE
    texts = COMPLAINT + PRAISE
    assert [p.scores for p in loaded.predict(texts)] == [p.scores for p in model.predict(texts)]


def test_the_shipped_v1_model_still_loads():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "classifiers" / "shipped" / "type" / "model"
    if not shipped.exists():
        pytest.skip("no shipped model in this checkout")
    model = TextCatClassifier.load(shipped)
    assert model.nlp.config["components"]["textcat"]["model"]["@architectures"] == ARCHITECTURE
    assert model.predict(["the parcel never arrived, I want my money back"])[0].label in model.labels


MIXED = [
    "giao hàng chậm quá",
    "房间很干净，服务好",
    "abc中文def 123",
    "",
    "   ",
    "Ο λογαριασμός μου κλειδώθηκε!!",
    "деньги списали дважды",
    "ok ok ok",
    "x" * 3000,
]


@pytest.mark.parametrize("architecture", ["v1", "v2"])
def test_prediction_without_docs_equals_prediction_through_spacy(architecture):
    """`predict` reads a TextBatch instead of spaCy Docs: the features, and so the scores, are the same."""
    data = rows()
    settings = (
        DEFAULT_SETTINGS
        if architecture == "v2"
        else dataclasses.replace(
            DEFAULT_SETTINGS, architecture=ARCHITECTURE, word_sizes=(1, 2), word_weight=1.0, learn_rate=0.001
        )
    )
    model = TextCatClassifier.train([t for t, _ in data], [y for _, y in data], seed=3, settings=settings)
    texts = MIXED + COMPLAINT + PRAISE
    through_docs = model._predict_docs([model_text(t, model.fold_accents) for t in texts], batch_size=4)
    assert model.predict(texts, batch_size=5) == through_docs
    assert len({p.label for p in through_docs}) == 2


def test_text_batch_words_are_the_docs_words():
    import numpy as np
    import spacy
    from spacy.attrs import ORTH

    from classifiers.textcat_features import _orths, model_doc, text_batch

    vocab = spacy.blank("xx").vocab
    texts = [model_text(t) for t in MIXED]
    orths, lengths = _orths(text_batch(texts))
    doc_orths, doc_lengths = _orths([model_doc(vocab, t) for t in texts])
    assert lengths == doc_lengths and np.array_equal(orths, doc_orths)
    assert np.array_equal(orths[: lengths[0]], model_doc(vocab, texts[0]).to_array(ORTH))


def test_greek_accents_fold_when_the_model_says_so_and_the_setting_is_saved(model, tmp_path):
    accented, plain = "Η εξυπηρέτηση ήταν άψογη, ευχαριστώ!", "η εξυπηρετηση ηταν αψογη, ευχαριστω!"
    assert model.fold_accents
    assert model.predict([accented])[0].scores == model.predict([plain])[0].scores
    model.save(tmp_path / "folded")
    assert TextCatClassifier.load(tmp_path / "folded").fold_accents
    data = rows()
    unfolded = TextCatClassifier.train([t for t, _ in data], [y for _, y in data], seed=3,
                                       settings=dataclasses.replace(DEFAULT_SETTINGS, fold_accents=False))
    assert not unfolded.fold_accents
    assert unfolded.predict([accented])[0].scores != unfolded.predict([plain])[0].scores
