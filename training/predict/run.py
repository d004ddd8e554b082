"""The CLI edge of `luskit predict` and `luskit validate`: params, errors as one line (never a traceback or a
raw path from the input folder), exit codes (0 done, 1 nothing could be predicted, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from luskit import paths
from luskit.config import ConfigError, load_section


def _validate(out: Path, labels: Path, level: str, recalibrate: bool, params: Path,
              input_dir: Path | None = None) -> dict:
    from labeling.labels_stage import LabelsParams
    from training.evaluation.stage import EvalParams
    from training.predict import outputs
    from training.predict.labels import load_labels
    from training.predict.validate import validate

    ev = load_section(Path(params), "evaluate", EvalParams)
    cfg = load_section(Path(params), "labels", LabelsParams)
    folder = Path(out) / outputs.FOLDER
    if not (folder / outputs.CLIPS).exists():
        raise FileNotFoundError(f"{folder / outputs.CLIPS} not found: run `luskit predict --out {out}` first")
    manifest = pd.read_parquet(Path(out) / paths.CLIP_MANIFEST.relative_to(paths.ARTIFACTS))
    videos = pd.read_parquet(Path(out) / paths.DEID_VIDEOS.relative_to(paths.ARTIFACTS))
    index = pd.read_parquet(Path(out) / paths.INDEX_VIDEOS.relative_to(paths.ARTIFACTS))
    ext = load_labels(Path(labels), level, manifest, videos, cfg, cfg.exclude_rule, input_dir, index)
    version = json.loads((folder / outputs.META).read_text())["version"]
    body = validate(Path(out), ext, ev.boot, ev.video_pooling, ev.ece_bins, version, recalibrate)
    video = body["results"]["video"]["macro"]
    print(f"validate: {ext.level}-level labels, video-level macro AUROC {video['auroc']} -> "
          f"{Path(out) / 'validation'}/report.md")
    return body


def predict_command(models: Path, input_dir: Path, out: Path, params: Path, demo_key: bool | None, progress: bool,
                    labels: Path | None, level: str, recalibrate: bool, fail) -> int:
    from training.predict.ensemble import EnsembleError
    from training.predict.labels import LabelError
    from training.predict.prepare import PrepareError
    from training.predict.stage import predict

    try:
        done = predict(models, input_dir, out, params, demo_key, progress)
        if done is None:
            return 1
        if labels is not None:
            _validate(out, labels, level, recalibrate, params, input_dir)
    except (ConfigError, EnsembleError, PrepareError, LabelError, FileNotFoundError, ValueError) as err:
        fail(str(err))
    return 0


def validate_command(out: Path, labels: Path, level: str, recalibrate: bool, params: Path, fail,
                     input_dir: Path | None = None) -> int:
    from training.predict.labels import LabelError

    try:
        _validate(out, labels, level, recalibrate, params, input_dir)
    except (ConfigError, LabelError, FileNotFoundError, ValueError) as err:
        fail(str(err))
    return 0
