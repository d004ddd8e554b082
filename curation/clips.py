"""Clip windowing and frame geometry: pure functions, no I/O.

A clip is a window of `length` consecutive frames of one de-identified video. Windows start every
`step = length - overlap` frames. What happens at the end of a video is the `tail` rule:

- ``pad`` (the seed, LUV-Net): every start < n; the last window keeps its few real frames and is
  padded to `length` by repeating its last real frame. 152 frames, L=30, overlap 6 -> 7 clips
  1-30, 25-54, ..., 121-150, 145-152 (1-based inclusive; the last has 8 real frames + 22 repeats).
- ``drop``: full windows only; a video shorter than `length` yields none.
- ``shift``: full windows, plus one window aligned to the end, [n-length, n), when the last full
  window stops short of it; a video shorter than `length` yields one padded window.

Frame indices here are 0-based, end-exclusive. The annotation unit (Label Studio, the seed's
sheets) is 1-based inclusive: [start, end) is frames start+1 .. end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from luskit.config import require

Tail = Literal["pad", "drop", "shift"]
Resize = Literal["letterbox", "center_crop"]

WINDOW_COLUMNS = ("clip_index", "start", "end", "n_real_frames")

# The manifest's columns and dtypes, in order: one row per clip (the join key is clip_id).
MANIFEST_DTYPES: dict[str, str] = {
    "clip_id": "str",
    "video_id": "str",
    "patient_id": "str",
    "period": "str",
    "clip_index": "int64",
    "start": "int64",  # 0-based inclusive
    "end": "int64",  # 0-based exclusive (= last real frame, 1-based)
    "start_frame_1based": "int64",
    "end_frame_1based": "int64",  # inclusive; the unit annotators and the seed's clip names use
    "n_real_frames": "int64",  # end - start; the rest of the clip repeats frame end-1
    "fps": "float64",
    "cache_file": "str",  # relative to the manifest's folder: cache/<video_id>.npy
}


@dataclass(frozen=True)
class ClipParams:
    """The `clips:` section of params.yaml."""

    length: int = 30  # frames per clip (the seed: 30)
    overlap: int = 6  # frames shared by consecutive clips (the seed: 6, i.e. step 24)
    tail: Tail = "pad"
    size: int = 128  # square side of every cached frame, pixels
    resize: Resize = "letterbox"
    grayscale: bool = True  # lung ultrasound is grey: keep one channel (luminance)
    workers: int = 2  # decoding processes (one video each)

    def __post_init__(self) -> None:
        require(self.length >= 2, f"length={self.length}: a clip needs at least 2 frames")
        require(0 <= self.overlap < self.length,
                f"overlap={self.overlap} must lie in [0, length) = [0, {self.length}): set a smaller overlap")
        require(self.workers >= 1, f"workers={self.workers}: use at least 1")
        require(self.size >= 16, f"size={self.size}: frames below 16 px are useless; set size >= 16")
        require(self.tail in ("pad", "drop", "shift"), f"tail={self.tail!r}: use pad, drop or shift")
        require(self.resize in ("letterbox", "center_crop"), f"resize={self.resize!r}: use letterbox or center_crop")

    @property
    def step(self) -> int:
        return self.length - self.overlap


def window_starts(n_frames: int, length: int, overlap: int, tail: Tail) -> list[tuple[int, int]]:
    """The (start, end_exclusive) real-frame ranges of a video's clips, in order."""
    require(length >= 2 and 0 <= overlap < length, f"bad window length={length}, overlap={overlap}")
    require(n_frames >= 0, f"n_frames={n_frames} must be >= 0")
    step = length - overlap
    if tail == "pad":
        return [(s, min(s + length, n_frames)) for s in range(0, n_frames, step)]
    full = [(s, s + length) for s in range(0, n_frames - length + 1, step)]
    if tail == "drop":
        return full
    if tail == "shift":
        if not full:  # shorter than one clip: one padded window rather than nothing
            return [(0, n_frames)] if n_frames > 0 else []
        if full[-1][1] < n_frames:
            full.append((n_frames - length, n_frames))
        return full
    raise ValueError(f"tail={tail!r}: use pad, drop or shift")


def clip_windows(n_frames: int, length: int, overlap: int, tail: Tail) -> pd.DataFrame:
    """The clip table of one video: columns clip_index, start, end (exclusive), n_real_frames (int64)."""
    ranges = window_starts(n_frames, length, overlap, tail)
    starts = np.array([s for s, _ in ranges], dtype=np.int64)
    ends = np.array([e for _, e in ranges], dtype=np.int64)
    return pd.DataFrame({"clip_index": np.arange(len(ranges), dtype=np.int64), "start": starts,
                         "end": ends, "n_real_frames": ends - starts})


def clip_frame_indices(start: int, end: int, length: int) -> np.ndarray:
    """(length,) int64: the video frame shown at each clip position; padding repeats frame end-1."""
    require(0 <= start < end and end - start <= length, f"bad clip range [{start}, {end}) for length {length}")
    return np.minimum(np.arange(start, start + length, dtype=np.int64), end - 1)


def clip_id(video_id: str, index: int) -> str:
    return f"{video_id}_c{index:03d}"


def empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in MANIFEST_DTYPES.items()})


def build_manifest(videos: pd.DataFrame, params: ClipParams) -> pd.DataFrame:
    """One row per clip of each video (columns MANIFEST_DTYPES), sorted by video_id then clip_index.

    `videos` needs video_id, patient_id, period, n_frames, fps: the videos whose cache was written.
    """
    parts = []
    for row in videos.sort_values("video_id", kind="stable").itertuples(index=False):
        win = clip_windows(int(row.n_frames), params.length, params.overlap, params.tail)
        if win.empty:
            continue
        vid = str(row.video_id)
        win.insert(0, "clip_id", [clip_id(vid, i) for i in win["clip_index"]])
        win.insert(1, "video_id", vid)
        win.insert(2, "patient_id", str(row.patient_id))
        win.insert(3, "period", str(row.period))
        win["start_frame_1based"] = win["start"] + 1
        win["end_frame_1based"] = win["end"]
        win["fps"] = float(row.fps)
        win["cache_file"] = cache_relpath(vid)
        parts.append(win)
    if not parts:
        return empty_manifest()
    out = pd.concat(parts, ignore_index=True)[list(MANIFEST_DTYPES)]
    return out.astype(MANIFEST_DTYPES)


def cache_relpath(video_id: str) -> str:
    """Where a video's decoded frames live, relative to the clips folder (the manifest's folder)."""
    return f"cache/{video_id}.npy"


# --- frame geometry -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: rows [top, top+height), columns [left, left+width)."""

    top: int
    left: int
    height: int
    width: int


def letterbox_box(height: int, width: int, size: int) -> Box:
    """Where an aspect-preserving resize of a (height, width) frame lands on a black size x size canvas.

    The long side fills the canvas; the short side is truncated (int), as the seed's resize_ratio:
    988x771 -> 256x199 at rows [28, 227).
    """
    require(height > 0 and width > 0 and size > 0, f"bad frame {height}x{width} or size {size}")
    ratio = size / max(height, width)
    new_h = min(size, max(1, int(height * ratio)))
    new_w = min(size, max(1, int(width * ratio)))
    return Box((size - new_h) // 2, (size - new_w) // 2, new_h, new_w)


def center_crop_box(height: int, width: int) -> Box:
    """The central square of a (height, width) frame, in source pixels (side = the short side)."""
    require(height > 0 and width > 0, f"bad frame {height}x{width}")
    side = min(height, width)
    return Box((height - side) // 2, (width - side) // 2, side, side)
