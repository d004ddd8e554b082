"""Reading artifacts for the pages: st.cache_data keyed on (path, mtime, size), None for what is missing.

A table is re-read when its file changes (a new `dvc repro`), without restarting the app. Every path
is built by settings.Project.artifact, which refuses anything resolving outside artifacts/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from labeling.app import model_metrics, queue_logic
from labeling.app.settings import Project, checked_id
from luskit import paths

A = paths.ARTIFACTS
MANIFEST = paths.CLIP_MANIFEST.relative_to(A)
CONSENSUS = paths.CONSENSUS.relative_to(A)
CLIP_LABELS = paths.CLIP_LABELS.relative_to(A)
DISAGREEMENTS = paths.DISAGREEMENTS.relative_to(A)
AGREEMENT = paths.AGREEMENT.relative_to(A)
QUALITY = paths.LABELS.relative_to(A) / "quality.parquet"
SPLITS = paths.SPLITS_TABLE.relative_to(A)
QUARANTINE = paths.INDEX.relative_to(A) / "quarantine.parquet"
DEID_REPORT = paths.DEID_REPORT.relative_to(A)
DEID_WITHHELD = paths.DEID_WITHHELD.relative_to(A)
QUEUE = paths.REVIEW.relative_to(A) / "queue.parquet"
EVAL = paths.EVAL.relative_to(A)
MODELS = paths.MODELS.relative_to(A)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st_ = path.stat()
    except OSError:
        return None
    return st_.st_mtime_ns, st_.st_size


@st.cache_data(show_spinner=False, max_entries=128)
def _parquet(path: str, stamp: tuple[int, int]) -> pd.DataFrame:
    return pd.read_parquet(path)


@st.cache_data(show_spinner=False, max_entries=64)
def _json(path: str, stamp: tuple[int, int]) -> dict:
    return json.loads(Path(path).read_text())


def table(project: Project, relative: Path) -> pd.DataFrame | None:
    """artifacts/<relative> as a DataFrame, or None when the file is not there (yet)."""
    path = project.artifact(relative)
    stamp = _stamp(path)
    return None if stamp is None else _parquet(str(path), stamp)


def json_file(project: Project, relative: Path) -> dict | None:
    path = project.artifact(relative)
    stamp = _stamp(path)
    return None if stamp is None else _json(str(path), stamp)


def withheld_thumbnail(project: Project, video_id: str) -> Path | None:
    """artifacts/deid/withheld/<video_id>.png (pixelated by the stage), or None when absent or the id is not
    one (a report naming anything else is never turned into a path)."""
    try:
        path = project.artifact(DEID_WITHHELD / f"{checked_id(video_id)}.png")
    except ValueError:
        return None
    return path if path.is_file() else None


@st.cache_data(show_spinner=False, max_entries=8)
def _releases(path: str, stamp: tuple[int, int]) -> dict[str, set[str]]:
    from curation.deid.release import load_releases

    return load_releases(Path(path))


def deid_releases(project: Project) -> dict[str, set[str]]:
    """data/reviews/deid/releases.jsonl as video_id -> released output sha256s ({} when there is none).
    Raises curation.deid.release.ReleaseError when the file is malformed."""
    path = project.root / paths.DEID_RELEASES
    stamp = _stamp(path)
    return {} if stamp is None else _releases(str(path), stamp)


def review_queue(project: Project) -> tuple[pd.DataFrame | None, str]:
    """(queue rows in queue_logic.QUEUE_COLUMNS, source): 'queue' (review-queue stage), 'disagreements'
    (labels stage only: no model yet) or 'none'."""
    queue = table(project, QUEUE)
    if queue is not None:
        return queue.sort_values("rank", kind="stable").reset_index(drop=True), "queue"
    disagreements = table(project, DISAGREEMENTS)
    if disagreements is None:
        return None, "none"
    return queue_logic.fallback_queue(disagreements, table(project, SPLITS)), "disagreements"


def eval_models(project: Project) -> list[str]:
    """Models with artifacts/eval/<model>/predictions.parquet, primary model first."""
    base = project.artifact(EVAL)
    found = sorted(p.parent.name for p in base.glob("*/predictions.parquet")) if base.is_dir() else []
    return sorted(found, key=lambda m: m != project.primary_model)


def predictions(project: Project, model: str) -> pd.DataFrame | None:
    """The evaluation's predictions of `model`; before `luskit evaluate`, the training folds' own tables."""
    model = checked_id(model)
    evaluated = table(project, EVAL / model / "predictions.parquet")
    if evaluated is not None:
        return evaluated
    folds = project.artifact(MODELS / model)
    parts = [table(project, MODELS / model / p.parent.name / "predictions.parquet")
             for p in sorted(folds.glob("fold*/predictions.parquet"))] if folds.is_dir() else []
    parts = [p for p in parts if p is not None]
    return pd.concat(parts, ignore_index=True) if parts else None


def clip_row(project: Project, clip_id: str) -> pd.Series | None:
    """The manifest row of `clip_id` (the only way a browser-supplied id becomes a clip), or None."""
    manifest = table(project, MANIFEST)
    if manifest is None or not isinstance(clip_id, str):
        return None
    rows = manifest[manifest["clip_id"] == clip_id]
    return None if rows.empty else rows.iloc[0]


@st.cache_resource(show_spinner=False, max_entries=16)
def _cache_array(path: str, stamp: tuple[int, int]) -> np.ndarray:
    return np.load(path, mmap_mode="r")  # (n_frames, size, size) uint8; pages read a few frames at a time


def frames(project: Project, clip: pd.Series, indices: list[int]) -> np.ndarray | None:
    """(len(indices), size, size) uint8 frames (absolute 0-based indices) from the clip cache, or None."""
    path = project.artifact(paths.CLIPS.relative_to(A) / str(clip["cache_file"]))
    stamp = _stamp(path)
    if stamp is None:
        return None
    cache = _cache_array(str(path), stamp)
    last = cache.shape[0] - 1
    return np.asarray(cache[[min(max(int(i), 0), last) for i in indices]])


@st.cache_data(show_spinner=False, max_entries=64)
def _curves(path: str, stamp: tuple[int, int], model: str, set_name: str) -> dict[str, pd.DataFrame]:
    return model_metrics.curves(pd.read_parquet(path), model, set_name)


def curves(project: Project, model: str, set_name: str) -> dict[str, pd.DataFrame] | None:
    """ROC/PR/reliability tables of one evaluated model and set (model_metrics.curves), cached per file."""
    path = project.artifact(EVAL / checked_id(model) / "predictions.parquet")
    stamp = _stamp(path)
    return None if stamp is None else _curves(str(path), stamp, model, set_name)


def eval_files(project: Project, pattern: str) -> list[Path]:
    """Files under artifacts/eval matching a glob (figures, plot tables), each checked to stay inside."""
    base = project.artifact(EVAL)
    if not base.is_dir():
        return []
    out = []
    for path in sorted(base.glob(pattern)):
        try:
            out.append(project.artifact(path.relative_to(project.artifacts)))
        except ValueError:
            continue  # a link pointing out of artifacts/: never served
    return out


@st.cache_data(show_spinner=False, max_entries=16)
def _summaries(files: tuple[tuple[str, str, tuple[int, int]], ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    preds = {model: pd.read_parquet(path) for model, path, _ in files}
    return model_metrics.auroc_table(preds), model_metrics.fold_spread(preds)


def model_summaries(project: Project, models: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(model_metrics.auroc_table, model_metrics.fold_spread) over the evaluated models, cached per file set."""
    files = []
    for model in models:
        path = project.artifact(EVAL / checked_id(model) / "predictions.parquet")
        stamp = _stamp(path)
        if stamp is not None:
            files.append((model, str(path), stamp))
    return _summaries(tuple(files))


# The evaluation stage's curve files: plots/<kind>/<set>/<model>/<pattern slug>.csv; calibration columns
# renamed to model_metrics.calibration_bins' names so both sources draw alike.
_PLOT_RENAME = {"confidence": "mean_prob", "observed": "frac_positive", "count": "n"}


def stage_curves(project: Project, model: str, set_name: str, kind: str) -> pd.DataFrame | None:
    """The curve points the evaluation stage wrote for one model, set and kind (all patterns), or None."""
    from luskit.schema import PATTERN_SLUGS, PATTERNS

    parts = []
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        path = project.artifact(EVAL / "plots" / checked_id(kind) / checked_id(set_name) / checked_id(model)
                                / f"{slug}.csv")
        stamp = _stamp(path)
        if stamp is not None:
            parts.append(_csv(str(path), stamp).rename(columns=_PLOT_RENAME).assign(model=model, pattern=pattern))
    return pd.concat(parts, ignore_index=True) if parts else None


@st.cache_data(show_spinner=False, max_entries=256)
def _csv(path: str, stamp: tuple[int, int]) -> pd.DataFrame:
    return pd.read_csv(path)
