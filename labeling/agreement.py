"""Inter-rater agreement with patient-level bootstrap CIs. Pure functions on arrays, no I/O.

Inputs are rating matrices `ratings: (U, R) float` (U units = clips or frames, R raters; a value is a
category code, NaN = not rated) and `groups: (U,)` patient ids. Every statistic here is a function of
sums of per-unit quantities, so each is computed as (1) per-unit statistics, (2) summed per patient,
(3) finalised from the sums. The bootstrap resamples PATIENTS with replacement (frames and clips of
one patient are not independent: one probe, one lung, one reader's habit) and re-sums their totals,
which makes 1000 replicates cost one matrix product. The CI is the percentile interval; replicates
where the statistic is undefined (e.g. only one category was drawn) are left out, and `n_boot_valid`
says how many remained.

- Percent agreement: mean over units with >= 2 ratings of the share of agreeing rater pairs
  (= observed agreement P-bar of Fleiss; plain percent agreement for two raters).
- Cohen's kappa (1960) per pair of raters on the units both rated.
- Fleiss' kappa (1971). With a varying number of ratings per unit (missing ratings), units with
  fewer than 2 are dropped, P-bar is the mean of per-unit agreement and p_j is pooled over all
  ratings; with a constant number this is Fleiss' formula exactly.
- Krippendorff's alpha, nominal, from the coincidence matrix (Krippendorff 2011, "Computing
  Krippendorff's alpha-reliability"); missing ratings are native to it.
- Sensitivity / specificity of one rater against a reference (consensus or gold) on the units both
  rated (binary: 1 = present).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

BINARY = (0.0, 1.0)


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap CI. NaN where undefined; n_units/n_groups are what it used."""

    value: float
    ci_low: float
    ci_high: float
    n_units: int
    n_groups: int
    n_boot_valid: int

    def as_dict(self, digits: int = 4) -> dict:
        """JSON-ready: floats rounded, NaN -> None (DVC metrics and strict JSON reject NaN)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else
                    round(v, digits) if isinstance(v, float) else int(v)) for k, v in asdict(self).items()}


def category_counts(ratings: np.ndarray, categories: Sequence[float] = BINARY) -> np.ndarray:
    """(U, K) int64: how many raters put each unit in each category (NaN ignored)."""
    ratings = np.asarray(ratings, dtype=float)
    cats = np.asarray(categories, dtype=float)
    known = np.isnan(ratings) | np.isin(ratings, cats)
    if not known.all():
        bad = np.unique(ratings[~known])[:5]
        raise ValueError(f"ratings hold values {bad.tolist()} outside the categories {cats.tolist()}")
    return (ratings[:, :, None] == cats[None, None, :]).sum(axis=1).astype(np.int64)


def _group_codes(groups: np.ndarray) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    return codes.reshape(-1), int(codes.max()) + 1 if len(codes) else 0


def estimate(unit_stats: np.ndarray, groups: np.ndarray, finalize: Callable[[np.ndarray], np.ndarray],
             n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Estimate:
    """Point value and patient-bootstrap CI of a statistic that is `finalize(sum of unit_stats)`.

    unit_stats: (U, k) float64, rows of units that take part; groups: (U,) patient ids;
    finalize: (..., k) -> (...) vectorised. The same `seed` and patients give the same resamples,
    so CIs of different statistics on one data set are paired.
    """
    unit_stats = np.asarray(unit_stats, dtype=np.float64)
    codes, n_groups = _group_codes(groups)
    per_group = np.zeros((n_groups, unit_stats.shape[1]))
    np.add.at(per_group, codes, unit_stats)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(finalize(per_group.sum(axis=0)))
        lo = hi = np.nan
        valid = 0
        if n_boot > 0 and n_groups > 0:
            rng = np.random.default_rng(seed)
            weights = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
            boot = finalize(weights @ per_group)
            boot = boot[np.isfinite(boot)]
            valid = int(boot.size)
            if valid:
                alpha = (1.0 - ci) / 2.0
                lo, hi = (float(x) for x in np.quantile(boot, [alpha, 1.0 - alpha]))
    return Estimate(value, lo, hi, int(unit_stats.shape[0]), n_groups, valid)


# --- per-unit statistics and their finalisers ------------------------------------------------------

def _pair_agreement_stats(counts: np.ndarray) -> np.ndarray:
    """(U', 1 + K + 1) for units with >= 2 ratings: [P_u, n_u1..n_uK, m_u] (Fleiss' notation)."""
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    p_u = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))
    return np.column_stack([p_u, counts, m]).astype(np.float64)


def _with_unit_counter(stats: np.ndarray) -> np.ndarray:
    return np.column_stack([stats, np.ones(len(stats))])


def _fleiss_final(s: np.ndarray) -> np.ndarray:
    """s = sums of [P_u, n_u1..n_uK, m_u, 1]."""
    p_bar = s[..., 0] / s[..., -1]
    p_j = s[..., 1:-2] / s[..., -2:-1]
    p_e = (p_j ** 2).sum(axis=-1)
    return (p_bar - p_e) / (1.0 - p_e)


def _coincidence_stats(counts: np.ndarray) -> np.ndarray:
    """(U', K*K) coincidence matrix of each unit with >= 2 ratings: (n_uc n_uk - [c=k] n_uc) / (m_u - 1)."""
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2].astype(np.float64), m[m >= 2]
    k = counts.shape[1]
    o = counts[:, :, None] * counts[:, None, :] - np.eye(k)[None] * counts[:, :, None]
    return (o / (m - 1)[:, None, None]).reshape(len(counts), k * k)


