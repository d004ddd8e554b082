"""Agreement statistics against worked textbook examples, sklearn and the `krippendorff` package."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling import agreement as ag

NAN = np.nan


def _pair_from_table(both1: int, only_a: int, only_b: int, both0: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1] * both1 + [1] * only_a + [0] * only_b + [0] * both0, dtype=float)
    b = np.array([1] * both1 + [0] * only_a + [1] * only_b + [0] * both0, dtype=float)
    return a, b


def test_cohen_kappa_2x2_worked_by_hand():
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    # p_o = 35/50 = 0.70; p_e = (25/50)(30/50) + (25/50)(20/50) = 0.30 + 0.20 = 0.50; kappa = 0.2/0.5 = 0.40
    a, b = _pair_from_table(20, 5, 10, 15)
    est = ag.cohen_kappa(a, b, np.arange(50), n_boot=0)
    assert est.value == pytest.approx(0.40) and est.n_units == 50
    # second table: both yes 45, 15, 25, both no 15 (n=100): p_o = .60, p_e = .6*.7 + .4*.3 = .54, kappa = .06/.46
    a, b = _pair_from_table(45, 15, 25, 15)
    assert ag.cohen_kappa(a, b, np.arange(100), n_boot=0).value == pytest.approx(0.06 / 0.46)


def test_cohen_kappa_matches_sklearn_with_three_categories_and_skips_missing():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 300).astype(float)
    b = np.where(rng.random(300) < 0.7, a, rng.integers(0, 3, 300)).astype(float)
    b[:20] = NAN
    got = ag.cohen_kappa(a, b, np.arange(300) % 12, categories=(0, 1, 2), n_boot=0)
    assert got.value == pytest.approx(cohen_kappa_score(a[20:], b[20:]))
    assert got.n_units == 280


def test_fleiss_kappa_worked_example():
    # The worked example of Fleiss' kappa (Wikipedia, after Fleiss 1971): 10 subjects, 14 raters, 5 categories.
    # P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    ratings = np.array([np.repeat(np.arange(5), row) for row in counts], dtype=float)
    kappa = ag.fleiss_kappa(ratings, np.arange(10), categories=range(5), n_boot=0)
    assert kappa.value == pytest.approx(0.2099, abs=5e-4)
    assert ag.percent_agreement(ratings, np.arange(10), categories=range(5), n_boot=0).value == \
        pytest.approx(0.378, abs=5e-4)
    # by hand for subject 2: (2*1 + 6*5 + 4*3 + 2*1) / (14*13) = 46/182
    assert ag.percent_agreement(ratings[1:2], [0], categories=range(5), n_boot=0).value == pytest.approx(46 / 182)


def test_fleiss_equals_cohen_for_two_raters_with_equal_margins():
    a, b = _pair_from_table(10, 4, 4, 22)
    r = np.column_stack([a, b])
    assert ag.fleiss_kappa(r, np.arange(40), n_boot=0).value == pytest.approx(ag.cohen_kappa(a, b, np.arange(40),
                                                                                              n_boot=0).value)


def test_krippendorff_alpha_textbook_example_with_missing_data():
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, nominal alpha = 0.743.
    data = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
                     [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]])
    est = ag.krippendorff_alpha(data.T, np.arange(12), categories=(1, 2, 3, 4, 5), n_boot=0)
    assert est.value == pytest.approx(0.743, abs=5e-4)
    assert est.n_units == 11  # unit 12 has one rating: no pairable value


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_units=st.integers(3, 60), n_raters=st.integers(2, 5),
       missing=st.floats(0.0, 0.5), n_cat=st.integers(2, 4))
def test_krippendorff_alpha_matches_the_reference_package(seed, n_units, n_raters, missing, n_cat):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_cat, n_units)
    data = np.where(rng.random((n_raters, n_units)) < 0.7, truth, rng.integers(0, n_cat, (n_raters, n_units)))
    data = np.where(rng.random(data.shape) < missing, NAN, data.astype(float))
    counts = ag.category_counts(data.T, range(n_cat))
    pairable = counts.sum(axis=1) >= 2
    if pairable.sum() < 1 or len(np.unique(data[:, pairable][~np.isnan(data[:, pairable])])) < 2:
        return  # alpha is undefined (the package raises); ours returns NaN
    want = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal", value_domain=list(range(n_cat)))
    assert ag.krippendorff_alpha(data.T, np.arange(n_units), categories=range(n_cat), n_boot=0).value == \
        pytest.approx(want, abs=1e-9)


def test_sensitivity_specificity_by_hand():
    ref = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, NAN])
    rater = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    out = ag.sensitivity_specificity(rater, ref, np.zeros(10), n_boot=0)
    assert out["sensitivity"].value == pytest.approx(3 / 4) and out["specificity"].value == pytest.approx(4 / 5)
    assert out["sensitivity"].n_units == 9


def test_undefined_statistics_are_nan_and_serialise_as_null():
    same = np.zeros((10, 2))
    est = ag.cohen_kappa(same[:, 0], same[:, 1], np.arange(10), n_boot=50)
    assert np.isnan(est.value)
    assert est.as_dict()["value"] is None and ag.percent_agreement(same, np.arange(10), n_boot=0).value == 1.0


def test_bootstrap_resamples_patients_not_units():
    # Two patients agree perfectly and two disagree at random: units are not independent, and a CI that
    # resamples units (each unit its own group) is far too narrow compared with one resampling the 4 patients.
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 400).astype(float)
    b = a.copy()
    b[200:] = rng.integers(0, 2, 200)
    patients = np.repeat(np.arange(4), 100)
    by_patient = ag.cohen_kappa(a, b, patients, n_boot=1000, seed=3)
    by_unit = ag.cohen_kappa(a, b, np.arange(400), n_boot=1000, seed=3)
    assert by_patient.n_groups == 4 and by_unit.n_groups == 400
    assert by_patient.ci_low <= by_patient.value <= by_patient.ci_high
    assert (by_patient.ci_high - by_patient.ci_low) > 2 * (by_unit.ci_high - by_unit.ci_low)


def test_bootstrap_is_seeded_and_can_be_switched_off():
    a, b = _pair_from_table(20, 5, 10, 15)
    groups = np.arange(50) % 5
    first, again = (ag.cohen_kappa(a, b, groups, n_boot=300, seed=7) for _ in range(2))
    assert first == again and first.n_boot_valid > 0
    off = ag.cohen_kappa(a, b, groups, n_boot=0)
    assert np.isnan(off.ci_low) and off.as_dict()["ci_low"] is None


def test_no_shared_units_gives_nan_not_an_error():
    est = ag.cohen_kappa(np.array([1.0, NAN]), np.array([NAN, 0.0]), np.arange(2), n_boot=10)
    assert np.isnan(est.value) and est.n_units == 0 and est.n_groups == 0


def test_pairwise_cohen_skips_pairs_without_shared_units():
    r = np.array([[1, 1, NAN], [0, 0, NAN], [NAN, 1, 1], [NAN, 0, 0]], dtype=float)
    out = ag.pairwise_cohen(r, ("a", "b", "c"), np.arange(4), n_boot=0)
    assert sorted(out) == ["a|b", "b|c"] and out["a|b"].value == pytest.approx(1.0)


def test_ratings_outside_the_categories_are_refused():
    with pytest.raises(ValueError, match="outside the categories"):
        ag.fleiss_kappa(np.array([[0, 2], [1, 1]], dtype=float), np.arange(2))
