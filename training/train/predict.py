"""Predictions of a fold model on its validation fold, the internal test and the temporal set.

predictions.parquet (contract), one row per (clip, fold model): clip_id, video_id, patient_id, period, role,
set, fold, model, n_real_frames, prob_<slug> float32, label_<slug> Int8 (NA allowed), thr_<slug> float64,
attention_<slug> list<float32> of the clip length (0 on padded frames; null for models without attention).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from luskit.atomic import write_atomic
from luskit.schema import PATTERN_SLUGS, PATTERNS

ID_COLUMNS = ("clip_id", "video_id", "patient_id", "period", "role")


def schema() -> pa.Schema:
    fields = [pa.field(c, pa.string()) for c in ID_COLUMNS]
    fields += [pa.field("set", pa.string()), pa.field("fold", pa.int64()), pa.field("model", pa.string()),
               pa.field("n_real_frames", pa.int64())]
    fields += [pa.field(f"prob_{s}", pa.float32()) for s in PATTERN_SLUGS]
    fields += [pa.field(f"label_{s}", pa.int8()) for s in PATTERN_SLUGS]
    fields += [pa.field(f"thr_{s}", pa.float64()) for s in PATTERN_SLUGS]
    fields += [pa.field(f"attention_{s}", pa.list_(pa.float32())) for s in PATTERN_SLUGS]
    return pa.schema(fields)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


def set_table(clips: pd.DataFrame, set_name: str, fold: int, model: str, logits: np.ndarray,
              attention: np.ndarray | None, thresholds: dict[str, float]) -> pd.DataFrame:
    """One set's rows. clips: its clip table (ids, role, n_real_frames, label_<slug>); logits (N, 4);
    attention (N, 4, T) float or None; thresholds: pattern -> the fold's validation threshold."""
    n = len(clips)
    probs = sigmoid(logits)
    frame = pd.DataFrame({c: clips[c].astype(str).to_numpy() for c in ID_COLUMNS})
    frame["set"], frame["fold"], frame["model"] = set_name, np.int64(fold), model
    frame["n_real_frames"] = clips["n_real_frames"].to_numpy(dtype=np.int64)
    for k, slug in enumerate(PATTERN_SLUGS):
        frame[f"prob_{slug}"] = probs[:, k]
    for slug in PATTERN_SLUGS:
        frame[f"label_{slug}"] = clips[f"label_{slug}"].astype("Int8").reset_index(drop=True)
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        frame[f"thr_{slug}"] = np.float64(thresholds[pattern])
    for k, slug in enumerate(PATTERN_SLUGS):
        frame[f"attention_{slug}"] = ([None] * n if attention is None
                                      else list(attention[:, k, :].astype(np.float32)))
    return frame


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The contract's Arrow types; pandas metadata kept so pd.read_parquet gives Int8 labels back."""
    return pa.Table.from_pandas(frame, schema=schema(), preserve_index=False)


def write_predictions(path: Path, frames: list[pd.DataFrame]) -> None:
    """Concatenate the sets' rows and write them atomically with the contract's schema."""
    table = to_arrow(pd.concat(frames, ignore_index=True)) if frames else schema().empty_table()
    write_atomic(Path(path), lambda tmp: pq.write_table(table, tmp))
