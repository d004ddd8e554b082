"""ROC, precision-recall and reliability curve points of the headline views. Pure functions, no I/O.

Each curve is a small DataFrame for one (set, model, pattern); the stage writes it as
artifacts/eval/plots/<kind>/<set>/<model>/<pattern slug>.csv (DVC plots, one line per file; the
review app can read the same files) and draws the PNG figures from the same frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from luskit.schema import PATTERN_SLUGS
from training.evaluation import calibration
from training.evaluation.scoring import pattern_data
from training.evaluation.tables import SETS
from training.evaluation.views import headline_rows

KINDS = ("roc", "pr", "calibration")


@dataclass(frozen=True)
class Curve:
    kind: str  # roc | pr | calibration
    set: str
    model: str
    pattern: str  # slug
    points: pd.DataFrame  # roc: fpr, tpr, threshold; pr: recall, precision, threshold; calibration: RELIABILITY_COLUMNS


def pattern_curves(prob: np.ndarray, label: np.ndarray, n_bins: int) -> dict[str, pd.DataFrame]:
    """kind -> points for one binary problem; ROC/PR are empty frames when a class is missing."""
    out = {"calibration": calibration.reliability(prob, label, n_bins)}
    if 0 < label.sum() < len(label):
        fpr, tpr, thr = roc_curve(label, prob)
        out["roc"] = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thr, 1.0)})
        precision, recall, thr = precision_recall_curve(label, prob)
        out["pr"] = pd.DataFrame({"recall": recall, "precision": precision, "threshold": np.r_[thr, 1.0]})
    else:
        out["roc"] = pd.DataFrame(columns=["fpr", "tpr", "threshold"])
        out["pr"] = pd.DataFrame(columns=["recall", "precision", "threshold"])
    return out


def model_curves(model: str, rows: pd.DataFrame, n_bins: int, slugs: Sequence[str] = PATTERN_SLUGS) -> list[Curve]:
    """Curves of every non-empty headline set (pooled out-of-fold, ensembles) of one model, clip level."""
    out = []
    for set_name in SETS:
        head = headline_rows(rows, set_name)
        if head.empty:
            continue
        for slug in slugs:
            d = pattern_data(head, slug)
            for kind, points in pattern_curves(d.prob, d.label, n_bins).items():
                out.append(Curve(kind, set_name, model, slug, points))
    return out


def by_set(curves: Sequence[Curve], kind: str) -> Mapping[str, dict[str, dict[str, pd.DataFrame]]]:
    """{set: {pattern: {model: points}}} of one kind, for one figure per set."""
    out: dict[str, dict[str, dict[str, pd.DataFrame]]] = {}
    for c in curves:
        if c.kind == kind:
            out.setdefault(c.set, {}).setdefault(c.pattern, {})[c.model] = c.points
    return out
