"""Label-error detection on real retraining: flip 5% of the consensus labels, retrain, rank, measure recall.

The experiment the evaluation issue asks for, on a built project (default: this checkout after `make demo`):
1. copy its clip manifest, labels and splits into a work folder (the clip cache is linked, never copied);
2. flip a random `--fraction` of the labelled (clip, pattern) pairs of the fold clips in consensus.parquet;
3. train the model on every fold there (`luskit train`, the project's params and profile), so the flipped
   labels also corrupt training, as real label noise would;
4. rank the out-of-fold predictions with training.evaluation.label_errors (per pattern) and report which
   share of the flipped pairs lands in the top 10% of its pattern's ranking (target >= 0.8).

Usage: python bench/bench_label_errors.py [--project .] [--model luvnet] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from luskit import paths  # noqa: E402
from luskit.schema import PATTERN_SLUGS, PATTERNS  # noqa: E402
from training.evaluation.label_errors import rank_label_errors  # noqa: E402

COPIED = (paths.CLIP_MANIFEST, paths.CONSENSUS, paths.SPLITS_TABLE)


def make_work(project: Path, work: Path) -> None:
    """The inputs `luskit train` reads, in a fresh folder; the (large) clip cache is a symlink."""
    for rel in COPIED:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project / rel, work / rel)
    os.symlink((project / paths.CLIPS / "cache").resolve(), work / paths.CLIPS / "cache")
    shutil.copy2(project / paths.PARAMS, work / paths.PARAMS)


def flip_labels(consensus: pd.DataFrame, splits: pd.DataFrame, fraction: float,
                rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flip `fraction` of the labelled fold-clip pairs. Returns (new consensus, flipped pairs clip_id/pattern)."""
    fold_clips = set(splits.loc[splits["role"].str.startswith("fold"), "clip_id"])
    eligible = consensus.index[consensus["clip_id"].isin(fold_clips) & consensus["label"].notna()]
    chosen = rng.choice(eligible, size=max(1, round(fraction * len(eligible))), replace=False)
    out = consensus.copy()
    out.loc[chosen, "label"] = (1 - out.loc[chosen, "label"].astype(int)).astype("Int8")
    return out, consensus.loc[chosen, ["clip_id", "pattern"]]


def recall_in_top(oof: pd.DataFrame, flipped: pd.DataFrame, top: float) -> dict[str, float]:
    """Share of flipped pairs ranked in the top `top` of their pattern's label-error ranking, per pattern + all."""
    hits, counts = {}, {}
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        rows = oof[oof[f"label_{slug}"].notna()]
        label = rows[f"label_{slug}"].astype(int).to_numpy()
        _, _, rank = rank_label_errors(rows[f"prob_{slug}"].to_numpy(float), label)
        top_ids = set(rows["clip_id"].to_numpy()[rank <= int(np.ceil(top * len(rows)))])
        wanted = set(flipped.loc[flipped["pattern"] == pattern, "clip_id"])
        hits[pattern], counts[pattern] = len(wanted & top_ids), len(wanted)
    out = {p: hits[p] / counts[p] if counts[p] else float("nan") for p in PATTERNS}
    out["all"] = sum(hits.values()) / max(1, sum(counts.values()))
    out["n_flipped"] = sum(counts.values())
    return out


def train_folds(work: Path, model: str, folds: list[int]) -> float:
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for fold in folds:
        subprocess.run([sys.executable, "-m", "luskit.cli", "train", "--model", model, "--fold", str(fold), "--quiet"],
                       cwd=work, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--model", default="luvnet")
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--top", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", type=Path, help="append the markdown section to this file")
    args = ap.parse_args()
    project = args.project.resolve()
    with tempfile.TemporaryDirectory(prefix="luskit-flip-") as tmp:
        work = Path(tmp)
        make_work(project, work)
        consensus = pd.read_parquet(work / paths.CONSENSUS)
        flipped_consensus, flipped = flip_labels(consensus, pd.read_parquet(work / paths.SPLITS_TABLE),
                                                 args.fraction, np.random.default_rng(args.seed))
        flipped_consensus.to_parquet(work / paths.CONSENSUS, index=False)
        seconds = train_folds(work, args.model, args.folds)
        preds = pd.concat(pd.read_parquet(work / paths.MODELS / args.model / f"fold{k}" / "predictions.parquet")
                          for k in args.folds)
        result = recall_in_top(preds[preds["set"] == "validation"], flipped, args.top)
    section = report(args, result, seconds)
    print(section)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + section)


def report(args: argparse.Namespace, r: dict[str, float], seconds: float) -> str:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    per = " | ".join(f"{r[p]:.2f}" for p in PATTERNS)
    return "\n".join([
        f"## Label-error detection after retraining on flipped labels ({when})", "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- command: `python bench/bench_label_errors.py --model {args.model} --fraction {args.fraction} "
        f"--seed {args.seed}` (profile from params.yaml; {len(args.folds)} folds trained in {seconds:.0f} s)",
        f"- {r['n_flipped']} of the labelled fold-clip pairs flipped at random ({args.fraction:.0%}); "
        f"recall = flipped pairs in the top {args.top:.0%} of their pattern's out-of-fold ranking (target >= 0.8)",
        "", "| " + " | ".join(PATTERNS) + " | all |", "|" + "---|" * (len(PATTERNS) + 1),
        f"| {per} | **{r['all']:.2f}** |", ""])


if __name__ == "__main__":
    main()
