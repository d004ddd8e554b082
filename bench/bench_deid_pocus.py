"""Benchmark: how many CLEAN videos the fail-closed text search withholds by mistake, on the public POCUS
clips (../shared/external/pocus/videos: already cropped, no patient text), and what the search costs.

Each video goes through the deidentify stage's own worker (stage.process_video: mask, encode, verify,
text search, OCR, publish-or-withhold) with the project's params, one process (workers 1); CPU seconds
are this process's plus tesseract's. Appends the fraction withheld (target <= 5 %) to BENCHMARKS.md.

    .venv/bin/python bench/bench_deid_pocus.py [--limit N] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    from curation import readers
    from curation.deid import stage
    from luskit.config import load_section

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "external" / "pocus" / "videos")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--step", type=int, default=1, help="every step-th video (a spread sample)")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args()
    cfg = load_section(REPO / "params.yaml", "deidentify", stage.DeidParams)
    files = sorted(p for p in args.videos.rglob("*") if p.is_file())
    files = files[:: args.step]
    files = files[: args.limit] if args.limit else files
    outcomes, reasons, frames = Counter(), Counter(), 0
    start_cpu, start = cpu_s(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="luskit-pocus-deid-") as tmp:
        for k, path in enumerate(files):
            try:
                info = readers.probe(path)
            except readers.UnreadableInput:
                outcomes["unreadable"] += 1
                continue
            job = stage.Job(video_id=f"V{k:03d}", patient_id="P", period="development", n_frames=info.n_frames,
                            fps=info.fps, height=info.height, width=info.width, region=None, model=None,
                            source=str(path), videos_dir=tmp, manual_regions={}, crf=cfg.crf, gop=cfg.gop,
                            rules=cfg.rules(), planted=None)
            r = stage.process_video(job)
            frames += info.n_frames
            if r["failure"] is not None:
                outcomes["failed"] += 1
                reasons[r["failure"]["reason"]] += 1
            elif r.get("withheld"):
                outcomes["withheld"] += 1
                reasons[r["withheld"]["reason"]] += 1
            else:
                outcomes["published"] += 1
            print(k, path.parent.name, outcomes.most_common(), flush=True)
    cpu, wall = cpu_s() - start_cpu, time.perf_counter() - start
    searched = outcomes["withheld"] + outcomes["published"]
    frac = outcomes["withheld"] / searched if searched else float("nan")
    result = {"videos": len(files), "frames": frames, **outcomes, "reasons": dict(reasons),
              "withheld_fraction": frac, "cpu_s": cpu, "wall_s": wall}
    print(json.dumps(result, indent=1))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    text = (f"## Fail-closed text search on clean POCUS clips ({when})\n\n- machine: {machine}\n"
            f"- command: `python bench/bench_deid_pocus.py {' '.join(sys.argv[1:])}`\n\n"
            "| videos | frames | published | withheld | failed | withheld by mistake | reasons | CPU s (per video) |\n"
            "|---|---|---|---|---|---|---|---|\n"
            f"| {len(files)} | {frames} | {outcomes['published']} | {outcomes['withheld']} | {outcomes['failed']} | "
            f"{frac:.1%} (target <= 5 %) | {dict(reasons)} | {cpu:.0f} ({cpu / max(len(files), 1):.2f}) |\n")
    with open(args.out, "a") as fh:
        fh.write("\n" + text)
    print(text)


if __name__ == "__main__":
    main()
