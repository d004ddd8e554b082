"""Youden thresholds (hand-checked, the seed's off-by-one, fallbacks) and validation metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from training.train.thresholds import FALLBACK, aurocs, bce_loss, macro_auroc, thresholds, youden

# Hand-checked: sorted by score 0.8(+) 0.7(+) 0.4(-) 0.35(+) 0.2(-) 0.1(-), 3 positives, 3 negatives.
# threshold   inf  0.8  0.7  0.4  0.35 0.2  0.1
# TPR         0    1/3  2/3  2/3  1    1    1
# FPR         0    0    0    1/3  1/3  2/3  1
# J           0    1/3  2/3  1/3  2/3  1/3  0     -> best J 2/3, first (highest) threshold 0.7
Y = np.array([0, 0, 1, 1, 0, 1], dtype=float)
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7])


def test_youden_hand_checked_example():
    best = youden(Y, P)
    assert best["method"] == "youden"
    assert best["threshold"] == pytest.approx(0.7)
    assert best["j"] == pytest.approx(2 / 3)
    assert best["sensitivity"] == pytest.approx(2 / 3) and best["specificity"] == pytest.approx(1.0)
    predicted = P >= best["threshold"]
    tpr, fpr = predicted[Y == 1].mean(), predicted[Y == 0].mean()
    assert tpr - fpr == pytest.approx(best["j"])  # the threshold really achieves the reported J


def test_the_seeds_off_by_one_picks_a_worse_threshold():
    fpr, tpr, thres = roc_curve(Y, P)
    seed = thres[1:][np.argmax(tpr - fpr)]  # the seed's expression
    predicted = P >= seed
    assert seed < youden(Y, P)["threshold"]  # the next point's threshold: one step too lenient
    assert predicted[Y == 1].mean() - predicted[Y == 0].mean() < 2 / 3 - 0.3  # its J is far below the best
    separable = youden(np.array([0, 0, 1, 1.0]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert separable["threshold"] == pytest.approx(0.8) and separable["j"] == pytest.approx(1.0)


def test_single_class_and_uninformative_scores_fall_back_and_say_so():
    one = youden(np.array([0, 0, 0.0]), np.array([0.2, 0.3, 0.9]))
    assert one["threshold"] == FALLBACK == 0.5 and one["method"] == "fallback: one class in validation"
    assert one["n_pos"] == 0 and one["n_neg"] == 3
    inverted = youden(np.array([0, 1.0]), np.array([0.9, 0.1]))  # the seed raised IndexError here
    assert inverted["threshold"] == 0.5 and inverted["method"] == "fallback: no informative threshold"


def test_unknown_labels_are_skipped():
    labels = np.concatenate([Y, [np.nan, np.nan]])
    probs = np.concatenate([P, [0.99, 0.01]])
    assert youden(labels, probs)["threshold"] == pytest.approx(0.7)
    table = np.stack([labels, labels, np.full(8, np.nan), 1 - labels], 1)
    result = thresholds(table, np.stack([probs] * 4, 1))
    assert list(result) == ["A-lines", "B-lines", "Consolidation", "Pleural effusion"]
    assert result["Consolidation"]["method"] == "fallback: one class in validation"
    per = aurocs(table, np.stack([probs] * 4, 1))
    assert per["Consolidation"] is None and per["A-lines"] == pytest.approx(8 / 9)
    assert macro_auroc(table, np.stack([probs] * 4, 1)) == pytest.approx(np.mean([8 / 9, 8 / 9, 1 - 8 / 9]))


def test_bce_loss_matches_the_formula_and_weights_positives():
    labels = np.array([[1.0, 0.0], [np.nan, 1.0]])
    logits = np.array([[2.0, -1.0], [5.0, 0.0]])
    sig = 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.0])))
    expected = -np.mean([np.log(sig[0]), np.log(1 - sig[1]), np.log(sig[2])])
    assert bce_loss(labels, logits) == pytest.approx(expected)
    weighted = -np.mean([3 * np.log(sig[0]), np.log(1 - sig[1]), 2 * np.log(sig[2])])
    assert bce_loss(labels, logits, np.array([3.0, 2.0])) == pytest.approx(weighted)
