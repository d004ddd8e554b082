"""Batching clips of different lengths: pad to a common length and build the real-frame mask.

The seed padded a video's last clip by repeating its last frame and then treated those copies as real
(num_frames hard-coded to 30). Here the dataset yields only the real frames; the collate pads with copies of
the last real frame (what a mask-unaware 3-D CNN saw in the seed) and marks them False in the mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_collate(items: Sequence[dict], length: int | None = None) -> dict[str, torch.Tensor]:
    """Items from ClipDataset -> batch dict.

    frames (B, T, C, H, W) uint8 (T = `length`, or the longest clip when None), mask (B, T) bool (True = real),
    n_real (B,) int64, labels (B, 4) float32 (0 where unknown), known (B, 4) bool, index (B,) int64.
    """
    counts = [int(item["frames"].shape[0]) for item in items]
    time = length or max(counts)
    if max(counts) > time:
        raise ValueError(f"a clip has {max(counts)} real frames, more than the clip length {time}: the clip "
                         "manifest and clips.length disagree; rerun the clips stage")
    if min(counts) < 1:
        raise ValueError("a clip has no real frame: the clip manifest is corrupt; rerun the clips stage")
    first = items[0]["frames"]
    frames = torch.empty((len(items), time, *first.shape[1:]), dtype=first.dtype)
    for b, (item, n) in enumerate(zip(items, counts)):
        frames[b, :n] = item["frames"]
        frames[b, n:] = item["frames"][n - 1]
    n_real = torch.tensor(counts, dtype=torch.int64)
    return {
        "frames": frames,
        "mask": torch.arange(time)[None, :] < n_real[:, None],
        "n_real": n_real,
        "labels": torch.stack([item["labels"] for item in items]),
        "known": torch.stack([item["known"] for item in items]),
        "index": torch.tensor([int(item["index"]) for item in items], dtype=torch.int64),
    }


class PadCollate:
    """Picklable collate (DataLoader workers) padding to a fixed clip length."""

    def __init__(self, length: int | None) -> None:
        self.length = length

    def __call__(self, items: Sequence[dict]) -> dict[str, torch.Tensor]:
        return pad_collate(items, self.length)
