import numpy as np
import pytest

from benchmarks.vi_spam_ceiling import best_recall_at, recall_precision


def test_best_recall_at_a_precision_picks_the_deepest_threshold_that_holds_it():
    probability = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    is_spam = np.array([True, True, False, True, True, False])
    # top 1-2: precision 1.0; top 4: 3/4; top 5: 4/5 = 0.8, recall 1.0
    assert best_recall_at(0.8, probability, is_spam) == 1.0
    assert best_recall_at(0.9, probability, is_spam) == pytest.approx(0.5)
    assert best_recall_at(1.01, probability, is_spam) == 0.0


def test_recall_and_precision_of_a_labelling():
    predicted = np.array([True, True, False, False])
    is_spam = np.array([True, False, True, True])
    assert recall_precision(predicted, is_spam) == (pytest.approx(1 / 3), 0.5)
