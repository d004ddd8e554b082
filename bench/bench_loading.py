"""Benchmark: training clips from the uint8 cache versus decoding the de-identified MP4s, same clips, same run.

Paths measured on the clips of artifacts/clips/manifest.parquet (a random sample with --clips N):
  cache     ClipDataset items (memory-mapped .npy slice + resize to --frame-size in torch), one process;
  loader    the same through the training DataLoader (PadCollate, --workers processes, batch --batch);
  preload   reading and resizing every video's cache into RAM once (what train.preload does), per clip;
  mp4       PyAV: seek to the keyframe before the clip, decode to its last frame, grey, letterbox-resize to the
            cache size (what the clips stage does), then resize to --frame-size: a loader without the cache.
Decoded MP4 clips are checked against the cache (same decoder and resize: equal up to a grey level or two).
Prints a markdown section for BENCHMARKS.md (machine, date, command, numbers, ratio).

    .venv/bin/python bench/bench_loading.py [--root PROJECT] [--clips 200] [--frame-size 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.clip_cache import resize_frame  # noqa: E402
from luskit import paths  # noqa: E402
from training.data.collate import PadCollate  # noqa: E402
from training.data.dataset import ClipDataset  # noqa: E402
from training.data.transforms import resize_frames, to_chw  # noqa: E402


def decode_clip(video: Path, start: int, end: int, fps: float, size: int, resize: str) -> np.ndarray:
    """Frames [start, end) of an MP4 as (n, size, size) uint8 grey: seek to the keyframe at or before `start`
    (by time), decode forward, keep frames by their presentation time."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        base = stream.time_base or Fraction(1, 90000)
        first_pts = stream.start_time or 0
        container.seek(int(first_pts + Fraction(start, 1) / Fraction(fps).limit_denominator(1001) / base),
                       stream=stream, backward=True, any_frame=False)
        out = []
        for frame in container.decode(stream):
            index = int(round(float((frame.pts - first_pts) * base) * fps))
            if index >= end:
                break
            if index >= start:
                out.append(resize_frame(frame.to_ndarray(format="gray"), size, resize))
    if len(out) != end - start:
        raise RuntimeError(f"{video}: decoded {len(out)} frames for clip [{start}, {end})")
    return np.stack(out)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder holding artifacts/")
    parser.add_argument("--clips", type=int, default=200, help="random clips to load (0 = all)")
    parser.add_argument("--frame-size", type=int, default=64, help="training frame side (resize in torch)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = args.root
    manifest = pd.read_parquet(root / paths.CLIP_MANIFEST)
    if args.clips:
        manifest = manifest.sample(n=min(args.clips, len(manifest)), random_state=args.seed)
    table = manifest.assign(**{f"label_{k}": pd.array([0] * len(manifest), dtype="Int8")
                               for k in ("a_lines", "b_lines", "consolidation", "pleural_effusion")})
    table = table.reset_index(drop=True)
    clips_dir = root / paths.CLIPS
    cache_size = int(np.load(clips_dir / table["cache_file"][0], mmap_mode="r").shape[1])
    n = len(table)

    data = ClipDataset(table, clips_dir, args.frame_size)
    t_cache = timed(lambda: [data[i] for i in range(n)])
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, num_workers=args.workers,
                                         collate_fn=PadCollate(30))
    t_loader = timed(lambda: [b for b in loader])
    t_preload = timed(lambda: ClipDataset(table, clips_dir, args.frame_size, preload=True))

    def mp4_all() -> list[np.ndarray]:
        return [resize_frames(to_chw(decode_clip(root / paths.VIDEOS / f"{r.video_id}.mp4", r.start, r.end, r.fps,
                                                 cache_size, "letterbox")), args.frame_size)
                for r in table.itertuples()]
    t0 = time.perf_counter()
    decoded = mp4_all()
    t_mp4 = time.perf_counter() - t0
    diffs = [int(np.abs(d.numpy().astype(int) - data[i]["frames"].numpy().astype(int)).max())
             for i, d in enumerate(decoded[:20])]

    rate = {k: n / v for k, v in {"cache": t_cache, "loader": t_loader, "preload": t_preload, "mp4": t_mp4}.items()}
    frames = int(table["n_real_frames"].sum())
    print(f"\n### Training data loading: uint8 cache vs MP4 decode (bench/bench_loading.py)\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}, PyAV {av.__version__}; date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"- command: .venv/bin/python bench/bench_loading.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"- {n} clips ({frames} real frames) of the demo, cache {cache_size} px, resized to {args.frame_size} px; "
          f"MP4 clips equal the cache within {max(diffs)} grey levels (first 20 checked)\n")
    print("| path | seconds | clips/s | frames/s |")
    print("|---|---|---|---|")
    for name, label, seconds in (("cache", "uint8 cache, memory-mapped (1 process)", t_cache),
                                 ("loader", f"uint8 cache via DataLoader ({args.workers} workers, batch {args.batch})",
                                  t_loader),
                                 ("preload", "in-RAM preload (one-off read + resize)", t_preload),
                                 ("mp4", "MP4 decode per clip (PyAV seek + decode + resize)", t_mp4)):
        print(f"| {label} | {seconds:.2f} | {rate[name]:.0f} | {frames / seconds:.0f} |")
    print(f"\nratio cache / MP4: {rate['cache'] / rate['mp4']:.1f}x clips/s (one process each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
