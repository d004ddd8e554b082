"""Every statistic against a known value: hand-worked examples, sklearn, a plain O(m n) DeLong written
here independently of the fast one, Holm's textbook example, ECE by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from training.evaluation import binary, calibration, delong

# --- AUROC / AUPRC ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 60), st.integers(1, 5))
def test_weighted_auroc_and_auprc_match_sklearn_with_ties_and_integer_weights(seed, n, levels):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    y[:2] = [True, False]  # both classes present
    scores = rng.integers(0, levels + 1, n) / levels  # few distinct values: many ties
    w = rng.integers(0, 4, (3, n)).astype(float)
    w[:, :2] = 1.0  # every weighting keeps both classes
    got = binary.rank_metrics(scores, y, np.vstack([np.ones(n), w]))
    assert got["auroc"][0] == pytest.approx(roc_auc_score(y, scores))
    assert got["auprc"][0] == pytest.approx(average_precision_score(y, scores))
    for i in range(3):  # a bootstrap weight k = the clip repeated k times
        assert got["auroc"][i + 1] == pytest.approx(roc_auc_score(y, scores, sample_weight=w[i]))
        assert got["auprc"][i + 1] == pytest.approx(average_precision_score(y, scores, sample_weight=w[i]))


def test_auroc_hand_example_and_one_class_is_nan_with_a_reason():
    # positives .9 .8 .4, negatives .7 .3: pairs won 1+1+1+1+(1 of 2) = 5 of 6
    scores, y = np.array([0.9, 0.8, 0.4, 0.7, 0.3]), np.array([1, 1, 1, 0, 0])
    assert binary.rank_metrics(scores, y)["auroc"][0] == pytest.approx(5 / 6)
    only_neg = binary.all_metrics(scores, np.zeros(5), 0.5)
    assert np.isnan(only_neg["auroc"][0]) and np.isnan(only_neg["auprc"][0]) and np.isnan(only_neg["sensitivity"][0])
    assert only_neg["specificity"][0] == pytest.approx(2 / 5)  # .4 and .3 are below 0.5
    reasons = binary.undefined_reason(np.zeros(5), scores >= 0.5)
    assert "one class" in reasons["auroc"] and "only negatives (5)" in reasons["auroc"]
    assert reasons["sensitivity"] == "no positives" and "specificity" not in reasons
    assert set(binary.undefined_reason(np.array([]), np.array([], bool))) == set(binary.METRICS)


def test_threshold_metrics_on_a_hand_confusion_matrix():
    # TP 40, FP 10, FN 20, TN 130
    y = np.array([1] * 40 + [0] * 10 + [1] * 20 + [0] * 130)
    p = np.array([1] * 40 + [1] * 10 + [0] * 20 + [0] * 130)
    counts = binary.confusion(p, y)
    assert counts.tolist() == [[40, 10, 20, 130]]
    m = binary.from_confusion(counts)
    assert m["sensitivity"][0] == pytest.approx(40 / 60)
    assert m["specificity"][0] == pytest.approx(130 / 140)
    assert m["ppv"][0] == pytest.approx(40 / 50)
    assert m["npv"][0] == pytest.approx(130 / 150)
    assert m["f1"][0] == pytest.approx(2 * 40 / (2 * 40 + 10 + 20))
    # the threshold rule: predicted positive when prob >= threshold (per-item thresholds allowed)
    got = binary.all_metrics(np.array([0.5, 0.49, 0.7, 0.2]), np.array([1, 1, 0, 0]), np.array([0.5, 0.5, 0.8, 0.1]))
    assert got["sensitivity"][0] == 0.5 and got["specificity"][0] == 0.5


def test_ppv_undefined_when_nothing_is_called_positive():
    m = binary.all_metrics(np.array([0.1, 0.2, 0.3]), np.array([1, 0, 0]), 0.9)
    assert np.isnan(m["ppv"][0]) and m["npv"][0] == pytest.approx(2 / 3) and m["f1"][0] == 0.0
    assert binary.undefined_reason(np.array([1, 0, 0]), np.zeros(3, bool))["ppv"] == "nothing predicted positive"


# --- DeLong -------------------------------------------------------------------------------------------


def plain_delong(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) written out: psi over all m x n pairs, structural components, covariance."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    k = scores.shape[0]
    v10, v01 = np.zeros((k, m)), np.zeros((k, n))
    for r in range(k):
        for i in range(m):
            for j in range(n):
                psi = 1.0 if pos[r, i] > neg[r, j] else 0.5 if pos[r, i] == neg[r, j] else 0.0
                v10[r, i] += psi / n
                v01[r, j] += psi / m
    aucs = v10.mean(axis=1)
    s10 = np.array([[np.sum((v10[a] - aucs[a]) * (v10[b] - aucs[b])) / (m - 1) for b in range(k)] for a in range(k)])
    s01 = np.array([[np.sum((v01[a] - aucs[a]) * (v01[b] - aucs[b])) / (n - 1) for b in range(k)] for a in range(k)])
    return aucs, s10 / m + s01 / n


def test_delong_hand_example():
    # positives .9 .8 .4, negatives .7 .3. V10 = (1, 1, .5), V01 = (2/3, 1); AUC = 5/6.
    # S10 = var(1, 1, .5) = 1/12, S01 = var(2/3, 1) = 1/18; Var = S10/3 + S01/2 = 1/36 + 1/36 = 1/18.
    aucs, cov = delong.delong_covariance(np.array([[0.9, 0.8, 0.4, 0.7, 0.3]]), np.array([1, 1, 1, 0, 0]))
    assert aucs[0] == pytest.approx(5 / 6)
    assert cov[0, 0] == pytest.approx(1 / 18)


@pytest.mark.parametrize("seed", range(5))
def test_fast_delong_equals_the_plain_pairwise_computation_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = (rng.random(n) < 0.35).astype(int)
    y[:2] = [1, 0]
    a = np.round(y * 1.0 + rng.normal(0, 1, n), 1)  # rounded: ties within and across classes
    b = np.round(0.5 * a + y * 0.3 + rng.normal(0, 1, n), 1)
    c = rng.normal(0, 1, n)
    scores = np.vstack([a, b, c])
    aucs, cov = delong.delong_covariance(scores, y)
    plain_aucs, plain_cov = plain_delong(scores, y)
    np.testing.assert_allclose(aucs, plain_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, plain_cov, atol=1e-12)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, s) for s in scores], atol=1e-12)
    test = delong.paired_test(a, b, y)
    z = (plain_aucs[0] - plain_aucs[1]) / np.sqrt(plain_cov[0, 0] + plain_cov[1, 1] - 2 * plain_cov[0, 1])
    assert test.z == pytest.approx(z) and test.p == pytest.approx(2 * norm.sf(abs(z)))
    assert test.difference == pytest.approx(plain_aucs[0] - plain_aucs[1])


def test_delong_degenerate_cases_give_nan_with_a_reason():
    y = np.array([1, 1, 0, 0])
    same = delong.paired_test(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0.9, 0.8, 0.2, 0.1]), y)
    assert np.isnan(same.p) and "zero variance" in same.reason and same.difference == 0
    one_class = delong.paired_test(np.ones(3), np.zeros(3), np.ones(3))
    assert np.isnan(one_class.p) and "one class" in one_class.reason


def test_delong_interval_is_the_normal_interval_clipped():
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.5).astype(int)
    s = y + rng.normal(0, 1, 200)
    auc, low, high = delong.delong_interval(s, y, 0.95)
    aucs, cov = plain_delong(s[None], y)
    half = norm.ppf(0.975) * np.sqrt(cov[0, 0])
    assert (auc, low, high) == pytest.approx((aucs[0], aucs[0] - half, aucs[0] + half))
    perfect = delong.delong_interval(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0]))
    assert perfect == (1.0, 1.0, 1.0)


def test_holm_textbook_example():
    # Wikipedia "Holm-Bonferroni method": p = (.01, .04, .03, .005), alpha .05 -> reject H1 and H4 only.
    # Adjusted: sorted .005*4 = .02, .01*3 = .03, .03*2 = .06, max(.04*1, .06) = .06.
    adjusted = delong.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert (adjusted <= 0.05).tolist() == [True, False, False, True]
    np.testing.assert_allclose(delong.holm(np.array([0.5, np.nan, 0.01])), [0.5, np.nan, 0.02])
    assert delong.holm(np.array([0.9, 0.8])).max() <= 1.0


# --- calibration --------------------------------------------------------------------------------------


def test_ece_hand_example():
    # 2 bins. [0, .5): p .1 .2 (mean .15), labels 0 1 (share .5): |.5 - .15| * 2/4 = .175
    #          [.5, 1]: p .7 .9 (mean .8), labels 1 1 (share 1): |1 - .8| * 2/4 = .1       -> ECE .275
    p, y = np.array([0.1, 0.2, 0.7, 0.9]), np.array([0, 1, 1, 1])
    assert calibration.ece(p, y, n_bins=2) == pytest.approx(0.275)
    table = calibration.reliability(p, y, n_bins=2)
    assert table["count"].tolist() == [2, 2]
    np.testing.assert_allclose(table["confidence"], [0.15, 0.8])
    np.testing.assert_allclose(table["observed"], [0.5, 1.0])
    assert calibration.bin_index(np.array([0.0, 0.1, 0.5, 1.0]), 10).tolist() == [0, 1, 5, 9]
    assert calibration.ece(np.array([0.3, 0.3]), np.array([0, 1]), 10) == pytest.approx(0.2)  # |.5 - .3|
    assert np.isnan(calibration.ece(np.array([]), np.array([])))
