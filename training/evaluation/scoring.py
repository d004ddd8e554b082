"""Per-pattern, micro and macro metrics of one prediction table, with patient-bootstrap CIs. No I/O.

`score_table` takes rows of ONE evaluation unit (one model on one set: a fold model, the pooled
out-of-fold rows or the fold ensemble; clip or video rows) and returns a JSON-ready dict:

    {"n": rows, "n_patients": G, "ci_note": "",
     "patterns": {slug: {"n", "n_pos", "n_patients", "n_pos_patients", "n_neg_patients", "boot_valid",
                         "boot_single_class", "ci_reason", "threshold", "ece", <metric>, <metric>_ci, "undefined"}},
     "micro": {...}, "macro": {...}}

What an interval rests on is part of the result: the positive and negative PATIENT counts, how many
bootstrap replicates drew both classes (boot_valid; boot_single_class = the others, where a rank
metric is undefined: counted, not silently dropped) and, when the interval is withheld, why
(ci_reason: fewer than Bootstrap.min_class_patients positive or negative patients).

Per pattern, rows whose label is NA are dropped (no consensus: neither right nor wrong). Metrics at
a threshold use each row's own threshold (thr_<slug>: on test sets the fold model's validation threshold or the
ensemble's; on out-of-fold rows the nested threshold, nested.py). Micro: all (row, pattern) pairs pooled into one binary problem (thresholds per
pattern). Macro: the unweighted mean over the patterns where the metric is defined (the patterns
used are listed). CIs: the same patient resamples for all patterns, so macro and micro replicates
are paired sums of the per-pattern ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS
from training.evaluation import binary, calibration
from training.evaluation.bootstrap import class_patients, class_reason, patient_bootstrap, percentile_interval
from training.evaluation.tables import column


@dataclass(frozen=True)
class Bootstrap:
    """How CIs are made: n_boot replicates (0 = none), seed, level, the fewest patients in a set and the
    fewest positive (and negative) patients of a pattern for a CI."""

    n_boot: int = 1000
    seed: int = 0
    ci: float = 0.95
    min_patients: int = 2
    min_class_patients: int = 5


def _clean(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def _block(point: dict[str, np.ndarray], reps: dict[str, np.ndarray] | None, boot: Bootstrap,
           n_patients: int, withheld: str = "") -> dict:
    """Point values (each (1,)) and, with replicates (each (B,)), percentile CIs (None when `withheld` says why)."""
    out: dict = {}
    for name in binary.METRICS:
        out[name] = _clean(point[name][0])
        if reps is not None:
            iv = percentile_interval(reps[name], boot.ci, n_patients, boot.min_patients)
            ok = not (iv.reason or withheld) and out[name] is not None
            out[f"{name}_ci"] = [_clean(iv.low), _clean(iv.high)] if ok else None
    return out


def _support(groups: np.ndarray, label: np.ndarray, reps: dict[str, np.ndarray] | None, boot: Bootstrap | None
             ) -> dict:
    """Patient counts per class, valid / single-class replicates and the reason a CI is withheld."""
    n_pos_p, n_neg_p = class_patients(groups, label)
    out = {"n_pos_patients": n_pos_p, "n_neg_patients": n_neg_p, "boot_valid": None, "boot_single_class": None,
           "ci_reason": ""}
    if reps is not None and boot is not None:
        valid = int(np.isfinite(reps["auroc"]).sum())
        out.update(boot_valid=valid, boot_single_class=int(boot.n_boot - valid),
                   ci_reason=class_reason(n_pos_p, n_neg_p, boot.min_class_patients))
    return out


@dataclass(frozen=True)
class PatternData:
    """Arrays of one pattern with NA labels dropped: prob, label, thr (n,), index into the table's rows."""

    prob: np.ndarray
    label: np.ndarray
    thr: np.ndarray
    index: np.ndarray


def pattern_data(table: pd.DataFrame, slug: str) -> PatternData:
    labels = table[column("label", slug)]
    keep = labels.notna().to_numpy()
    return PatternData(table[column("prob", slug)].to_numpy(np.float64)[keep],
                       labels.to_numpy(dtype=np.float64, na_value=np.nan)[keep].astype(int),
                       table[column("thr", slug)].to_numpy(np.float64)[keep], np.flatnonzero(keep))


