"""Validation metrics and per-pattern decision thresholds (Youden's J), computed on the validation fold only.

Youden's J = sensitivity + specificity - 1 = TPR - FPR. With scikit-learn's roc_curve, point i of (fpr, tpr)
is "predict positive when p >= thresholds[i]", so the threshold of the best point is thresholds[argmax(J)].
The seed took thresholds[1:][argmax(J)]: the threshold of the NEXT point (lower, so one step too lenient), and
an IndexError when J peaks at the last point.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from luskit.schema import PATTERNS

FALLBACK = 0.5  # when the validation fold cannot define a threshold (one class only, or no informative point)


def youden(labels: np.ndarray, probs: np.ndarray, fallback: float = FALLBACK) -> dict:
    """Best Youden threshold of one pattern: {"threshold", "method", "j", "sensitivity", "specificity", "n_pos",
    "n_neg"}. labels (N,) float 0/1 with NaN = unknown (skipped); probs (N,) float.

    method: "youden"; "fallback: one class in validation" (no ROC exists); "fallback: no informative
    threshold" (J <= 0 everywhere: the scores do not separate the classes).
    """
    known = ~np.isnan(labels)
    y, p = labels[known].astype(int), probs[known].astype(np.float64)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    base = {"n_pos": n_pos, "n_neg": n_neg}
    if n_pos == 0 or n_neg == 0:
        return {**base, "threshold": fallback, "method": "fallback: one class in validation", "j": None,
                "sensitivity": None, "specificity": None}
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    j = tpr - fpr
    # J in exact integers (TP * N - FP * P = J * P * N): float ties such as 2/3 - 0 vs 1 - 1/3 would otherwise
    # be broken by rounding. The first maximum is the highest threshold reaching the best J.
    scaled = np.rint(tpr * n_pos).astype(np.int64) * n_neg - np.rint(fpr * n_neg).astype(np.int64) * n_pos
    best = int(np.argmax(scaled))
    if scaled[best] <= 0 or not math.isfinite(thresholds[best]):
        return {**base, "threshold": fallback, "method": "fallback: no informative threshold", "j": float(j[best]),
                "sensitivity": None, "specificity": None}
    return {**base, "threshold": float(thresholds[best]), "method": "youden", "j": float(j[best]),
            "sensitivity": float(tpr[best]), "specificity": float(1 - fpr[best])}


def thresholds(labels: np.ndarray, probs: np.ndarray) -> dict[str, dict]:
    """Per pattern (PATTERNS order) Youden details; labels (N, 4) with NaN, probs (N, 4)."""
    return {pattern: youden(labels[:, k], probs[:, k]) for k, pattern in enumerate(PATTERNS)}


def aurocs(labels: np.ndarray, probs: np.ndarray) -> dict[str, float | None]:
    """Per pattern AUROC on the known labels; None when a pattern has one class only."""
    out = {}
    for k, pattern in enumerate(PATTERNS):
        known = ~np.isnan(labels[:, k])
        y = labels[known, k]
        out[pattern] = float(roc_auc_score(y, probs[known, k])) if 0 < y.sum() < len(y) else None
    return out


def macro_auroc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean AUROC over the patterns that have both classes (NaN when none has)."""
    values = [v for v in aurocs(labels, probs).values() if v is not None]
    return float(np.mean(values)) if values else float("nan")


def bce_loss(labels: np.ndarray, logits: np.ndarray, pos_weight: np.ndarray | None = None) -> float:
    """Mean binary cross-entropy with logits over the known labels (the validation loss), float64.

    labels (N, 4) with NaN = unknown, logits (N, 4); pos_weight (4,) weighs the positive term as in training.
    """
    weight = np.ones(labels.shape[1]) if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    known = ~np.isnan(labels)
    if not known.any():
        return float("nan")
    y, z = np.nan_to_num(labels).astype(np.float64), logits.astype(np.float64)
    log_sig, log_one_minus = -np.logaddexp(0, -z), -np.logaddexp(0, z)  # log sigmoid(z), log(1 - sigmoid(z))
    loss = -(weight * y * log_sig + (1 - y) * log_one_minus)
    return float(loss[known].mean())
