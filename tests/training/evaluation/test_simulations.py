"""Slow simulations with known truth: CI coverage with few positive patients, and the type-I error of the
headline comparison (patient bootstrap) against DeLong on clustered clips. Measured numbers: BENCHMARKS.md
(printed with -s)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from luskit.schema import PATTERN_SLUGS
from training.evaluation import binary, compare, scoring
from training.evaluation.bootstrap import patient_bootstrap, percentile_interval
from training.evaluation.scoring import Bootstrap

SU, SE, D = 1.0, 0.7, 1.5  # patient effect SD, clip noise SD, separation
K = 6  # clips per patient


def few_positive_table(rng: np.random.Generator, n_pos: int, n_neg: int, slugs=PATTERN_SLUGS) -> pd.DataFrame:
    """Clip rows of one evaluation unit: n_pos patients whose clips all show every pattern, n_neg whose clips
    show none (the rare-pattern case: a handful of sick patients); score = D y + patient effect + clip noise."""
    groups = np.repeat(np.arange(n_pos + n_neg), K)
    y = (groups < n_pos).astype(int)
    table = pd.DataFrame({"clip_id": np.arange(len(y)).astype(str), "patient_id": [f"p{g}" for g in groups]})
    for s in slugs:
        score = D * y + rng.normal(0, SU, n_pos + n_neg)[groups] + rng.normal(0, SE, len(y))
        table[f"prob_{s}"] = 1 / (1 + np.exp(-score))
        table[f"label_{s}"] = pd.array(y, dtype="Int8")
        table[f"thr_{s}"] = 0.5
    return table


def true_auroc() -> float:
    """Positive and negative clips always belong to different patients: s_pos - s_neg ~ N(D, 2 SU^2 + 2 SE^2)."""
    return float(norm.cdf(D / np.sqrt(2 * SU**2 + 2 * SE**2)))


@pytest.mark.slow
def test_ci_coverage_with_few_positive_patients():
    """Coverage of the patient-bootstrap percentile interval of AUROC (the one scoring.py gives) as the positive
    patients grow, and the default min_class_patients_ci withholding it below 5."""
    truth, n_datasets, n_neg, n_boot = true_auroc(), 200, 25, 400
    measured = {}
    for n_pos in (2, 3, 5, 6, 8, 12):
        rng = np.random.default_rng(100 + n_pos)
        covered = []
        for r in range(n_datasets):
            table = few_positive_table(rng, n_pos, n_neg, slugs=("a_lines",))
            y, s = table["label_a_lines"].to_numpy(int), table["prob_a_lines"].to_numpy()
            pb = patient_bootstrap(table["patient_id"].to_numpy(), n_boot, r)
            iv = percentile_interval(binary.rank_metrics(s, y, pb.item_weights())["auroc"], 0.95)
            covered.append(iv.low <= truth <= iv.high)
        strict = scoring.score_table(few_positive_table(rng, n_pos, n_neg), Bootstrap(n_boot=100, min_patients=2))
        withheld = all(strict["patterns"][p]["auroc_ci"] is None for p in PATTERN_SLUGS)
        measured[n_pos] = (round(float(np.mean(covered)), 3), withheld)
    print("coverage of a nominal 95% interval, and withheld at the default min_class_patients_ci=5:", measured)
    # Below 5 positive patients the interval is withheld, and rightly: it would cover far too rarely.
    for n_pos in (2, 3):
        assert measured[n_pos][1] and measured[n_pos][0] < 0.9
    for n_pos in (5, 6, 8, 12):
        assert not measured[n_pos][1]
    # Coverage climbs towards nominal as positive patients grow (binomial SD of each estimate ~0.015).
    assert measured[12][0] > measured[3][0] + 0.05 and measured[12][0] > 0.88


@pytest.mark.slow
def test_type_one_error_of_the_patient_bootstrap_against_delong_on_clustered_clips():
    """Two models of equal true AUROC whose errors are shared within a patient (a patient effect per model):
    the patient-bootstrap p rejects at about alpha, DeLong (clips independent) far more often."""
    n_datasets, g, k, alpha = 300, 30, 8, 0.05
    boot = Bootstrap(n_boot=400, seed=0, min_patients=5, min_class_patients=5)
    groups = np.repeat(np.arange(g), k)
    rng = np.random.default_rng(21)
    boot_reject, delong_reject, ran = 0, 0, 0
    for r in range(n_datasets):
        prevalence = rng.uniform(0.2, 0.6, g)[groups]  # patients differ in how many of their clips are positive
        y = (rng.random(g * k) < prevalence).astype(int)
        a = D * y + rng.normal(0, SU, g)[groups] + rng.normal(0, SE, g * k)
        b = D * y + rng.normal(0, SU, g)[groups] + rng.normal(0, SE, g * k)
        both = pd.DataFrame({"prob_ref": a, "prob_model": b, "label": y, "patient_id": groups.astype(str)})
        row = compare.compare_pair("sim", "b", "a", "a_lines", both, Bootstrap(boot.n_boot, r, boot.ci, 5, 5))
        if not np.isfinite(row["boot_p"]):
            continue
        ran += 1
        boot_reject += row["boot_p"] <= alpha
        delong_reject += row["delong_p"] <= alpha
    rates = boot_reject / ran, delong_reject / ran
    print(f"type-I error at alpha 0.05 over {ran} datasets: patient bootstrap {rates[0]:.3f}, DeLong {rates[1]:.3f}")
    sd = np.sqrt(alpha * (1 - alpha) / ran)
    assert ran >= 0.95 * n_datasets
    assert rates[0] <= alpha + 3 * sd, rates  # the headline test keeps its level
    assert rates[1] > 2 * alpha, rates  # DeLong on clustered clips does not