def _alpha_final(s: np.ndarray) -> np.ndarray:
    k = int(round(np.sqrt(s.shape[-1])))
    o = s.reshape(*s.shape[:-1], k, k)
    n_c = o.sum(axis=-1)
    n = n_c.sum(axis=-1)
    off = 1.0 - np.eye(k)
    observed = (o * off).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * off).sum(axis=(-2, -1))
    return 1.0 - (n - 1.0) * observed / expected


def _cohen_final(s: np.ndarray) -> np.ndarray:
    k = int(round(np.sqrt(s.shape[-1])))
    table = s.reshape(*s.shape[:-1], k, k)
    n = table.sum(axis=(-2, -1))
    p_o = np.trace(table, axis1=-2, axis2=-1) / n
    p_e = (table.sum(axis=-1) * table.sum(axis=-2)).sum(axis=-1) / n ** 2
    return (p_o - p_e) / (1.0 - p_e)


# --- public statistics -----------------------------------------------------------------------------

def percent_agreement(ratings: np.ndarray, groups: np.ndarray, categories: Sequence[float] = BINARY,
                      n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Estimate:
    """Mean share of agreeing rater pairs over units with >= 2 ratings. ratings (U, R), groups (U,)."""
    counts = category_counts(ratings, categories)
    keep = counts.sum(axis=1) >= 2
    stats = _with_unit_counter(_pair_agreement_stats(counts)[:, :1])
    return estimate(stats, np.asarray(groups)[keep], lambda s: s[..., 0] / s[..., 1], n_boot, seed, ci)


def fleiss_kappa(ratings: np.ndarray, groups: np.ndarray, categories: Sequence[float] = BINARY,
                 n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Estimate:
    """Fleiss' kappa (module doc for missing ratings). ratings (U, R), groups (U,)."""
    counts = category_counts(ratings, categories)
    keep = counts.sum(axis=1) >= 2
    stats = _with_unit_counter(_pair_agreement_stats(counts))
    return estimate(stats, np.asarray(groups)[keep], _fleiss_final, n_boot, seed, ci)


def krippendorff_alpha(ratings: np.ndarray, groups: np.ndarray, categories: Sequence[float] = BINARY,
                       n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Estimate:
    """Krippendorff's alpha, nominal, missing ratings allowed. ratings (U, R), groups (U,)."""
    counts = category_counts(ratings, categories)
    keep = counts.sum(axis=1) >= 2
    return estimate(_coincidence_stats(counts), np.asarray(groups)[keep], _alpha_final, n_boot, seed, ci)


def cohen_kappa(a: np.ndarray, b: np.ndarray, groups: np.ndarray, categories: Sequence[float] = BINARY,
                n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Estimate:
    """Cohen's kappa of two raters on the units both rated. a, b, groups: (U,)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = ~np.isnan(a) & ~np.isnan(b)
    ca = category_counts(a[both, None], categories)
    cb = category_counts(b[both, None], categories)
    k = ca.shape[1]
    table = (ca[:, :, None] * cb[:, None, :]).reshape(int(both.sum()), k * k)
    return estimate(table, np.asarray(groups)[both], _cohen_final, n_boot, seed, ci)


def pairwise_cohen(ratings: np.ndarray, raters: Sequence[str], groups: np.ndarray,
                   categories: Sequence[float] = BINARY, n_boot: int = 1000, seed: int = 0,
                   ci: float = 0.95) -> dict[str, Estimate]:
    """Cohen's kappa for every pair of raters that share at least one unit, keyed "a|b" (a < b)."""
    out = {}
    for i, j in itertools.combinations(range(len(raters)), 2):
        if np.any(~np.isnan(ratings[:, i]) & ~np.isnan(ratings[:, j])):
            out[f"{raters[i]}|{raters[j]}"] = cohen_kappa(ratings[:, i], ratings[:, j], groups, categories,
                                                          n_boot, seed, ci)
    return out


def sensitivity_specificity(rater: np.ndarray, reference: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                            seed: int = 0, ci: float = 0.95) -> dict[str, Estimate]:
    """Sensitivity and specificity of binary `rater` against binary `reference` where both are rated.

    rater, reference, groups: (U,). Returns {"sensitivity": ..., "specificity": ...}; n_units is the
    number of units compared. The bootstrap resamples every patient compared, also those without
    a reference positive (they are part of the population a sensitivity is about).
    """
    r, ref = np.asarray(rater, dtype=float), np.asarray(reference, dtype=float)
    both = ~np.isnan(r) & ~np.isnan(ref)
    r, ref, g = r[both], ref[both], np.asarray(groups)[both]
    stats = np.column_stack([(r == 1) & (ref == 1), ref == 1, (r == 0) & (ref == 0), ref == 0]).astype(float)
    return {"sensitivity": estimate(stats, g, lambda s: s[..., 0] / s[..., 1], n_boot, seed, ci),
            "specificity": estimate(stats, g, lambda s: s[..., 2] / s[..., 3], n_boot, seed, ci)}
