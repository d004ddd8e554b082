"""`luskit predict`: a trained model folder + a folder of new raw videos -> OUT/ (de-identified clips and
predictions), and with `--labels` the external validation (training/predict/validate.py) in the same run.

Steps: load the fold ensemble (ensemble.py), run ingest -> deidentify -> clips on the input (prepare.py), then
predict video by video on the CPU (infer.py) and write the tables, the Label Studio predictions table and the
report (outputs.py). Settings: the `predict:` section of params.yaml (batch size, threads, frames per report
row); pooling, ensemble threshold and bootstrap come from `evaluate:` so new videos are scored as the test sets.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from luskit import paths
from luskit.atomic import write_bytes_atomic, write_parquet_atomic
from luskit.config import load_section, require
from training.evaluation.stage import EvalParams
from training.predict import infer, outputs
from training.predict.ensemble import load_ensemble
from training.predict.prepare import prepare


@dataclass(frozen=True)
class PredictParams:
    """The `predict:` section of params.yaml."""

    batch_size: int = 8  # clips per forward pass (CPU)
    threads: int = 0  # torch CPU threads (0 = torch's default, one per core)
    attention_top: int = 5  # most attended frames listed per positive video and pattern

    def __post_init__(self) -> None:
        require(self.batch_size >= 1 and self.threads >= 0 and self.attention_top >= 1,
                "predict: batch_size >= 1, threads >= 0, attention_top >= 1")


@dataclass
class Predictions:
    clips: pd.DataFrame  # ensemble rows per clip
    folds: pd.DataFrame  # fold-model rows per clip
    videos: pd.DataFrame  # pooled ensemble rows per video
    folder: Path
    clips_per_s: float


def run_models(ensemble, prepared, params: PredictParams, ev: EvalParams, progress: bool):
    """(fold rows, ensemble clip rows, video rows, seconds) streaming video by video."""
    started = time.perf_counter()
    parts = list(infer.iter_videos(ensemble, prepared.manifest, prepared.clips_dir, params.batch_size, progress))
    seconds = time.perf_counter() - started
    if not parts:
        return None, None, None, seconds
    folds = pd.concat(parts, ignore_index=True)
    clips = infer.positives(infer.with_windows(infer.ensemble_rows(folds, ev.ensemble_threshold), prepared.manifest))
    videos = infer.video_rows(clips, ev.video_pooling)
    return folds, clips, videos, seconds


def predict(models_dir: Path, input_dir: Path, out: Path, params_path: Path = paths.PARAMS,
            demo_key: bool | None = None, progress: bool = True) -> Predictions | None:
    """Everything up to the written predictions (module doc); None when no video could be predicted."""
    params = load_section(Path(params_path), "predict", PredictParams)
    ev = load_section(Path(params_path), "evaluate", EvalParams)
    if params.threads:
        torch.set_num_threads(params.threads)
    ensemble = load_ensemble(Path(models_dir))
    # data/reviews of the folder predict runs in (as every stage): a person's releases of withheld videos
    prepared = prepare(Path(input_dir), Path(out), Path(params_path), ensemble.prep, demo_key, paths.REVIEWS)
    folds, clips, videos, seconds = run_models(ensemble, prepared, params, ev, progress)
    if clips is None:
        write_bytes_atomic(Path(out) / outputs.FOLDER / outputs.REPORT,
                           outputs.nothing_report(prepared.not_predicted).encode())
        print(f"predict: no video to predict ({len(prepared.not_predicted)} input(s) left out)", file=sys.stderr)
        return None
    tops = outputs.top_attention(clips, videos, params.attention_top)
    folder = Path(out) / outputs.FOLDER
    drawn = outputs.write_figures(folder / outputs.FIGURES, clips, tops, prepared.clips_dir, ensemble.prep.length,
                                  ev.attention_grid_top)
    rate = len(clips) / seconds if seconds > 0 else float("nan")
    meta = {"model": ensemble.name, "n_models": len(ensemble.folds), "version": ensemble.version,
            "prep": ", ".join(f"{k} {v}" for k, v in vars(ensemble.prep).items()), "n_clips": len(clips),
            "seconds": seconds, "clips_per_s": rate, "pooling": ev.video_pooling}
    report = outputs.report_markdown(videos, tops, prepared.not_predicted, meta, drawn)
    outputs.write_all(out, clips, folds, videos, tops, ensemble.version, report)
    write_parquet_atomic(folder / outputs.VIDEO_FOLDS, infer.video_rows(folds, ev.video_pooling))
    meta = {k: meta[k] for k in ("model", "n_models", "version", "n_clips", "seconds", "clips_per_s", "pooling")}
    write_bytes_atomic(folder / outputs.META, (json.dumps({**meta, "preprocessing": vars(ensemble.prep)},
                                                          indent=1) + "\n").encode())
    print(f"predict: {len(videos)} videos, {len(clips)} clips in {seconds:.1f} s ({rate:.2f} clips/s on CPU, "
          f"{len(ensemble.folds)} fold models); {len(prepared.not_predicted)} input(s) not predicted -> {folder}/")
    return Predictions(clips, folds, videos, folder, rate)
