"""Benchmark: the cost of train.deterministic (torch deterministic kernels) on CPU, same tiny model, same run.

Trains LUV-Net (the demo's tiny encoder) on a synthetic project from tests/training/train/project.py, alternately
with deterministic off and on (--repeats each, interleaved so load drifts hit both alike), and reports the median
CPU seconds (this process, all its threads) and wall seconds per training, the ratio on/off, and whether:
  - two runs with the same setting gave bit-identical weights (both settings),
  - the on and off runs gave identical weights (CPU kernels are mostly deterministic already),
  - --threads 1 and 2 gave identical weights (thread count is a runtime key that reruns nothing).
Prints a markdown section for BENCHMARKS.md (machine, date, command, numbers).

    .venv/bin/python bench/bench_train_determinism.py [--repeats 3] [--epochs 3] [--videos 6] [--model luvnet]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.training.train.project import make_project, tiny_profile  # noqa: E402
from training.train import checkpoint, stage  # noqa: E402


def train_once(workdir: Path, model: str, epochs: int, videos: int, deterministic: bool, threads: int
               ) -> tuple[float, float, dict]:
    """(CPU s, wall s, state_dict) of one training in a fresh project under `workdir`."""
    root = make_project(Path(tempfile.mkdtemp(dir=workdir)), videos_per_role=videos,
                        profile=tiny_profile(epochs=epochs, frame_size=32, augment=True),
                        deterministic=deterministic, threads=threads, workers=0, preload="on")
    cpu, wall = time.process_time(), time.perf_counter()
    assert stage.main(root / "params.yaml", model=model, fold=0, root=root) == 0
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    ckpt = checkpoint.load_checkpoint(root / "artifacts" / "models" / model / "fold0" / "checkpoint.pt")
    return cpu, wall, ckpt["state_dict"]


def same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def max_diff(a: dict, b: dict) -> float:
    """Largest |a - b| over every floating-point weight (0.0 when identical)."""
    return max((float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point()),
               default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--videos", type=int, default=6, help="videos per role (5 roles, 2 clips per video)")
    ap.add_argument("--model", default="luvnet")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the timed runs")
    args = ap.parse_args()
    runs: dict[bool, list[tuple[float, float, dict]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for det in (False, True):
                runs[det].append(train_once(Path(tmp), args.model, args.epochs, args.videos, det, args.threads))
        other_threads = train_once(Path(tmp), args.model, args.epochs, args.videos, True, 2 if args.threads == 1 else 1)
    cpu = {d: statistics.median(r[0] for r in runs[d]) for d in runs}
    wall = {d: statistics.median(r[1] for r in runs[d]) for d in runs}
    repeatable = {d: all(same(runs[d][0][2], r[2]) for r in runs[d][1:]) for d in runs}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## Training determinism cost, CPU ({now})\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}")
    print(f"- command: `python bench/bench_train_determinism.py --repeats {args.repeats} --epochs {args.epochs} "
          f"--videos {args.videos} --model {args.model} --threads {args.threads}`")
    print(f"- {args.model}, {args.epochs} epochs, {args.videos * 5 * 2} clips (tiny project, 32 px), "
          f"{args.threads} torch thread(s), median of {args.repeats} interleaved runs each\n")
    print("| train.deterministic | CPU s / training | wall s / training | same weights over repeats |")
    print("|---|---|---|---|")
    for det in (False, True):
        print(f"| {str(det).lower()} | {cpu[det]:.2f} | {wall[det]:.2f} | {repeatable[det]} |")
    print(f"\n- cost (on / off): CPU x{cpu[True] / cpu[False]:.3f}, wall x{wall[True] / wall[False]:.3f}")
    print(f"- weights with deterministic on == off: {same(runs[True][0][2], runs[False][0][2])} (largest weight "
          f"difference {max_diff(runs[True][0][2], runs[False][0][2]):.3g})")
    print(f"- weights with {args.threads} thread(s) == with {2 if args.threads == 1 else 1}: "
          f"{same(runs[True][0][2], other_threads[2])} (largest weight difference "
          f"{max_diff(runs[True][0][2], other_threads[2]):.3g})")


if __name__ == "__main__":
    main()
