"""Benchmark: the demo's temporal AUROC spread over training seeds (the yardstick for cross-machine differences).

Training is deterministic on one machine (train.deterministic) but floating point differs across CPUs and GPUs,
so another machine's models differ from the committed ones the way another seed's do, at most. This measures how
far that goes: for each seed, `dvc exp run --temp -S train.seed=S` (all train@<model>-<fold> stages, evaluate and
what follows, in a temporary copy: the project's workspace is left alone), then reads each model's temporally
separated set, fold-ensemble clip-level macro AUROC from artifacts/eval/metrics.json of every experiment.

Needs a git + DVC project where the demo has run up to split (e.g. a clone after `make demo`, committed); about
6 CPU minutes per seed on 2 idle cores (15 trainings), far more on a shared machine. Prints a markdown section.

    .venv/bin/python bench/bench_seed_spread.py --project ../luskit-demo [--seeds 234 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

METRICS = "artifacts/eval/metrics.json"


def dvc(project: Path, *args: str) -> str:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run([str(bin_dir / "dvc"), *args], cwd=project, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return run.stdout


def experiment_metrics(shown: list, names: set[str]) -> dict[str, dict]:
    """{experiment name: contents of artifacts/eval/metrics.json} from `dvc exp show --json`."""
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                if rev.get("name") in names:
                    found[rev["name"]] = rev["data"]["metrics"][METRICS]["data"]
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[234, 1, 2])
    ap.add_argument("--set", default="temporal")
    args = ap.parse_args()
    names = {seed: f"seed-{seed}" for seed in args.seeds}
    for seed, name in names.items():
        print(f"training with train.seed={seed} ...", file=sys.stderr, flush=True)
        dvc(args.project, "exp", "run", "--temp", "--name", name, "-S", f"train.seed={seed}")
    metrics = experiment_metrics(json.loads(dvc(args.project, "exp", "show", "--json")), set(names.values()))
    missing = sorted(set(names.values()) - set(metrics))
    if missing:
        raise SystemExit(f"no metrics for experiments {missing} in `dvc exp show`")
    models = list(next(iter(metrics.values())))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## Demo {args.set} AUROC over training seeds ({now})\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    print(f"- command: `python bench/bench_seed_spread.py --project PROJECT --seeds {' '.join(map(str, args.seeds))}`")
    print(f"- {args.set} set, fold-ensemble clip-level macro AUROC (artifacts/eval/metrics.json)\n")
    print("| model | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | SD | max - min |")
    print("|---|" + "---|" * (len(args.seeds) + 3))
    for model in models:
        values = [metrics[names[s]][model][args.set]["macro_auroc"] for s in args.seeds]
        print(f"| {model} | " + " | ".join(f"{v:.3f}" for v in values) +
              f" | {statistics.mean(values):.3f} | {statistics.stdev(values):.3f} | {max(values) - min(values):.3f} |")


if __name__ == "__main__":
    main()
