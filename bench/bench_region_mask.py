"""Kept fraction of fan pixels when a region box is not trusted whole, on already-cropped real clips (POCUS).

Issue 13 item 3: inside a DICOM region box the tissue mask still applies (masking.region_tissue_mask), so
UI panels inside the box go black. An input that is already cropped to the image must still come through
nearly untouched. The POCUS clips are such inputs; each is treated here as a DICOM whose region box is
the whole frame (what some exports state), and the kept fraction is measured exactly as the stage does
(content pixels, brighter than masking.NONBLACK, inside the mask / all content pixels, over the frames the
statistics sample). Same run, same frames: the automatic fan finder the stage uses for region-less inputs
today (`auto`), and the old trust-the-box rule (`box`, 1.0 by definition, listed as the reference).

CPU heavy (every frame of 124 clips is decoded): run once.
Usage: python bench/bench_region_mask.py [--source ../shared/external/pocus] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.deid import masking  # noqa: E402
from curation.readers import iter_frames, probe  # noqa: E402


def kept_fractions(path: Path) -> dict[str, float | None]:
    """{'region': kept fraction with a whole-frame region box, 'auto': with the automatic fan finder}
    (None where the finder gives up) for one clip, plus 'whole': 1 when the region path kept the box whole."""
    cfg = masking.AutoMaskConfig()
    info = probe(path)
    wanted = set(masking.sample_indices(info.n_frames, cfg.max_samples).tolist())
    sampled = [frame for i, frame in enumerate(iter_frames(path, info)) if i in wanted]
    stats = masking.FrameStats()
    for frame in sampled:
        stats.add(frame)
    _, std, peak = stats.result()
    h, w = std.shape
    region = masking.region_tissue_mask(peak, std, (0, 0, w - 1, h - 1), cfg)
    auto = masking.fan_mask_from_stats(peak, std, cfg)

    def kept(mask: np.ndarray | None) -> float | None:
        if mask is None:
            return None
        counts = np.array([masking.nonblack_counts(f, mask) for f in sampled])
        return float(counts[:, 0].sum() / counts[:, 1].sum()) if counts[:, 1].sum() else None

    return {"region": kept(region), "auto": kept(auto), "whole": float(region.all())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=REPO.parent / "shared" / "external" / "pocus")
    ap.add_argument("--out", type=Path, default=None, help="append the result section to this Markdown file")
    args = ap.parse_args()
    files = sorted(p for p in (args.source / "videos").rglob("*") if p.is_file())
    start, rows = time.perf_counter(), []
    for k, path in enumerate(files):
        row = {"clip": str(path.relative_to(args.source / "videos")), **kept_fractions(path)}
        rows.append(row)
        print(f"[{k + 1}/{len(files)}] {row['clip']}: region {row['region']} auto {row['auto']}", flush=True)
    region = np.array([r["region"] for r in rows if r["region"] is not None])
    auto = np.array([r["auto"] for r in rows if r["auto"] is not None])
    worst = sorted((r for r in rows if r["region"] is not None), key=lambda r: r["region"])[:3]
    lines = [
        f"## Region box not trusted whole: kept fraction on already-cropped POCUS clips "
        f"({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
        f"- machine: {platform.machine()}, {__import__('os').cpu_count()} cores, {platform.python_version()}, "
        f"{platform.platform()}",
        f"- command: `python bench/bench_region_mask.py` ({len(files)} clips, {time.perf_counter() - start:.0f} s)",
        "- each clip as a DICOM whose region box is the whole frame; kept fraction = content pixels kept / all "
        "content pixels over the stage's sampled frames (the stage's `kept_fraction`)", "",
        "| mask | clips | median kept | 5th pct | min | clips < 0.95 |", "|---|---|---|---|---|---|",
        f"| tissue inside the box (new region path) | {len(region)} | {np.median(region):.4f} | "
        f"{np.percentile(region, 5):.4f} | {region.min():.4f} | {int((region < 0.95).sum())} |",
        f"| automatic fan finder (today's region-less path, same run) | {len(auto)} | {np.median(auto):.4f} | "
        f"{np.percentile(auto, 5):.4f} | {auto.min():.4f} | {int((auto < 0.95).sum())} |",
        "| box trusted whole (old region path) | by definition | 1.0000 | 1.0000 | 1.0000 | 0 |", "",
        f"- region path kept the box whole (nothing moved): {int(sum(r['whole'] for r in rows))} clips; "
        f"lowest: " + ", ".join(f"{r['clip']} {r['region']:.3f}" for r in worst), "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
