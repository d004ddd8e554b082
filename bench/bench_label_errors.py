"""Label-error detection on real retraining: flip 5% of the consensus labels, retrain, rank, measure recall.

The experiment the evaluation issue asks for, on a built project (default: this checkout after `make demo`):
1. copy its clip manifest, labels and splits into a work folder (the clip cache is linked, never copied);
2. flip a random `--fraction` of the labelled (clip, pattern) pairs of the fold clips in consensus.parquet;
3. train the model on every fold there (`luskit train`, the project's params and profile), so the flipped
   labels also corrupt training, as real label noise would;
4. rank the out-of-fold predictions with training.evaluation.label_errors (per pattern) and report which
   share of the flipped pairs lands in the top 10% of its pattern's ranking (target >= 0.8);
5. repeat 1-4 for every seed in --seeds (3 or more: a new random flip and a retraining each) and report the
   mean ± SD over seeds per pattern.

Each ranked list uses ONE source of probabilities: the fold models' out-of-fold predictions (every fold clip
scored by the one model that did not train on it). Ensemble probabilities of test clips are never mixed in
(they are smoother, so a mixed list would rank by source as much as by label), and only fold-clip labels are
flipped.

Usage: python bench/bench_label_errors.py [--project .] [--model luvnet] [--seeds 5 6 7] [--out BENCHMARKS.md]
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
    """Share of flipped pairs ranked in the top `top` of their pattern's label-error ranking, per pattern + all.

    oof: out-of-fold rows only (set == validation, one row per clip): one source of probabilities per list."""
    sets = set(oof["set"]) if "set" in oof else {"validation"}
    if sets != {"validation"} or oof["clip_id"].duplicated().any():
        raise ValueError(f"recall_in_top ranks out-of-fold rows only, one per clip (got sets {sorted(sets)})")
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


def one_seed(project: Path, model: str, folds: list[int], fraction: float, top: float, seed: int
             ) -> tuple[dict[str, float], float]:
    """Flip, retrain every fold, rank the out-of-fold rows: (recall_in_top result, training seconds)."""
    with tempfile.TemporaryDirectory(prefix="luskit-flip-") as tmp:
        work = Path(tmp)
        make_work(project, work)
        consensus = pd.read_parquet(work / paths.CONSENSUS)
        flipped_consensus, flipped = flip_labels(consensus, pd.read_parquet(work / paths.SPLITS_TABLE),
                                                 fraction, np.random.default_rng(seed))
        flipped_consensus.to_parquet(work / paths.CONSENSUS, index=False)
        seconds = train_folds(work, model, folds)
        preds = pd.concat(pd.read_parquet(work / paths.MODELS / model / f"fold{k}" / "predictions.parquet")
                          for k in folds)
        return recall_in_top(preds[preds["set"] == "validation"], flipped, top), seconds


def summarise(results: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Per pattern and "all": (mean, SD with ddof=1) over seeds; NaN entries (no flip of a pattern) are skipped."""
    out = {}
    for key in (*PATTERNS, "all"):
        values = np.array([r[key] for r in results], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[key] = (float(values.mean()) if values.size else float("nan"),
                    float(values.std(ddof=1)) if values.size > 1 else float("nan"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--model", default="luvnet")
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--top", type=float, default=0.10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7], help="one flip + retraining per seed (3+)")
    ap.add_argument("--out", type=Path, help="append the markdown section to this file")
    args = ap.parse_args()
    if len(args.seeds) < 3:
        ap.error("--seeds: give 3 or more (mean ± SD over independent flips and retrainings)")
    project = args.project.resolve()
    results, seconds = [], 0.0
    for seed in args.seeds:
        result, took = one_seed(project, args.model, args.folds, args.fraction, args.top, seed)
        results.append(result)
        seconds += took
        print(f"seed {seed}: " + ", ".join(f"{k} {result[k]:.2f}" for k in (*PATTERNS, "all")), flush=True)
    section = report(args, results, seconds)
    print(section)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + section)


def report(args: argparse.Namespace, results: list[dict[str, float]], seconds: float) -> str:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary = summarise(results)
    cell = {k: f"{m:.2f} ± {sd:.2f}" for k, (m, sd) in summary.items()}
    per_seed = [f"| {seed} | " + " | ".join(f"{r[p]:.2f}" for p in (*PATTERNS, "all")) + f" | {r['n_flipped']} |"
                for seed, r in zip(args.seeds, results)]
    return "\n".join([
        f"## Label-error detection after retraining on flipped labels ({when})", "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- command: `python bench/bench_label_errors.py --model {args.model} --fraction {args.fraction} "
        f"--seeds {' '.join(map(str, args.seeds))}` (profile from params.yaml; {len(args.seeds)} x "
        f"{len(args.folds)} folds trained in {seconds:.0f} s)",
        f"- per seed, {args.fraction:.0%} of the labelled fold-clip pairs flipped at random and every fold retrained; "
        f"recall = flipped pairs in the top {args.top:.0%} of their pattern's out-of-fold ranking (one source of "
        "probabilities per list; target >= 0.8); mean ± SD over seeds",
        "", "| " + " | ".join(PATTERNS) + " | all |", "|" + "---|" * (len(PATTERNS) + 1),
        "| " + " | ".join(cell[p] for p in PATTERNS) + f" | **{cell['all']}** |", "",
        "| seed | " + " | ".join(PATTERNS) + " | all | flipped |", "|" + "---|" * (len(PATTERNS) + 3),
        *per_seed, ""])


if __name__ == "__main__":
    main()
