"""Curves and summary numbers for the Models page, computed from the contract's prediction tables (pure).

Why recompute instead of only plotting artifacts/eval/plots: the prediction table's schema is fixed by
the contract, so every model the evaluation stage scored can be drawn on the same axes, for any set,
and the plots the stage wrote are shown next to these as files.

Which rows a set is scored on (one row per clip): validation -> the out-of-fold rows (each fold
clip scored by the model that did not train on it); internal_test/temporal -> the fold-ensemble
rows (fold == -1), or, without them, the mean probability over the fold models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from luskit.schema import PATTERN_SLUGS, PATTERNS

SETS = ("validation", "internal_test", "temporal")


def scored_rows(preds: pd.DataFrame, set_name: str) -> pd.DataFrame:
    """One row per clip of `set_name` (rule in the module doc): clip_id, fold, prob_*, label_*."""
    if set_name not in SETS:
        raise ValueError(f"set {set_name!r}: use one of {SETS}")
    rows = preds[preds["set"] == set_name]
    if set_name == "validation" or rows.empty:
        return rows
    ensemble = rows[rows["fold"] == -1]
    if not ensemble.empty:
        return ensemble
    probs = [f"prob_{s}" for s in PATTERN_SLUGS]
    labels = [f"label_{s}" for s in PATTERN_SLUGS]
    mean = rows.groupby("clip_id", sort=True)[probs].mean()
    first = rows.drop_duplicates("clip_id").set_index("clip_id")[labels]
    return mean.join(first).reset_index().assign(fold=-1)


def _labelled(rows: pd.DataFrame, slug: str) -> tuple[np.ndarray, np.ndarray]:
    """(y int 0/1, p float) for the rows with a consensus label (NA labels are excluded, as in training)."""
    y = rows[f"label_{slug}"]
    keep = y.notna().to_numpy()
    return y[keep].astype(int).to_numpy(), rows.loc[keep, f"prob_{slug}"].astype(float).to_numpy()


def _both_classes(y: np.ndarray) -> bool:
    return len(y) > 0 and 0 < int(y.sum()) < len(y)


def curves(preds: pd.DataFrame, model: str, set_name: str) -> dict[str, pd.DataFrame]:
    """{'roc': model, pattern, fpr, tpr; 'pr': model, pattern, recall, precision; 'calibration': model,
    pattern, mean_prob, frac_positive, n} for one model and set (patterns with one class are skipped)."""
    rows = scored_rows(preds, set_name)
    roc, pr, cal = [], [], []
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        y, p = _labelled(rows, slug)
        if not _both_classes(y):
            continue
        fpr, tpr, _ = roc_curve(y, p)
        roc.append(pd.DataFrame({"model": model, "pattern": pattern, "fpr": fpr, "tpr": tpr}))
        precision, recall, _ = precision_recall_curve(y, p)
        pr.append(pd.DataFrame({"model": model, "pattern": pattern, "recall": recall, "precision": precision}))
        cal.append(calibration_bins(y, p).assign(model=model, pattern=pattern))
    cat = lambda parts: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()  # noqa: E731
    return {"roc": cat(roc), "pr": cat(pr), "calibration": cat(cal)}


def calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability: equal-width probability bins with at least one clip: mean_prob, frac_positive, n."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    frame = pd.DataFrame({"bin": which, "p": p, "y": y})
    out = frame.groupby("bin").agg(mean_prob=("p", "mean"), frac_positive=("y", "mean"), n=("y", "size"))
    return out.reset_index(drop=True)


def auroc_table(preds_by_model: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """model, set, pattern, auroc, n, n_positive for every model, set and pattern with both classes."""
    rows = []
    for model, preds in preds_by_model.items():
        for set_name in SETS:
            scored = scored_rows(preds, set_name)
            for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
                y, p = _labelled(scored, slug)
                auc = float(roc_auc_score(y, p)) if _both_classes(y) else np.nan
                rows.append((model, set_name, pattern, auc, len(y), int(y.sum())))
    return pd.DataFrame(rows, columns=["model", "set", "pattern", "auroc", "n", "n_positive"])


def fold_spread(preds_by_model: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """model, fold, set, pattern, auroc: each fold model on its own validation fold and on the test sets
    (how much the five models differ: the spread a single-fold result hides)."""
    rows = []
    for model, preds in preds_by_model.items():
        per_fold = preds[preds["fold"] >= 0]
        for (fold, set_name), grp in per_fold.groupby(["fold", "set"], sort=True):
            for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
                y, p = _labelled(grp, slug)
                if _both_classes(y):
                    rows.append((model, int(fold), set_name, pattern, float(roc_auc_score(y, p))))
    return pd.DataFrame(rows, columns=["model", "fold", "set", "pattern", "auroc"])


TEST_SETS = ("internal_test", "temporal")
PROVENANCE = {"from_readers": "label as the readers gave it", "changed_by_blind_review": "changed by blind review",
              "model_assisted_left_out": "model-assisted decisions left out",
              "training_label_differs": "training label differs from the blind one"}


def _clip_block(metrics: dict, set_name: str) -> dict:
    return (metrics.get(set_name) or {}).get("clip") or {}


def test_label_views(metrics_by_model: dict[str, dict]) -> pd.DataFrame:
    """model, set, pattern (and "macro"), auroc_after_review (the headline: blind labels), auroc_before_review
    (the readers' labels alone) from artifacts/eval/<model>/metrics.json; empty when the evaluation had no
    label views (then metrics carry a label_note instead)."""
    rows = []
    for model, metrics in metrics_by_model.items():
        for set_name in TEST_SETS:
            block = _clip_block(metrics, set_name)
            if "before_review" not in block:
                continue
            after, before = block[block["headline"]], block["before_review"]
            for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
                rows.append((model, set_name, pattern, after["patterns"][slug]["auroc"],
                             before["patterns"][slug]["auroc"]))
            rows.append((model, set_name, "macro", after["macro"]["auroc"], before["macro"]["auroc"]))
    return pd.DataFrame(rows, columns=["model", "set", "pattern", "auroc_after_review", "auroc_before_review"])


def label_provenance(metrics: dict) -> pd.DataFrame:
    """set, pattern, clips and the PROVENANCE counts of the test sets' labels (one model's metrics.json: the
    counts are the same for every model)."""
    rows = []
    for set_name in TEST_SETS:
        prov = _clip_block(metrics, set_name).get("label_provenance") or {}
        for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
            if slug in prov:
                rows.append({"set": set_name, "pattern": pattern, "clips": prov[slug]["n"],
                             **{label: prov[slug][key] for key, label in PROVENANCE.items()}})
    return pd.DataFrame(rows, columns=["set", "pattern", "clips", *PROVENANCE.values()])


def interval_support(metrics: dict) -> pd.DataFrame:
    """set, pattern, positive / negative patients, valid and single-class bootstrap replicates and why a CI is
    withheld, for the headline view of every set (one model's metrics.json)."""
    rows = []
    for set_name in SETS:
        block = _clip_block(metrics, set_name)
        head = block.get(block.get("headline", ""))
        if not head:
            continue
        for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
            p = head["patterns"][slug]
            rows.append((set_name, pattern, p.get("n_pos_patients"), p.get("n_neg_patients"), p.get("boot_valid"),
                         p.get("boot_single_class"), p.get("ci_reason") or ("" if p.get("auroc_ci") else "—")))
    return pd.DataFrame(rows, columns=["set", "pattern", "positive patients", "negative patients",
                                       "valid replicates", "single-class replicates", "CI withheld because"])
