"""Paired comparison of each model's AUROC with the reference model's (LUV-Net), per pattern. No I/O.

On the clips both models scored (and whose consensus label is known), per pattern:
- the headline: a patient-level paired bootstrap of the AUROC difference (same patient resamples for
  both models), with its percentile CI and a two-sided p = (1 + count) / (B + 1) over the B valid
  replicates; it respects that clips of a patient are correlated. Withheld, with the reason, below
  Bootstrap.min_class_patients positive or negative patients. In simulation with clustered clips and no
  true difference it rejected at about the nominal rate (BENCHMARKS.md);
- second, DeLong's paired test (delong.py), labelled "clips independent": it treats clips as
  independent (the seed's test, kept for comparison with the paper's numbers) and rejects far too often
  on clustered clips (21% at alpha 0.05 in the issue's simulation).
Each row carries what it rests on: positive / negative patients, valid and single-class replicates.
Holm's correction is applied within one evaluation set (view): the family is every (model, pattern)
comparison against the reference on that set, so "LUV-Net differs from some baseline on some pattern"
keeps its family-wise error rate at alpha.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS
from training.evaluation import binary, delong
from training.evaluation.bootstrap import (class_patients, class_reason, paired_difference_p, patient_bootstrap,
                                          percentile_interval)
from training.evaluation.scoring import Bootstrap
from training.evaluation.tables import column

COLUMNS = ("view", "model", "reference", "pattern", "n", "n_pos", "n_patients", "n_pos_patients", "n_neg_patients",
           "auroc_model", "auroc_reference", "difference", "boot_ci_low", "boot_ci_high", "boot_p", "boot_p_holm",
           "boot_valid", "boot_single_class", "delong_z", "delong_p", "delong_p_holm", "note")


def _aligned(ref: pd.DataFrame, other: pd.DataFrame, slug: str) -> pd.DataFrame:
    """Rows of both tables on the same clips with a known label: prob_ref, prob_model, label, patient_id."""
    left = ref[["clip_id", "patient_id", column("prob", slug), column("label", slug)]]
    right = other[["clip_id", column("prob", slug)]]
    both = left.merge(right, on="clip_id", suffixes=("_ref", "_model"), validate="one_to_one")
    both = both[both[column("label", slug)].notna()]
    return both.rename(columns={f"{column('prob', slug)}_ref": "prob_ref",
                                f"{column('prob', slug)}_model": "prob_model", column("label", slug): "label"})


def compare_pair(view: str, model: str, reference: str, slug: str, both: pd.DataFrame, boot: Bootstrap) -> dict:
    """One row of COLUMNS (Holm columns filled later) from aligned rows of one pattern."""
    y = both["label"].to_numpy(dtype=int)
    groups = both["patient_id"].to_numpy()
    n_patients = int(pd.unique(groups).size)
    n_pos_p, n_neg_p = class_patients(groups, y)
    row = dict(view=view, model=model, reference=reference, pattern=slug, n=int(len(y)), n_pos=int(y.sum()),
               n_patients=n_patients, n_pos_patients=n_pos_p, n_neg_patients=n_neg_p, boot_valid=np.nan,
               boot_single_class=np.nan, note="")
    test = delong.paired_test(both["prob_model"].to_numpy(), both["prob_ref"].to_numpy(), y)
    row.update(auroc_model=test.auc_a, auroc_reference=test.auc_b, difference=test.difference, delong_z=test.z,
               delong_p=test.p)
    notes = [f"DeLong (clips independent): {test.reason}"] if test.reason else []
    low = high = boot_p = np.nan
    if boot.n_boot > 0 and len(y) and 0 < y.sum() < len(y):
        w = patient_bootstrap(groups, boot.n_boot, boot.seed).item_weights()
        diff = (binary.rank_metrics(both["prob_model"].to_numpy(), y, w)["auroc"]
                - binary.rank_metrics(both["prob_ref"].to_numpy(), y, w)["auroc"])
        valid = int(np.isfinite(diff).sum())
        row.update(boot_valid=valid, boot_single_class=boot.n_boot - valid)
        iv = percentile_interval(diff, boot.ci, n_patients, boot.min_patients)
        why = iv.reason or class_reason(n_pos_p, n_neg_p, boot.min_class_patients)
        if why:
            notes.append(f"bootstrap: {why}")
        else:
            low, high, boot_p = iv.low, iv.high, paired_difference_p(diff)
    row.update(boot_ci_low=low, boot_ci_high=high, boot_p=boot_p, note="; ".join(notes))
    return row


def compare_view(view: str, tables: Mapping[str, pd.DataFrame], reference: str, boot: Bootstrap,
                 slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """All models against `reference` on one view. tables: model -> rows (one per clip) of that view."""
    rows = []
    if reference in tables and not tables[reference].empty:
        for model, table in tables.items():
            if model == reference or table.empty:
                continue
            for slug in slugs:
                rows.append(compare_pair(view, model, reference, slug, _aligned(tables[reference], table, slug), boot))
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    if not out.empty:
        out["delong_p_holm"] = delong.holm(out["delong_p"].to_numpy(dtype=float))
        out["boot_p_holm"] = delong.holm(out["boot_p"].to_numpy(dtype=float))
    return out
