"""The clip table a training run reads: clip manifest + split roles + wide consensus labels (pure functions).

One row per clip: clip_id, video_id, patient_id, period, role, start, end, n_real_frames, cache_file and one
`label_<slug>` Int8 column per pattern (PATTERNS order; NA = no consensus for that pattern).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS, PATTERNS

LABEL_COLUMNS = tuple(f"label_{slug}" for slug in PATTERN_SLUGS)
SETS = ("validation", "internal_test", "temporal")  # what a fold model predicts (predictions.parquet `set`)


def fold_role(fold: int) -> str:
    return f"fold{fold}"


def wide_labels(consensus: pd.DataFrame) -> pd.DataFrame:
    """Long consensus (clip_id, pattern, label Int8/NA) -> clip_id + label_<slug> Int8 columns.

    A pattern with no consensus row for a clip is NA, exactly like an explicit NA (no consensus).
    """
    unknown = sorted(set(consensus["pattern"]) - set(PATTERNS))
    if unknown:
        raise ValueError(f"consensus names unknown pattern(s) {unknown}; expected {list(PATTERNS)}")
    wide = consensus.pivot_table(index="clip_id", columns="pattern", values="label", aggfunc="first", dropna=False)
    wide = wide.reindex(columns=list(PATTERNS))
    wide.columns = list(LABEL_COLUMNS)
    return wide.astype("Int8").reset_index()


def clip_table(manifest: pd.DataFrame, splits: pd.DataFrame, consensus: pd.DataFrame) -> pd.DataFrame:
    """Join the manifest with split roles and wide labels; clips without a role are dropped (not in a split).

    Raises ValueError when the splits name clips the manifest lacks (stale splits: rerun the split stage).
    """
    missing = sorted(set(splits["clip_id"]) - set(manifest["clip_id"]))
    if missing:
        raise ValueError(f"{len(missing)} clip(s) in the splits table are not in the clip manifest (e.g. "
                         f"{missing[0]}): the splits are stale, rerun the split stage")
    table = manifest.merge(splits[["clip_id", "role"]], on="clip_id", how="inner", validate="one_to_one")
    table = table.merge(wide_labels(consensus), on="clip_id", how="left", validate="one_to_one")
    for column in LABEL_COLUMNS:
        table[column] = table[column].astype("Int8")
    keep = ["clip_id", "video_id", "patient_id", "period", "role", "start", "end", "n_real_frames", "cache_file",
            *LABEL_COLUMNS]
    return table[keep].sort_values("clip_id", kind="stable").reset_index(drop=True)


def labels_array(table: pd.DataFrame) -> np.ndarray:
    """(N, 4) float32 labels with NaN where there is no consensus."""
    return table[list(LABEL_COLUMNS)].astype("Float32").to_numpy(dtype=np.float32, na_value=np.nan)


def fold_sets(table: pd.DataFrame, fold: int) -> dict[str, pd.DataFrame]:
    """Fold `fold`'s tables: train (the other folds), validation (this fold), internal_test and temporal.

    Training drops clips with no consensus for any pattern (nothing to learn from); every evaluation set keeps
    them (they are predicted; metrics skip NA labels). Raises ValueError if the fold or its training data is empty.
    """
    role = fold_role(fold)
    folds = table["role"].str.fullmatch(r"fold\d+")
    if not (table["role"] == role).any():
        raise ValueError(f"no clip has role {role!r} in the splits table (roles: {sorted(set(table['role']))}): "
                         f"choose a fold below split.n_folds")
    train = table[folds & (table["role"] != role)]
    train = train[~np.isnan(labels_array(train)).all(axis=1)]
    if train.empty:
        raise ValueError(f"fold {fold}: no labelled training clip in the other folds")
    return {"train": train.reset_index(drop=True),
            "validation": table[table["role"] == role].reset_index(drop=True),
            "internal_test": table[table["role"] == "internal_test"].reset_index(drop=True),
            "temporal": table[table["role"] == "temporal"].reset_index(drop=True)}

