"""Clips from the uint8 frame cache, resized to the training frame size, optionally preloaded into RAM.

The cache (artifacts/clips/cache/<video_id>.npy, (n_frames, size, size[, 3]) uint8) is read memory-mapped; a
clip is the frame range [start, end) of its video: only the real frames (the collate pads and masks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from training.data.table import labels_array
from training.data.transforms import resize_frames, to_chw


def clip_bytes(table: pd.DataFrame, frame_size: int, channels: int = 1) -> int:
    """Bytes the real frames of `table`'s clips take at frame_size x frame_size (uint8)."""
    return int(table["n_real_frames"].sum()) * frame_size * frame_size * channels


class ClipDataset(torch.utils.data.Dataset):
    """Item i = {"frames": (n_real, C, S, S) uint8, "labels": (4,) float32 (0 where unknown),
    "known": (4,) bool, "index": i} for row i of a clip table (S = frame_size, C = 1 for grayscale caches).

    preload=True reads every video once, resizes its frames once and keeps them (clips are views of their
    video's frames, so overlapping clips share memory); otherwise each item is read from the memory-mapped
    cache and resized on the fly (in the DataLoader worker).
    """

    def __init__(self, table: pd.DataFrame, clips_dir: Path, frame_size: int, preload: bool = False,
                 progress: bool = False) -> None:
        self.clips_dir = Path(clips_dir)
        self.frame_size = frame_size
        self.files = table["cache_file"].astype(str).tolist()
        self.starts = table["start"].astype(int).tolist()
        self.ends = table["end"].astype(int).tolist()
        labels = torch.from_numpy(labels_array(table))
        self.known = ~torch.isnan(labels)
        self.labels = torch.nan_to_num(labels, nan=0.0)
        self._maps: dict[str, np.ndarray] = {}  # opened lazily in each worker process (never before the fork)
        self._videos: dict[str, torch.Tensor] | None = None
        if preload:
            self._videos = self._preload(progress)

    def __len__(self) -> int:
        return len(self.files)

    def _cache(self, rel: str) -> np.ndarray:
        if rel not in self._maps:
            path = self.clips_dir / rel
            if not path.exists():
                raise FileNotFoundError(f"{path} not found (frame cache named by the clip manifest): rerun the "
                                        "clips stage")
            self._maps[rel] = np.load(path, mmap_mode="r")
        return self._maps[rel]

    def _preload(self, progress: bool) -> dict[str, torch.Tensor]:
        videos = {}
        for rel in tqdm(sorted(set(self.files)), desc="train: preload", unit="video", disable=not progress,
                        leave=False):
            last = max(e for f, e in zip(self.files, self.ends) if f == rel)
            frames = self._cache(rel)
            if last > frames.shape[0]:
                raise IndexError(f"{self.clips_dir / rel}: a clip ends at frame {last} but the cache has "
                                 f"{frames.shape[0]}: the manifest and cache disagree; rerun the clips stage")
            videos[rel] = resize_frames(to_chw(np.array(frames[:last])), self.frame_size)
        self._maps.clear()  # no open memory maps travel into forked workers
        return videos

    def frames(self, i: int) -> torch.Tensor:
        """(n_real, C, S, S) uint8 real frames of clip i."""
        rel, start, end = self.files[i], self.starts[i], self.ends[i]
        if self._videos is not None:
            return self._videos[rel][start:end]
        cache = self._cache(rel)
        if end > cache.shape[0]:
            raise IndexError(f"{self.clips_dir / rel}: clip [{start}, {end}) runs past its {cache.shape[0]} "
                             "frames: the manifest and cache disagree; rerun the clips stage")
        return resize_frames(to_chw(np.array(cache[start:end])), self.frame_size)

    def __getitem__(self, i: int) -> dict:
        return {"frames": self.frames(i), "labels": self.labels[i], "known": self.known[i], "index": i}
