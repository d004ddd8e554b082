"""The fold ensemble on the clips of new videos, one video at a time (bounded memory). No file writes.

Per video: its clips (from the manifest) are read from the uint8 cache and resized to the checkpoint's
frame_size by the training dataset (training/data/dataset.py), and every fold model scores them through the
training inference (training/train/build.py `infer`, attention on). Rows follow the fold-prediction contract
(training/train/predict.py) with set = "external", role = "external" and no labels; the ensemble and the
video pooling are training/evaluation/tables.py's, so new videos are scored exactly like the test sets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from luskit.schema import PATTERN_SLUGS
from training.data.dataset import ClipDataset
from training.evaluation import tables
from training.predict.ensemble import Ensemble
from training.train import build, predict
from training.train.distributed import Dist

EXTERNAL = "external"  # the `set` and `role` of rows predicted here
CPU = Dist(rank=0, world=1, local_rank=0, device=torch.device("cpu"))


def clip_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """Manifest rows -> the clip table the dataset and predict.set_table read (role external, labels NA)."""
    table = manifest.copy()
    table["role"] = EXTERNAL
    for slug in PATTERN_SLUGS:
        table[f"label_{slug}"] = pd.array([pd.NA] * len(table), dtype="Int8")
    return table.reset_index(drop=True)


def predict_video(ensemble: Ensemble, clips: pd.DataFrame, clips_dir: Path, batch_size: int) -> pd.DataFrame:
    """Fold-model rows (one per clip and fold) of one video's clips (clip_rows output)."""
    data = ClipDataset(clips, clips_dir, ensemble.prep.frame_size)
    frames = []
    for fm in ensemble.folds:
        out = build.infer(fm.model, data, CPU, ensemble.prep.length, batch_size, 0, contextlib.nullcontext,
                          attention=True)
        frames.append(predict.set_table(clips, EXTERNAL, fm.fold, ensemble.name, out["logits"],
                                        out.get("attention"), fm.thresholds))
    return pd.concat(frames, ignore_index=True)


def iter_videos(ensemble: Ensemble, manifest: pd.DataFrame, clips_dir: Path, batch_size: int = 8,
                progress: bool = True) -> Iterator[pd.DataFrame]:
    """Fold-model rows per video, in video_id order; a progress bar over videos."""
    table = clip_rows(manifest)
    groups = table.groupby("video_id", sort=True)
    for _, clips in tqdm(groups, total=groups.ngroups, desc="predict", unit="video", disable=not progress):
        yield predict_video(ensemble, clips.sort_values("clip_index").reset_index(drop=True), clips_dir, batch_size)


def ensemble_rows(folds: pd.DataFrame, threshold: str = "mean") -> pd.DataFrame:
    """Fold-model rows -> one ensemble row per clip (tables.ensemble: mean probability, mean or median of the
    fold thresholds, mean attention; fold = -1, n_models)."""
    # tables.ensemble averages the test sets only; external rows are scored the same way, so they pass
    # through it under a test-set name and get their own name back.
    renamed = folds.assign(set=tables.TEST_SETS[0])
    return tables.ensemble(renamed, threshold).assign(set=EXTERNAL).reset_index(drop=True)


def with_windows(rows: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """Add each clip's window in its video (start, end 0-based; start/end_frame_1based inclusive) and cache_file."""
    windows = manifest[["clip_id", "start", "end", "start_frame_1based", "end_frame_1based", "cache_file"]]
    return rows.merge(windows, on="clip_id", how="left", validate="many_to_one")


def positives(table: pd.DataFrame) -> pd.DataFrame:
    """positive_<slug> bool columns: prob >= the (development) threshold."""
    out = table.copy()
    for s in PATTERN_SLUGS:
        out[f"positive_{s}"] = out[tables.column("prob", s)].to_numpy() >= out[tables.column("thr", s)].to_numpy()
    return out


def video_rows(clip_table: pd.DataFrame, how: str) -> pd.DataFrame:
    """Clip rows (ensemble or fold models) -> pooled video rows (tables.pool_videos) with positive_<slug>."""
    return positives(tables.pool_videos(clip_table, how))
