"""Benchmark: the clip cache's integer area resize versus OpenCV's INTER_AREA, same decoded frames, same run.

Decodes the de-identified videos (grey, as the clips stage does), resizes every frame with both to the clips
size (letterbox), and reports milliseconds per frame for each and the share of output pixels where they differ
(by at most one grey level: OpenCV's float sums round ties either way). Prints a markdown section.

    .venv/bin/python bench/bench_resize.py [--videos artifacts/videos] [--max-videos 20] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.clip_cache import iter_frames, resize_frame  # noqa: E402
from curation.clips import letterbox_box  # noqa: E402


def opencv_letterbox(frame: np.ndarray, size: int) -> np.ndarray:
    """The previous resize_frame (letterbox): OpenCV INTER_AREA on a black canvas."""
    box = letterbox_box(*frame.shape[:2], size)
    out = np.zeros((size, size) + frame.shape[2:], np.uint8)
    out[box.top:box.top + box.height, box.left:box.left + box.width] = cv2.resize(
        frame, (box.width, box.height), interpolation=cv2.INTER_AREA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=REPO / "artifacts" / "videos")
    ap.add_argument("--max-videos", type=int, default=20)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    videos = sorted(args.videos.glob("*.mp4"))[: args.max_videos]
    ours = theirs = 0.0
    frames = pixels = differ = worst = 0
    shapes = set()
    for video in videos:
        for frame in iter_frames(video, grayscale=True):
            shapes.add(frame.shape)
            t0 = time.process_time()
            a = resize_frame(frame, args.size, "letterbox")
            t1 = time.process_time()
            b = opencv_letterbox(frame, args.size)
            t2 = time.process_time()
            ours, theirs = ours + t1 - t0, theirs + t2 - t1
            d = np.abs(a.astype(int) - b)
            frames, pixels, differ, worst = frames + 1, pixels + d.size, differ + int((d > 0).sum()), max(worst, int(d.max()))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## Clip cache resize: integer area vs OpenCV INTER_AREA ({now})\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"OpenCV {cv2.__version__}, numpy {np.__version__}")
    print(f"- command: `python bench/bench_resize.py --max-videos {args.max_videos} --size {args.size}` "
          f"({len(videos)} videos, {frames} frames, sources {sorted(shapes)} -> letterbox {args.size})\n")
    print("| resize | CPU ms / frame |\n|---|---|")
    print(f"| OpenCV INTER_AREA (before) | {1e3 * theirs / frames:.3f} |")
    print(f"| integer area (now) | {1e3 * ours / frames:.3f} |")
    print(f"\n- ratio x{ours / theirs:.1f}; outputs differ in {100 * differ / pixels:.4f} % of pixels (at most "
          f"{worst} grey level)")


if __name__ == "__main__":
    main()
