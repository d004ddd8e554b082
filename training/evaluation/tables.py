"""Prediction tables: contract checks, the fold ensemble and video pooling. Pure functions on DataFrames.

A prediction table (contracts: artifacts/models/<model>/fold<k>/predictions.parquet) has one row per
(clip, fold model): clip_id, video_id, patient_id, period, role, set in {validation, internal_test,
temporal}, fold, model, n_real_frames and per pattern slug s: prob_s (sigmoid), label_s (Int8
consensus, NA allowed), thr_s (the fold's validation threshold), attention_s (list of T floats or null).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS

SETS = ("validation", "internal_test", "temporal")
TEST_SETS = ("internal_test", "temporal")
ENSEMBLE_FOLD = -1  # fold value of the fold-ensemble rows
KEYS = ("clip_id", "video_id", "patient_id", "period", "role", "set", "fold", "model", "n_real_frames")
PREFIXES = ("prob", "label", "thr", "attention")
POOLINGS = ("max", "mean")


def column(prefix: str, slug: str) -> str:
    return f"{prefix}_{slug}"


def required_columns(slugs: Sequence[str] = PATTERN_SLUGS) -> list[str]:
    return [*KEYS, *(column(p, s) for s in slugs for p in PREFIXES)]


def check_predictions(table: pd.DataFrame, source: str, slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """Raise ValueError naming `source` and the fix when `table` breaks the contract; return it typed."""
    fix = "rerun the train stage (luskit train) that writes it"
    missing = [c for c in required_columns(slugs) if c not in table.columns]
    if missing:
        raise ValueError(f"{source}: column(s) {missing} missing: {fix}")
    bad_sets = sorted(set(table["set"].astype(str)) - set(SETS))
    if bad_sets:
        raise ValueError(f"{source}: unknown set value(s) {bad_sets}; expected {list(SETS)}: {fix}")
    out = table.copy()
    out["fold"] = out["fold"].astype(int)
    for s in slugs:
        out[column("prob", s)] = out[column("prob", s)].astype(np.float64)
        out[column("thr", s)] = out[column("thr", s)].astype(np.float64)
        out[column("label", s)] = out[column("label", s)].astype("Int8")
        probs = out[column("prob", s)].to_numpy()
        if not np.all((probs >= 0) & (probs <= 1)):
            raise ValueError(f"{source}: prob_{s} has values outside [0, 1] or missing (expected sigmoid "
                             f"probabilities): {fix}")
    duplicated = out.duplicated(["clip_id", "fold", "model"])
    if duplicated.any():
        raise ValueError(f"{source}: {int(duplicated.sum())} duplicated (clip_id, fold, model) rows: {fix}")
    return out


def _mean_attention(values: pd.Series, codes: np.ndarray, n_groups: int) -> list:
    """Per group, the elementwise mean of the rows' attention vectors; null when any row lacks one."""
    arrays = values.to_numpy()
    if any(a is None or (isinstance(a, float) and np.isnan(a)) for a in arrays):
        return [None] * n_groups
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        return [None] * n_groups
    stacked = np.stack([np.asarray(a, dtype=np.float64) for a in arrays])  # (rows, T)
    sums = np.zeros((n_groups, stacked.shape[1]))
    np.add.at(sums, codes, stacked)
    means = sums / np.bincount(codes, minlength=n_groups)[:, None]
    return [row.astype(np.float32) for row in means]


def ensemble(table: pd.DataFrame, threshold: str = "mean", slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """Probability-averaged fold ensemble of the test-set rows (internal_test, temporal) of one model.

    table: fold-model rows of one model. Returns one row per (set, clip) with fold = ENSEMBLE_FOLD,
    prob = mean over the fold models that scored the clip, thr = mean (or median) of their validation
    thresholds (each fold model's threshold was chosen on its own validation fold; their mean is the
    threshold of the averaged probability, since averaging probabilities roughly averages their
    operating points), attention = elementwise mean (each sums to 1 over real frames, so the mean
    does too), and n_models = how many fold models were averaged.
    """
    rows = table[table["set"].isin(TEST_SETS) & (table["fold"] != ENSEMBLE_FOLD)]
    if rows.empty:
        return rows.assign(n_models=pd.Series(dtype=int))
    codes, first = group_codes(rows, ["set", "clip_id"])
    n = len(first)
    out = rows.iloc[first][[k for k in KEYS if k != "fold"]].reset_index(drop=True)
    out.insert(list(KEYS).index("fold"), "fold", ENSEMBLE_FOLD)
    grouped = rows.groupby(codes, sort=True)
    agg = "median" if threshold == "median" else "mean"
    for s in slugs:
        out[column("prob", s)] = grouped[column("prob", s)].mean().to_numpy()
        out[column("label", s)] = grouped[column("label", s)].first().astype("Int8").to_numpy()
        out[column("thr", s)] = grouped[column("thr", s)].agg(agg).to_numpy()
        out[column("attention", s)] = _mean_attention(rows[column("attention", s)], codes, n)
    out["n_models"] = grouped.size().to_numpy()
    return out


def group_codes(table: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int group code per row (groups in sorted key order) and (G,) index of each group's first row."""
    codes = table.groupby(list(keys), sort=True).ngroup().to_numpy()
    _, first = np.unique(codes, return_index=True)
    return codes, first


def video_labels(labels: np.ndarray, codes: np.ndarray, n_groups: int) -> pd.Series:
    """Video label per group of clip labels (Int8; labels (n,) float, NaN = no consensus): a video shows a
    pattern if any clip does (1); it does not if every clip is labelled 0 (0); otherwise (no positive clip,
    some clip without consensus) NA."""
    positive = np.bincount(codes, weights=labels == 1, minlength=n_groups) > 0
    unknown = np.bincount(codes, weights=np.isnan(labels), minlength=n_groups) > 0
    out = pd.Series(np.where(positive, 1, 0)).astype("Int8")
    out[~positive & unknown] = pd.NA
    return out


def pool_videos(table: pd.DataFrame, how: str, slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """Clip rows -> one row per (model, set, fold, video): prob = max or mean of the clip probabilities,
    label = video_labels of the clip labels, thr = mean clip threshold (one fold model: all equal), n_clips.

    The seed never pooled clips per video; max pooling answers "is the pattern anywhere in this loop",
    mean pooling "how much of it". A clip-level threshold applied to the max flags more videos than
    it flags clips (a max of several draws is larger); that is reported, not re-tuned on test data.
    """
    if how not in POOLINGS:
        raise ValueError(f"video pooling {how!r}: use one of {POOLINGS}")
    keys = ["model", "set", "fold", "video_id"]
    if table.empty:
        return table.assign(n_clips=pd.Series(dtype=int)).drop(columns=["clip_id"])
    codes, first = group_codes(table, keys)
    n = len(first)
    count = np.bincount(codes, minlength=n)
    out = table.iloc[first][[*keys, "patient_id", "period", "role"]].reset_index(drop=True)
    for s in slugs:
        prob = table[column("prob", s)].to_numpy(np.float64)
        if how == "max":
            pooled = np.full(n, -np.inf)
            np.maximum.at(pooled, codes, prob)
        else:
            pooled = np.bincount(codes, weights=prob, minlength=n) / count
        out[column("prob", s)] = pooled
        labels = table[column("label", s)].to_numpy(dtype=np.float64, na_value=np.nan)
        out[column("label", s)] = video_labels(labels, codes, n)
        out[column("thr", s)] = np.bincount(codes, weights=table[column("thr", s)].to_numpy(np.float64),
                                            minlength=n) / count
    out["n_clips"] = count
    return out
