"""Patient-level bootstrap: weight matrices, percentile intervals and paired differences. No I/O.

Clips of one patient are correlated (one probe, one pair of lungs, one disease course, often the
same video cut into overlapping clips), so resampling clips as if independent gives intervals that
are too narrow. Here PATIENTS are resampled with replacement: replicate b draws G patients out of G,
and patient g's multiplicity k_bg becomes the weight of each of its clips. binary.py evaluates all
replicates from these weights at once (a (B, n) matrix), and the same matrix applied to two models
or four patterns gives paired replicates (for differences and macro averages).

The interval is the percentile interval of the valid replicates (those where the statistic is
defined: a replicate may draw no positive). With very few patients, a patient bootstrap cannot see
between-patient variation (one patient: every replicate is the data itself), so below
`min_patients` no interval is given and the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatientBootstrap:
    """Replicate weights for one set of items.

    codes: (n,) int, the patient index of each item; counts: (B, G) float, patient multiplicities.
    """

    codes: np.ndarray
    counts: np.ndarray

    @property
    def n_patients(self) -> int:
        return int(self.counts.shape[1])

    def item_weights(self, index: np.ndarray | None = None) -> np.ndarray:
        """(B, n') weights of the items `index` (default all): each clip gets its patient's multiplicity."""
        codes = self.codes if index is None else self.codes[index]
        return self.counts[:, codes]


def patient_codes(groups: np.ndarray) -> tuple[np.ndarray, int]:
    """(n,) patient ids -> (n,) int codes 0..G-1 (sorted id order) and G."""
    uniques, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    return codes.reshape(-1), len(uniques)


def patient_bootstrap(groups: np.ndarray, n_boot: int, seed: int) -> PatientBootstrap:
    """Multinomial patient multiplicities (B = n_boot, G) for the items' patients `groups` (n,).

    The same patients and seed give the same replicates, so statistics computed on one set (all
    patterns, all models) are paired.
    """
    codes, g = patient_codes(groups)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(np.float64) if g else np.zeros((n_boot, 0))
    return PatientBootstrap(codes, counts)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    n_valid: int  # replicates where the statistic was defined
    reason: str = ""  # why there is no interval ("" when there is one)


def percentile_interval(replicates: np.ndarray, ci: float = 0.95, n_patients: int | None = None,
                        min_patients: int = 2) -> Interval:
    """Percentile interval of the finite values of `replicates` (B,)."""
    finite = np.asarray(replicates, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if n_patients is not None and n_patients < min_patients:
        return Interval(np.nan, np.nan, int(finite.size),
                        f"{n_patients} patient(s) < min_patients_ci={min_patients}: a patient bootstrap "
                        "cannot estimate between-patient variation")
    if finite.size == 0:
        return Interval(np.nan, np.nan, 0, "undefined in every bootstrap replicate")
    alpha = (1.0 - ci) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(float(low), float(high), int(finite.size))


def paired_difference_p(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of H0: difference = 0, from paired replicates (B,) of a - b.

    p = 2 * min(share <= 0, share >= 0), capped at 1 (the percentile-interval duality: the
    (1 - p) interval just touches 0). NaN when no replicate is defined.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    return float(min(1.0, 2.0 * min(np.mean(d <= 0), np.mean(d >= 0))))
