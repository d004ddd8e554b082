"""Calibration: expected calibration error and reliability-diagram bins. Pure functions, no I/O.

For one pattern (a binary problem), bin the predicted probabilities into `n_bins` equal-width bins on
[0, 1] (the last bin closed at 1); per bin, confidence = mean predicted probability and observed =
share of positives. ECE = sum over non-empty bins of (items in bin / items) * |observed - confidence|
(Naeini et al. 2015; Guo et al. 2017, on the positive-class probability).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RELIABILITY_COLUMNS = ("bin", "bin_low", "bin_high", "count", "confidence", "observed")


def bin_index(probs: np.ndarray, n_bins: int) -> np.ndarray:
    """(n,) probabilities in [0, 1] -> (n,) int bin 0..n_bins-1 (1.0 falls in the last bin)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    return np.minimum((p * n_bins).astype(int), n_bins - 1)


def bin_sums(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_bins,) count, sum of probabilities, sum of labels per bin."""
    p = np.asarray(probs, dtype=np.float64)
    b = bin_index(p, n_bins)
    return (np.bincount(b, minlength=n_bins).astype(np.float64), np.bincount(b, weights=p, minlength=n_bins),
            np.bincount(b, weights=np.asarray(labels, dtype=np.float64), minlength=n_bins))


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """One row per bin (RELIABILITY_COLUMNS); confidence/observed NaN in empty bins."""
    count, p_sum, y_sum = bin_sums(probs, labels, n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf, obs = p_sum / count, y_sum / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame({"bin": np.arange(n_bins), "bin_low": edges[:-1], "bin_high": edges[1:],
                         "count": count.astype(np.int64), "confidence": conf, "observed": obs})


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error (module doc); NaN for no items. Per bin |sum y - sum p| / n equals
    (count / n) * |observed - confidence|."""
    count, p_sum, y_sum = bin_sums(probs, labels, n_bins)
    total = count.sum()
    return float(np.abs(y_sum - p_sum).sum() / total) if total else float("nan")
