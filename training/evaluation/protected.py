"""Which labels the test sets are scored on: protected from the model by design. No I/O.

The labels stage writes three views per clip and pattern (labeling/consensus.py, with_label_views):
`label` (every reviewer decision applied: what training uses), `blind_label` (only decisions made
without any model output on screen) and `reader_label` (the readers' consensus alone, no decision:
the labels as they stood before any model existed). A decision made with the model's help would
otherwise move exactly the test labels the model disagreed with, towards the model.

Evaluation therefore relabels every internal_test and temporal row:
- "after review" (the headline): blind_label, so a model-assisted decision can never reach a test label
  (the review app also hides model outputs on these clips, so such decisions should not exist at all);
- "before review": reader_label, reported next to it;
and counts the provenance per set and pattern: labels as the readers gave them, labels changed by blind
review, clip patterns whose model-assisted decisions were left out, and clip patterns whose training-time
label differs from the blind one. Fold rows keep the training labels (out-of-fold validation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.evaluation import scoring, views as eval_views
from training.evaluation.tables import TEST_SETS, column

VIEWS = ("blind_label", "reader_label")
NEEDED = ("clip_id", "pattern", "label", *VIEWS, "n_assisted")
SLUG = dict(zip(PATTERNS, PATTERN_SLUGS))
UNAVAILABLE = ("test labels as trained (artifacts/labels/consensus.parquet lacks reader_label / blind_label: rerun "
               "the labels stage); model-assisted decisions are NOT screened out")


def label_views(consensus: pd.DataFrame | None) -> pd.DataFrame | None:
    """Consensus rows reduced to NEEDED with a `slug` column; None when the table lacks the views."""
    if consensus is None or any(c not in consensus.columns for c in NEEDED):
        return None
    out = consensus[list(NEEDED)].copy()
    out["slug"] = out["pattern"].map(SLUG)
    return out[out["slug"].notna()]


def relabel(rows: pd.DataFrame, views: pd.DataFrame, view: str, sets: Sequence[str] = TEST_SETS,
            slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """A copy of `rows` whose rows in `sets` carry label_<slug> from `view` (a VIEWS column). A clip the
    consensus does not know (an excluded video) gets <NA>: no label, neither right nor wrong."""
    if view not in VIEWS:
        raise ValueError(f"view {view!r}: use one of {VIEWS}")
    out = rows.copy()
    at = out["set"].isin(list(sets)).to_numpy()
    for s in slugs:
        lookup = views[views["slug"] == s].set_index("clip_id")[view]
        values = out.loc[at, "clip_id"].map(lookup)
        out[column("label", s)] = out[column("label", s)].astype("Int8")
        out.loc[at, column("label", s)] = pd.array(values.to_numpy(dtype=np.float64, na_value=np.nan),
                                                   dtype="Float64").astype("Int8")
    return out


def provenance_counts(head: pd.DataFrame, views: pd.DataFrame, slugs: Sequence[str] = PATTERN_SLUGS) -> dict:
    """Per pattern, over the clips of `head` (one set's headline rows): {"n", "from_readers",
    "changed_by_blind_review", "model_assisted_left_out", "training_label_differs"} (clip counts)."""
    clips = pd.Index(head["clip_id"].unique())
    out = {}
    for s in slugs:
        v = views[(views["slug"] == s) & views["clip_id"].isin(clips)]
        reader, blind, trained = (v[c].astype("Float64") for c in ("reader_label", "blind_label", "label"))
        out[s] = {"n": int(len(v)),
                  "from_readers": int(_same(reader, blind).sum()),
                  "changed_by_blind_review": int((~_same(reader, blind)).sum()),
                  "model_assisted_left_out": int((v["n_assisted"] > 0).sum()),
                  "training_label_differs": int((~_same(trained, blind)).sum())}
    return out


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Equal labels, two missing labels counting as equal."""
    return ((a == b).fillna(False) | (a.isna() & b.isna())).astype(bool)


def add_label_views(result: dict, rows: pd.DataFrame, views: pd.DataFrame | None, settings) -> dict:
    """score_model's result with, per test set at clip level, "before_review" (the headline rows scored on
    reader_label) and "label_provenance" (provenance_counts), or "label_note" when the views are missing.

    rows: the model's rows already relabelled with blind_label (the headline "after review");
    settings: views.ViewSettings."""
    for set_name in TEST_SETS:
        block = result[set_name]["clip"]
        head = eval_views.headline_rows(rows, set_name)
        if head.empty:
            continue
        if views is None:
            block["label_note"] = UNAVAILABLE
            continue
        before = relabel(head, views, "reader_label")
        block["before_review"] = scoring.score_table(before, settings.boot, settings.ece_bins)
        block["label_provenance"] = provenance_counts(head, views)
    return result
