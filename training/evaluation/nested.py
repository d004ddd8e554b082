"""Honest operating points for out-of-fold rows: nested thresholds. No I/O.

Each fold model's own threshold (thr_<slug> in its predictions) is Youden's J on its validation fold,
so applying it to that same fold's out-of-fold rows scores the threshold on the data it was tuned on:
sensitivity and specificity come out optimistic (in simulation, in-sample J 0.63 against a true 0.52).
Here fold k's out-of-fold rows get a threshold chosen on the OTHER folds' out-of-fold predictions
(every row of folds j != k pooled: each was scored by a model that never trained on it), so no
out-of-fold row is ever judged by a threshold that saw it. The test sets keep the fold models'
validation thresholds (and the ensemble their mean): those never saw a test clip either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS
from training.evaluation.tables import ENSEMBLE_FOLD, column
from training.train.thresholds import youden

NESTED_NOTE = ("out-of-fold rows of fold k are scored at a threshold chosen (Youden's J) on the other folds' "
               "out-of-fold predictions (nested), never on fold k itself")


def nested_thresholds(rows: pd.DataFrame, slugs: Sequence[str] = PATTERN_SLUGS) -> dict[int, dict[str, dict]]:
    """fold k -> slug -> youden() details chosen on the validation rows of every other fold.

    rows: one model's fold rows (set, fold, prob_<slug>, label_<slug>); ensemble rows are ignored.
    A fold whose other folds hold one class only gets youden()'s fallback (0.5, with its method).
    """
    oof = rows[(rows["set"] == "validation") & (rows["fold"] != ENSEMBLE_FOLD)]
    folds = sorted(int(k) for k in pd.unique(oof["fold"]))
    out: dict[int, dict[str, dict]] = {}
    for k in folds:
        others = oof[oof["fold"] != k]
        out[k] = {s: youden(others[column("label", s)].to_numpy(dtype=np.float64, na_value=np.nan),
                            others[column("prob", s)].to_numpy(np.float64)) for s in slugs}
    return out


def with_nested_thresholds(rows: pd.DataFrame, slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """A copy of `rows` whose out-of-fold (validation) rows carry the nested threshold of their fold in thr_<slug>.

    Rows of other sets are unchanged. With a single fold model there are no other folds: its rows keep
    their own (in-sample) threshold, and nested_note() says so.
    """
    chosen = nested_thresholds(rows, slugs)
    out = rows.copy()
    if len(chosen) < 2:
        return out
    oof = (out["set"] == "validation") & (out["fold"] != ENSEMBLE_FOLD)
    for k, per_slug in chosen.items():
        mask = oof & (out["fold"] == k)
        for s in slugs:
            out.loc[mask, column("thr", s)] = per_slug[s]["threshold"]
    return out


def nested_note(rows: pd.DataFrame) -> str:
    """The sentence the report prints about out-of-fold thresholds for these rows."""
    folds = pd.unique(rows.loc[(rows["set"] == "validation") & (rows["fold"] != ENSEMBLE_FOLD), "fold"])
    if len(folds) < 2:
        return ("a single fold model: its out-of-fold rows use its own validation threshold (in-sample, "
                "optimistic operating points)")
    return NESTED_NOTE
