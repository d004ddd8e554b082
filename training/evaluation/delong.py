"""DeLong's test for correlated AUROCs (fast algorithm of Sun & Xu 2014) and Holm's correction. No I/O.

DeLong, DeLong & Clarke-Pearson (1988) estimate the covariance of the AUROCs of k scores on the same
items from the structural components V10 (per positive: the share of negatives it outranks) and V01
(per negative: the share of positives that outrank it). Sun & Xu (2014, IEEE Signal Processing Letters
21(11):1389) compute them from midranks in O(k n log n) instead of O(k m n):

    V10_i = (TZ_i - TX_i) / n    (TZ: midrank among all items, TX: among positives)
    V01_j = 1 - (TZ_j - TY_j) / m (TY: midrank among negatives)
    AUC = mean(V10);  S = cov(V10) / m + cov(V01) / n

where m = number of positives, n = number of negatives. The paired test of AUC_a = AUC_b uses
z = (AUC_a - AUC_b) / sqrt(S_aa + S_bb - 2 S_ab) and a two-sided normal p-value.

Caveat: DeLong treats clips as independent; clips of one patient are not, so its p-values are too
small when patients contribute many clips. The report therefore also gives a patient-level paired
bootstrap of the AUROC difference (bootstrap.py), which respects the clustering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata


def structural_components(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scores (k, N) float, labels (N,) {0,1} -> AUCs (k,), V10 (k, m) over positives, V01 (k, n) over negatives."""
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    y = np.asarray(labels).astype(bool)
    x, z = scores[:, y], scores[:, ~y]
    m, n = x.shape[1], z.shape[1]
    if m == 0 or n == 0:
        raise ValueError(f"DeLong needs positives and negatives: got {m} positive(s), {n} negative(s)")
    tx, ty = rankdata(x, axis=1), rankdata(z, axis=1)  # midranks within each class
    tz = rankdata(np.concatenate([x, z], axis=1), axis=1)  # midranks among all
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return v10.mean(axis=1), v10, v01


def delong_covariance(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scores (k, N), labels (N,) -> AUCs (k,) and their DeLong covariance (k, k)."""
    aucs, v10, v01 = structural_components(scores, labels)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(aucs), len(aucs)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(aucs), len(aucs)))
    return aucs, s10 / m + s01 / n


@dataclass(frozen=True)
class DelongResult:
    auc_a: float
    auc_b: float
    difference: float  # auc_a - auc_b
    se: float
    z: float
    p: float
    reason: str = ""  # why p is NaN ("" when defined)


def paired_test(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray) -> DelongResult:
    """Two-sided DeLong test of AUROC(a) = AUROC(b) on the same items. Each (N,); labels (N,) {0,1}."""
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        return DelongResult(np.nan, np.nan, np.nan, np.nan, np.nan, np.nan,
                            f"one class ({int(y.sum())} positive of {len(y)}): AUROC undefined")
    m, n = int(y.sum()), int((~y).sum())
    if min(m, n) < 2:  # the covariance of V10 (or V01) needs two items: a single one would count as no variance
        aucs = structural_components(np.vstack([scores_a, scores_b]), y)[0]
        return DelongResult(float(aucs[0]), float(aucs[1]), float(aucs[0] - aucs[1]), np.nan, np.nan, np.nan,
                            f"a single {'positive' if m < 2 else 'negative'} ({m} positive, {n} negative): "
                            "DeLong's variance is undefined")
    aucs, cov = delong_covariance(np.vstack([scores_a, scores_b]), y)
    var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    diff = float(aucs[0] - aucs[1])
    if not var > 1e-15:  # identical rankings (or a perfect pair): no variance, the difference is exactly 0
        return DelongResult(float(aucs[0]), float(aucs[1]), diff, 0.0, np.nan, np.nan,
                            "zero variance of the difference (the two rankings agree)")
    se = float(np.sqrt(var))
    z = diff / se
    return DelongResult(float(aucs[0]), float(aucs[1]), diff, se, z, float(2.0 * norm.sf(abs(z))))


def delong_interval(scores: np.ndarray, labels: np.ndarray, ci: float = 0.95) -> tuple[float, float, float]:
    """AUROC and its DeLong normal interval, clipped to [0, 1] (the seed's delong_roc_ci, with alpha defined)."""
    aucs, cov = delong_covariance(np.asarray(scores)[None], labels)
    half = norm.ppf(0.5 + ci / 2.0) * np.sqrt(cov[0, 0])
    return float(aucs[0]), float(max(0.0, aucs[0] - half)), float(min(1.0, aucs[0] + half))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, same order as `pvalues` (NaN entries stay NaN, not counted).

    Sorted ascending p_(1..k): adj_(i) = max_{j <= i} min(1, (k - j + 1) p_(j)). Rejecting where
    adj <= alpha controls the family-wise error rate at alpha.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    k = ok.size
    if k == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (k - np.arange(k)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out