def score_table(table: pd.DataFrame, boot: Bootstrap | None = None, ece_bins: int = 10,
                slugs: Sequence[str] = PATTERN_SLUGS) -> dict:
    """Metrics of one evaluation unit (module doc). boot None or n_boot 0: point estimates only."""
    groups = table["patient_id"].to_numpy()
    n_patients = int(pd.unique(groups).size)
    use_boot = boot is not None and boot.n_boot > 0 and len(table) > 0
    pb = patient_bootstrap(groups, boot.n_boot, boot.seed) if use_boot else None
    data = {s: pattern_data(table, s) for s in slugs}
    patterns, reps_by_pattern = {}, {}
    for s, d in data.items():
        point = binary.all_metrics(d.prob, d.label, d.thr)
        reps = binary.all_metrics(d.prob, d.label, d.thr, pb.item_weights(d.index)) if pb else None
        reps_by_pattern[s] = reps
        support = _support(groups[d.index], d.label, reps, boot)
        block = _block(point, reps, boot or Bootstrap(n_boot=0), n_patients, support["ci_reason"])
        patterns[s] = {"n": int(len(d.label)), "n_pos": int(d.label.sum()),
                       "n_patients": int(pd.unique(groups[d.index]).size), **support,
                       "threshold": _clean(np.mean(d.thr)) if len(d.thr) else None,
                       "ece": _clean(calibration.ece(d.prob, d.label, ece_bins)), **block,
                       "undefined": binary.undefined_reason(d.label, d.prob >= d.thr)}
    out = {"n": int(len(table)), "n_patients": n_patients, "ci_note": _ci_note(boot, n_patients, len(table)),
           "patterns": patterns, "micro": _micro(data, pb, boot, groups),
           "macro": _macro(patterns, reps_by_pattern, boot, n_patients)}
    return out


def _ci_note(boot: Bootstrap | None, n_patients: int, n: int) -> str:
    if boot is None or boot.n_boot == 0 or n == 0:
        return "no CI requested" if n else "empty set"
    if n_patients < boot.min_patients:
        return (f"no CI: {n_patients} patient(s) < evaluate.min_patients_ci={boot.min_patients} "
                "(a patient bootstrap cannot estimate between-patient variation)")
    return ""


def _micro(data: dict[str, PatternData], pb, boot: Bootstrap | None, groups: np.ndarray) -> dict:
    prob = np.concatenate([d.prob for d in data.values()])
    label = np.concatenate([d.label for d in data.values()])
    thr = np.concatenate([d.thr for d in data.values()])
    index = np.concatenate([d.index for d in data.values()])
    point = binary.all_metrics(prob, label, thr)
    reps = binary.all_metrics(prob, label, thr, pb.item_weights(index)) if pb else None
    support = _support(groups[index], label, reps, boot)
    n_patients = int(pd.unique(groups).size)
    return {"n": int(len(label)), "n_pos": int(label.sum()), **support,
            **_block(point, reps, boot or Bootstrap(n_boot=0), n_patients, support["ci_reason"])}


def _macro(patterns: dict[str, dict], reps: dict[str, dict | None], boot: Bootstrap | None, n_patients: int) -> dict:
    """Unweighted mean over patterns; its CI is withheld when any pattern averaged lacks one for want of
    positive or negative patients (the mean would rest on a pattern whose own interval is not trusted)."""
    out: dict = {}
    for name in binary.METRICS:
        used = [s for s, block in patterns.items() if block[name] is not None]
        out[name] = _clean(np.mean([patterns[s][name] for s in used])) if used else None
        out[f"{name}_patterns"] = used
        if boot is not None and boot.n_boot > 0 and all(reps[s] is not None for s in used) and used:
            short = [s for s in used if patterns[s]["ci_reason"]]
            stacked = np.mean([reps[s][name] for s in used], axis=0)
            iv = percentile_interval(stacked, boot.ci, n_patients, boot.min_patients)
            out[f"{name}_ci"] = None if iv.reason or short else [_clean(iv.low), _clean(iv.high)]
            if name == "auroc":
                out["ci_reason"] = (f"too few positive or negative patients in {', '.join(short)}" if short else "")
        elif boot is not None and boot.n_boot > 0:
            out[f"{name}_ci"] = None
    return out


def fold_summary(per_fold: dict[int, dict]) -> dict:
    """Mean and SD (ddof=1) over fold models of each point metric: {"patterns": {slug: {metric: {mean, sd,
    n_folds}}}, "micro": ..., "macro": ...}; folds where a metric is undefined are left out and counted."""
    if not per_fold:
        return {}
    results = list(per_fold.values())

    def summarise(blocks: list[dict]) -> dict:
        out = {}
        for name in binary.METRICS:
            values = np.array([b[name] for b in blocks if b.get(name) is not None], dtype=np.float64)
            out[name] = {"mean": _clean(values.mean()) if values.size else None,
                         "sd": _clean(values.std(ddof=1)) if values.size > 1 else None, "n_folds": int(values.size)}
        return out

    slugs = results[0]["patterns"].keys()
    return {"folds": sorted(per_fold), "patterns": {s: summarise([r["patterns"][s] for r in results]) for s in slugs},
            "micro": summarise([r["micro"] for r in results]), "macro": summarise([r["macro"] for r in results])}
