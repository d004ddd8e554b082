"""Nested out-of-fold thresholds: in simulation (truth known) the in-sample Youden J is optimistic, the nested one is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from luskit.schema import PATTERN_SLUGS
from training.evaluation import nested, scoring
from training.evaluation.tables import column

D = 1.0  # binormal separation: negatives ~ N(0, 1), positives ~ N(D, 1)
N_FOLDS, PER_FOLD, PREV = 5, 40, 0.3


def true_j(threshold: np.ndarray) -> np.ndarray:
    """Population Youden J of 'positive when score >= t' (probabilities are a monotone map of the score)."""
    t = np.log(threshold / (1 - threshold))  # back to the score scale: prob = sigmoid(score)
    return (1 - norm.cdf(t - D)) - (1 - norm.cdf(t))


def oof_table(rng: np.random.Generator) -> pd.DataFrame:
    """Out-of-fold rows of N_FOLDS fold models, one clip per patient; thr = Youden on the fold itself (the old way)."""
    from training.train.thresholds import youden

    n = N_FOLDS * PER_FOLD
    table = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "set": "validation", "fold": np.repeat(np.arange(N_FOLDS), PER_FOLD)})
    for s in PATTERN_SLUGS:
        y = (rng.random(n) < PREV).astype(int)
        prob = 1 / (1 + np.exp(-(D * y + rng.normal(0, 1, n))))
        table[column("prob", s)] = prob
        table[column("label", s)] = pd.array(y, dtype="Int8")
        thr = np.empty(n)
        for k in range(N_FOLDS):  # each fold model's threshold tuned on its own validation fold
            at = table["fold"].to_numpy() == k
            thr[at] = youden(y[at].astype(float), prob[at])["threshold"]
        table[column("thr", s)] = thr
    return table


def measured_j(table: pd.DataFrame) -> list[float]:
    """Per fold and pattern, J = sensitivity + specificity - 1 scored on the fold's own rows."""
    out = []
    for _, part in table.groupby("fold"):
        score = scoring.score_table(part)
        out += [score["patterns"][s]["sensitivity"] + score["patterns"][s]["specificity"] - 1 for s in PATTERN_SLUGS]
    return out


def test_in_sample_j_is_optimistic_and_the_nested_j_is_not():
    rng = np.random.default_rng(11)
    gaps_in, gaps_nested = [], []
    for _ in range(60):
        table = oof_table(rng)
        honest = nested.with_nested_thresholds(table)
        for t, gaps in ((table, gaps_in), (honest, gaps_nested)):
            thr = t.groupby("fold")[[column("thr", s) for s in PATTERN_SLUGS]].first().to_numpy().ravel()
            gaps += list(np.asarray(measured_j(t)) - true_j(thr))  # measured minus the threshold's true J
    # 1200 (fold, pattern) measurements each; per-measurement SD of the gap ~0.12 -> SE ~0.004.
    in_sample, nested_gap = float(np.mean(gaps_in)), float(np.mean(gaps_nested))
    print(f"in-sample gap {in_sample:.3f}, nested gap {nested_gap:.3f}")
    assert in_sample > 0.05, in_sample  # the in-sample J overstates what the threshold really achieves
    assert abs(nested_gap) < 0.015, nested_gap  # the nested J is an unbiased estimate of it


def test_fold_k_threshold_comes_only_from_the_other_folds():
    rng = np.random.default_rng(3)
    table = oof_table(rng)
    test_rows = table.iloc[:5].assign(set="internal_test", fold=0)
    both = pd.concat([table, test_rows], ignore_index=True)
    before = nested.nested_thresholds(both)
    # changing fold 2's rows changes every other fold's nested threshold source but never fold 2's own
    changed = both.copy()
    at = (changed["set"] == "validation") & (changed["fold"] == 2)
    changed.loc[at, column("prob", "a_lines")] = rng.random(int(at.sum()))
    after = nested.nested_thresholds(changed)
    assert after[2]["a_lines"] == before[2]["a_lines"]
    out = nested.with_nested_thresholds(both)
    np.testing.assert_array_equal(out.loc[len(table):, column("thr", "a_lines")],
                                  both.loc[len(table):, column("thr", "a_lines")])  # test rows untouched
    assert (out.loc[out["fold"] == 1, column("thr", "a_lines")].iloc[0] == before[1]["a_lines"]["threshold"])
    single = table[table["fold"] == 0]
    assert nested.with_nested_thresholds(single).equals(single) and "in-sample" in nested.nested_note(single)
