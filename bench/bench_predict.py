"""Benchmark: `luskit predict` throughput on the CPU (clips/s of the fold ensemble, and the whole run per video).

A tiny project (tests/training/train/project.py: 16x16 noise videos) is trained for one epoch per fold (3 LUV-Net
fold models) under two model configurations, then `predict` runs on the N shortest POCUS videos
(../shared/external/pocus, linked as raw input patient/20200101/file, public demo key):
  tiny   the test suite's LUV-Net (test_byobnet encoder, 16 px frames, 16-frame clips);
  pocus  the POCUS profile's LUV-Net (luskit/pocus_params.yaml: 64 px frames, 30-frame clips).
Weights are one epoch on noise: the numbers are speed, not accuracy. Reported: seconds of ingest + deidentify +
clips, seconds and clips/s of the models (3 fold models per clip, attention on), videos and clips.

    .venv/bin/python bench/bench_predict.py [--videos 10] [--append]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.training.train.project import make_project, tiny_profile  # noqa: E402
from training.predict.stage import predict  # noqa: E402
from training.train import stage  # noqa: E402

POCUS = REPO.parent / "shared" / "external" / "pocus"
CONFIGS = {
    "tiny": ({}, {"length": 16}),
    "pocus": ({"frame_size": 64, "models": {"luvnet": {"encoder": "test_byobnet", "in_chans": 1, "heads": 4,
                                                       "kernel": 5, "attn_hidden": 128, "head_hidden": 64,
                                                       "dropout": 0.1}}}, {"length": 30}),
}


def shortest(n: int) -> list[dict]:
    with open(POCUS / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["file"].startswith("videos/convex/")]
    return sorted(rows, key=lambda r: (int(r["frames"]), r["file"]))[:n]


def raw_input(folder: Path, rows: list[dict]) -> Path:
    for r in rows:
        target = folder / r["patient_group"] / "20200101"
        target.mkdir(parents=True, exist_ok=True)
        (target / Path(r["file"]).name).symlink_to(POCUS / r["file"])
    return folder


def trained(root: Path, profile: dict, clips: dict) -> Path:
    make_project(root, profile=tiny_profile(**profile))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"] = yaml.safe_load((root / "params.yaml").read_text())["train"]
    params["clips"].update(clips)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for fold in (0, 1, 2):
        assert stage.main(root / "params.yaml", model="luvnet", fold=fold, root=root) == 0
    return root


def measure(name: str, work: Path, raw: Path) -> dict:
    profile, clips = CONFIGS[name]
    root = trained(work / name, profile, clips)
    started = time.perf_counter()
    result = predict(root / "artifacts" / "models" / "luvnet", raw, work / f"out-{name}", root / "params.yaml",
                     demo_key=True, progress=False)
    total = time.perf_counter() - started
    model_s = len(result.clips) / result.clips_per_s
    return {"config": name, "videos": len(result.videos), "clips": len(result.clips), "total_s": total,
            "prepare_s": total - model_s, "model_s": model_s, "clips_per_s": result.clips_per_s}


def section(rows: list[dict], n: int, seconds: float) -> str:
    import torch

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## Predict throughput on the CPU: tiny fold ensembles on POCUS clips ({now})", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads), Python {platform.python_version()}",
             f"- command: `python bench/bench_predict.py --videos {n}` ({seconds:.0f} s in all)",
             f"- input: the {n} shortest convex POCUS videos as raw input; 3 LUV-Net fold models trained one epoch "
             "on the tiny noise project (speed only, not accuracy); attention on; batch predict.batch_size", "",
             "| model config | videos | clips | ingest + deidentify + clips (s) | models (s) "
             "| clips/s (3 fold models) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['videos']} | {r['clips']} | {r['prepare_s']:.1f} | {r['model_s']:.2f} | "
                     f"{r['clips_per_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--append", action="store_true", help="append the section to BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not POCUS.is_dir():
        print(f"{POCUS} is absent: nothing to measure", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw = raw_input(work / "raw", shortest(args.videos))
        rows = [measure(name, work, raw) for name in CONFIGS]
    text = section(rows, args.videos, time.perf_counter() - started)
    print(text)
    if args.append:
        with open(REPO / "BENCHMARKS.md", "a") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
