"""Binary classification metrics for many weightings at once. Pure functions on arrays, no I/O.

Every metric here takes a weight matrix `weights: (B, n) float` over the n items (clips): row b is one
weighting of the data. Row of ones = the plain point estimate; rows of patient-bootstrap counts
(bootstrap.patient_weights) = bootstrap replicates, since resampling a patient k times is the same as
giving each of its clips weight k. So one sort of the scores serves all B replicates, and 1000
replicates cost a few (B, n) array operations instead of 1000 metric calls.

- AUROC: the Mann-Whitney probability P(score_pos > score_neg) + 0.5 P(tie), weighted
  (equals sklearn's roc_auc_score with integer sample weights).
- AUPRC: average precision, sum over distinct thresholds of (recall step) x precision, without
  interpolation (equals sklearn's average_precision_score).
- At a threshold (predicted positive = prob >= threshold): sensitivity TP/(TP+FN), specificity
  TN/(TN+FP), PPV TP/(TP+FP), NPV TN/(TN+FN), F1 2TP/(2TP+FP+FN).

A metric that is undefined for a weighting (no positives, no negatives, empty denominator) is NaN
there; `undefined_reason` says why for the point estimate.
"""

from __future__ import annotations

import numpy as np

RANK_METRICS = ("auroc", "auprc")
THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv", "f1")
METRICS = (*RANK_METRICS, *THRESHOLD_METRICS)


def ones(n: int) -> np.ndarray:
    """(1, n) float64 weights: the point estimate."""
    return np.ones((1, n))


def _as_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return ones(n)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[1] != n:
        raise ValueError(f"weights: expected shape (B, {n}), got {weights.shape}")
    return weights


def rank_metrics(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """AUROC and AUPRC for every weighting. scores (n,) float, labels (n,) {0,1}, weights (B, n) -> (B,) each."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    w = _as_weights(weights, len(scores))
    if len(scores) == 0:
        nan = np.full(w.shape[0], np.nan)
        return {"auroc": nan, "auprc": nan.copy()}
    order = np.argsort(-scores, kind="stable")  # descending: thresholds from the top, as roc/pr curves
    s, y, w = scores[order], labels[order], w[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(s) != 0) + 1]  # first item of each run of tied scores
    tp_g = np.add.reduceat(w * y, starts, axis=1)  # (B, U) positive weight at each distinct score
    fp_g = np.add.reduceat(w * ~y, starts, axis=1)
    tp, fp = np.cumsum(tp_g, axis=1), np.cumsum(fp_g, axis=1)  # predicted positive at threshold >= s_u
    pos, neg = tp[:, -1], fp[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        # positives at score s_u beat the negatives below s_u (neg - fp) and tie with those at s_u
        auroc = (tp_g * (neg[:, None] - fp + 0.5 * fp_g)).sum(axis=1) / (pos * neg)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        auprc = (tp_g * precision).sum(axis=1) / pos
    auroc[(pos <= 0) | (neg <= 0)] = np.nan
    auprc[pos <= 0] = np.nan
    return {"auroc": auroc, "auprc": auprc}


def confusion(predicted: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted confusion counts. predicted, labels (n,) {0,1}; weights (B, n) -> (B, 4) [tp, fp, fn, tn]."""
    p = np.asarray(predicted).astype(bool)
    y = np.asarray(labels).astype(bool)
    w = _as_weights(weights, len(p))
    cells = np.column_stack([p & y, p & ~y, ~p & y, ~p & ~y]).astype(np.float64)  # (n, 4)
    return w @ cells


def from_confusion(counts: np.ndarray) -> dict[str, np.ndarray]:
    """(..., 4) [tp, fp, fn, tn] -> sensitivity, specificity, ppv, npv, f1, each (...); NaN where 0/0."""
    tp, fp, fn, tn = (counts[..., i] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp), "ppv": tp / (tp + fp),
               "npv": tn / (tn + fn), "f1": 2 * tp / (2 * tp + fp + fn)}
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}


def all_metrics(scores: np.ndarray, labels: np.ndarray, threshold: np.ndarray | float,
                weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric in METRICS for each weighting. threshold: scalar or (n,) per item -> (B,) arrays."""
    scores = np.asarray(scores, dtype=np.float64)
    predicted = scores >= np.asarray(threshold, dtype=np.float64)
    out = rank_metrics(scores, labels, weights)
    out.update(from_confusion(confusion(predicted, labels, weights)))
    return out


def undefined_reason(labels: np.ndarray, predicted: np.ndarray | None = None) -> dict[str, str]:
    """metric -> why the point estimate is undefined (empty when all are defined).

    labels, predicted (n,) {0,1}; predicted = scores >= threshold, needed for PPV and NPV.
    """
    y = np.asarray(labels).astype(bool)
    if len(y) == 0:
        return {m: "no clips with a consensus label in this set" for m in METRICS}
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    reasons: dict[str, str] = {}
    if n_pos == 0 or n_neg == 0:
        reasons["auroc"] = f"one class in this set: only {'negatives' if n_pos == 0 else 'positives'} ({len(y)})"
    if n_pos == 0:
        reasons["auprc"] = reasons["sensitivity"] = "no positives"
    if n_neg == 0:
        reasons["specificity"] = "no negatives"
    if predicted is not None:
        p = np.asarray(predicted).astype(bool)
        if not p.any():
            reasons["ppv"] = "nothing predicted positive"
        if p.all():
            reasons["npv"] = "nothing predicted negative"
        if n_pos == 0 and not p.any():
            reasons["f1"] = "no positives and nothing predicted positive"
    return reasons
