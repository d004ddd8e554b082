"""A tiny project on disk for training tests: uint8 frame cache, clip manifest, consensus, splits, params.yaml.

Frames are 16x16 noise with a bright square per positive pattern (pattern k at corner k) on the frames where the
pattern is on, so a model can learn something in a few steps. Videos are 20 frames, clips 16 frames (C3D's
minimum) with overlap 2 -> [0, 16) and [14, 20) (6 real frames, tail-padded), like the seed's clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from luskit.schema import PATTERNS

SIZE, LENGTH, FRAMES = 16, 16, 20
ROLES = ("fold0", "fold1", "fold2", "internal_test", "temporal")
CORNERS = ((0, 0), (0, 8), (8, 0), (8, 8))


def tiny_profile(**overrides) -> dict:
    profile = {"frame_size": 16, "batch_size": 4, "accumulation": 1, "epochs": 1, "patience": 5,
               "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.0, "schedule": "constant", "augment": True,
               "models": {
                   "luvnet": {"encoder": "test_byobnet", "in_chans": 1, "heads": 2, "kernel": 3, "attn_hidden": 8,
                              "head_hidden": 8, "dropout": 0.0},
                   "luvnet_tfwo": {"encoder": "test_byobnet", "in_chans": 1, "heads": 2, "attn_hidden": 8},
                   "usvn": {"encoder": "test_byobnet", "in_chans": 1, "heads": 2},
                   "c3d": {"in_chans": 1, "width": 2, "fc": 8},
                   "r2plus1d": {"in_chans": 1, "layers": [1, 1, 1, 1], "width": 4},
                   "frame2d": {"encoder": "test_byobnet", "in_chans": 1},
                   "cnn_lstm": {"encoder": "test_byobnet", "in_chans": 1, "features": 8, "hidden": 8, "layers": 1},
               }}
    profile.update(overrides)
    return profile


def write_params(root: Path, profile: dict | None = None, **train) -> Path:
    section = {"profile": "tiny", "models": ["luvnet"], "folds": [0, 1, 2], "seed": 7, "workers": 0,
               "preload": "auto", "resume_every": 50, "eval_batch_size": 4, "quiet": True,
               "profiles": {"tiny": profile or tiny_profile()}}
    section.update(train)
    path = Path(root) / "params.yaml"
    path.write_text(yaml.safe_dump({"clips": {"length": LENGTH}, "train": section}, sort_keys=False))
    return path


def _video(rng: np.random.Generator, active: np.ndarray) -> np.ndarray:
    """(FRAMES, SIZE, SIZE) uint8; active (FRAMES, 4) bool."""
    frames = rng.integers(0, 60, (FRAMES, SIZE, SIZE)).astype(np.uint8)
    for k, (r, c) in enumerate(CORNERS):
        frames[active[:, k], r:r + 6, c:c + 6] = 220
    return frames


def make_project(root: Path, videos_per_role: int = 3, seed: int = 0, profile: dict | None = None, **train) -> Path:
    """Write the tiny project under `root`; returns root. 2 clips per video; `train` overrides train: keys."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    cache = root / "artifacts" / "clips" / "cache"
    cache.mkdir(parents=True)
    manifest, labels, splits = [], [], []
    for r, role in enumerate(ROLES):
        for v in range(videos_per_role):
            patient, video = f"P{r}{v}", f"P{r}{v}_V0"
            period = "temporal" if role == "temporal" else "development"
            active = np.repeat(rng.random((1, 4)) < 0.5, FRAMES, axis=0)
            active[rng.integers(0, FRAMES), :] ^= True  # one odd frame: positives that a single frame decides
            np.save(cache / f"{video}.npy", _video(rng, active))
            for c, (start, end) in enumerate(((0, LENGTH), (LENGTH - 2, FRAMES))):
                clip = f"{video}_c{c:03d}"
                manifest.append((clip, video, patient, period, c, start, end, start + 1, end, end - start, 30.0,
                                 f"cache/{video}.npy"))
                splits.append((clip, video, patient, period, role))
                for k, pattern in enumerate(PATTERNS):
                    labels.append((clip, video, patient, period, pattern, int(active[start:end, k].any())))
    columns = ["clip_id", "video_id", "patient_id", "period", "clip_index", "start", "end", "start_frame_1based",
               "end_frame_1based", "n_real_frames", "fps", "cache_file"]
    pd.DataFrame(manifest, columns=columns).to_parquet(root / "artifacts" / "clips" / "manifest.parquet")
    consensus = pd.DataFrame(labels, columns=["clip_id", "video_id", "patient_id", "period", "pattern", "label"])
    consensus["label"] = consensus["label"].astype("Int8")
    (root / "artifacts" / "labels").mkdir(parents=True)
    consensus.to_parquet(root / "artifacts" / "labels" / "consensus.parquet")
    (root / "artifacts" / "splits").mkdir(parents=True)
    pd.DataFrame(splits, columns=["clip_id", "video_id", "patient_id", "period", "role"]).to_parquet(
        root / "artifacts" / "splits" / "splits.parquet")
    write_params(root, profile, **train)
    return root
