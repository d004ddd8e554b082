"""Patient-level bootstrap: weight matrices, percentile intervals and paired differences. No I/O.

Clips of one patient are correlated (one probe, one pair of lungs, one disease course, often the
same video cut into overlapping clips), so resampling clips as if independent gives intervals that
are too narrow. Here PATIENTS are resampled with replacement: replicate b draws G patients out of G,
and patient g's multiplicity k_bg becomes the weight of each of its clips. binary.py evaluates all
replicates from these weights at once (a (B, n) matrix), and the same matrix applied to two models
or four patterns gives paired replicates (for differences and macro averages).

The interval is the percentile interval of the valid replicates (those where the statistic is
defined: a replicate may draw no positive patient); the count of valid replicates is reported next to
it. With very few patients, a patient bootstrap cannot see between-patient variation (one patient:
every replicate is the data itself), so below `min_patients` patients, or below `min_class_patients`
positive or negative patients of a pattern (with 2, 3 and 6 positive patients simulated coverage of a
nominal 95% interval was 0.69, 0.80 and 0.89), no interval is given and the reason says so.
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


def class_patients(groups: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """(patients with at least one positive item, patients with at least one negative item); groups, labels (n,).

    What a patient bootstrap of a rank metric rests on: with 2 positive patients every replicate
    holds 0, 1 or 2 distinct positive patients, whatever the clip count."""
    g = np.asarray(groups).astype(str)
    y = np.asarray(labels).astype(bool)
    return int(np.unique(g[y]).size), int(np.unique(g[~y]).size)


def class_reason(n_pos_patients: int, n_neg_patients: int, min_class_patients: int) -> str:
    """Why no interval rests on these patients ("" when enough of both classes)."""
    if min(n_pos_patients, n_neg_patients) >= min_class_patients:
        return ""
    return (f"{n_pos_patients} positive / {n_neg_patients} negative patient(s) < evaluate.min_class_patients_ci="
            f"{min_class_patients}: too few for a patient bootstrap of this pattern (coverage falls well below "
            "nominal)")


def percentile_interval(replicates: np.ndarray, ci: float = 0.95, n_patients: int | None = None,
                        min_patients: int = 2) -> Interval:
    """Percentile interval of the finite values of `replicates` (B,); n_valid counts them (a replicate that
    drew a single class is NaN: counted as not valid, never silently dropped from the report)."""
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

    p = min(1, 2 (1 + min(#{d <= 0}, #{d >= 0})) / (B + 1)) over the B valid (finite) replicates: the
    (1 + count) / (B + 1) form never prints 0 (the observed data count as one draw under H0; Davison &
    Hinkley 1997, ch. 4). NaN when no replicate is defined.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    count = min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))
    return float(min(1.0, 2.0 * (1 + count) / (d.size + 1)))
