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
              attention: np.ndarray | None, thresholds: dict[str, float]) -> pa.Table:
    """One set's rows. clips: its clip table (ids, role, n_real_frames, label_<slug>); logits (N, 4);
    attention (N, 4, T) float or None; thresholds: pattern -> the fold's validation threshold."""
    n = len(clips)
    probs = sigmoid(logits)
    columns: dict[str, pa.Array] = {c: pa.array(clips[c].astype(str).tolist(), pa.string()) for c in ID_COLUMNS}
    columns["set"] = pa.array([set_name] * n, pa.string())
    columns["fold"] = pa.array(np.full(n, fold, dtype=np.int64))
    columns["model"] = pa.array([model] * n, pa.string())
    columns["n_real_frames"] = pa.array(clips["n_real_frames"].to_numpy(dtype=np.int64))
    for k, slug in enumerate(PATTERN_SLUGS):
        columns[f"prob_{slug}"] = pa.array(probs[:, k], pa.float32())
    for slug in PATTERN_SLUGS:
        labels = clips[f"label_{slug}"].astype("Int8")
        columns[f"label_{slug}"] = pa.array(labels.to_numpy(dtype=np.int8, na_value=0), pa.int8(),
                                            mask=labels.isna().to_numpy())
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        columns[f"thr_{slug}"] = pa.array(np.full(n, thresholds[pattern], dtype=np.float64))
    for k, slug in enumerate(PATTERN_SLUGS):
        if attention is None:
            columns[f"attention_{slug}"] = pa.nulls(n, pa.list_(pa.float32()))
        else:
            values = attention[:, k, :].astype(np.float32)
            columns[f"attention_{slug}"] = pa.array(list(values), pa.list_(pa.float32()))
    return pa.table(columns, schema=schema())


def write_predictions(path: Path, tables: list[pa.Table]) -> None:
    table = pa.concat_tables(tables) if tables else schema().empty_table()
    write_atomic(Path(path), lambda tmp: pq.write_table(table, tmp))
