"""What the labels stage reports: agreement per pattern, raters against a reference, disagreements.

Pure functions on `Ratings` (clip_labels) and tables; the stage writes their results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labeling import agreement as ag
from labeling.clip_labels import CLIP_KEYS, Ratings

DISAGREEMENT_COLUMNS = (*CLIP_KEYS, "pattern", "n_annotators", "n_positive", "positive_by", "negative_by",
                        "consensus", "provenance", "gold", "reviewed", "reason")


@dataclass(frozen=True)
class Boot:
    """Bootstrap settings shared by every estimate (the same seed pairs the resamples)."""

    n_boot: int = 1000
    seed: int = 0
    ci: float = 0.95

    def kwargs(self) -> dict:
        return {"n_boot": self.n_boot, "seed": self.seed, "ci": self.ci}


def agreement_by_pattern(ratings: Ratings, boot: Boot) -> dict[str, dict]:
    """{pattern: {percent_agreement, fleiss_kappa, krippendorff_alpha: Estimate dict, cohen_kappa: {pair: ...}}}.

    Units rated by fewer than two raters take no part (they carry no agreement information).
    """
    groups = ratings.units["patient_id"].to_numpy()
    out = {}
    for pattern in ratings.patterns:
        r = ratings.pattern(pattern).astype(np.float64)
        out[pattern] = {
            "percent_agreement": ag.percent_agreement(r, groups, **boot.kwargs()).as_dict(),
            "fleiss_kappa": ag.fleiss_kappa(r, groups, **boot.kwargs()).as_dict(),
            "krippendorff_alpha": ag.krippendorff_alpha(r, groups, **boot.kwargs()).as_dict(),
            "cohen_kappa": {pair: e.as_dict() for pair, e in
                            ag.pairwise_cohen(r, ratings.raters, groups, **boot.kwargs()).items()},
        }
    return out


def _check_aligned(a: Ratings, b: Ratings) -> None:
    key = [c for c in ("clip_id", "video_id", "frame") if c in a.units.columns]
    if not a.units[key].reset_index(drop=True).equals(b.units[key].reset_index(drop=True)):
        raise ValueError("ratings and reference are on different units: build both from the same frames/manifest")


def versus_reference(ratings: Ratings, reference: Ratings, boot: Boot) -> dict[str, dict[str, dict]]:
    """{rater: {pattern: {sensitivity, specificity}}} of each rater against a one-rater reference.

    Only units both rated count; a rater who shares no unit with the reference is left out.
    """
    _check_aligned(ratings, reference)
    groups = ratings.units["patient_id"].to_numpy()
    out: dict[str, dict[str, dict]] = {}
    for i, rater in enumerate(ratings.raters):
        per_pattern = {}
        for k, pattern in enumerate(ratings.patterns):
            mine, ref = ratings.values[:, i, k], reference.values[:, 0, k]
            if not np.any(~np.isnan(mine) & ~np.isnan(ref)):
                continue
            est = ag.sensitivity_specificity(mine, ref, groups, **boot.kwargs())
            per_pattern[pattern] = {name: e.as_dict() for name, e in est.items()}
        if per_pattern:
            out[rater] = per_pattern
    return out


def _joined(names: np.ndarray) -> str:
    return ", ".join(sorted(str(n) for n in names))


def disagreements(clips: Ratings, consensus: pd.DataFrame, gold: Ratings | None,
                  reviewed: set[tuple[str, str]]) -> pd.DataFrame:
    """Clips and patterns worth a reviewer's look (DISAGREEMENT_COLUMNS), one row each.

    reason (";"-joined): "annotators disagree" (at least one says present and one absent), "no
    consensus" (the consensus label is missing), "consensus differs from gold". reviewed: the
    (clip_id, pattern) pairs that already have a reviewer decision.
    """
    label = consensus.set_index(["clip_id", "pattern"])
    raters = np.asarray(clips.raters, dtype=object)
    rows = []
    for k, pattern in enumerate(clips.patterns):
        v = clips.values[:, :, k]
        n_ann, n_pos = np.sum(~np.isnan(v), axis=1), np.sum(v == 1, axis=1)
        g = gold.values[:, 0, k] if gold is not None else np.full(len(v), np.nan)
        for u in range(len(v)):
            clip_id = clips.units.at[u, "clip_id"]
            cons = label.at[(clip_id, pattern), "label"]
            reasons = []
            if n_ann[u] >= 2 and 0 < n_pos[u] < n_ann[u]:
                reasons.append("annotators disagree")
            if pd.isna(cons):
                reasons.append("no consensus")
            elif not np.isnan(g[u]) and int(cons) != int(g[u]):
                reasons.append("consensus differs from gold")
            if reasons:
                rows.append((*clips.units.loc[u, list(CLIP_KEYS)], pattern, int(n_ann[u]), int(n_pos[u]),
                             _joined(raters[v[u] == 1]), _joined(raters[v[u] == 0]), cons,
                             label.at[(clip_id, pattern), "provenance"],
                             pd.NA if np.isnan(g[u]) else int(g[u]), (clip_id, pattern) in reviewed,
                             "; ".join(reasons)))
    out = pd.DataFrame.from_records(rows, columns=list(DISAGREEMENT_COLUMNS))
    for col in ("consensus", "gold"):
        out[col] = out[col].astype("Int8")
    out["reviewed"] = out["reviewed"].astype(bool)
    return out.sort_values(["video_id", "clip_id", "pattern"], kind="stable").reset_index(drop=True)
