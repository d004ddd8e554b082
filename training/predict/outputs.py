"""What `luskit predict` writes under OUT/predictions/ (atomic writes; pseudonymous ids only):

- clips.parquet: the fold ensemble per clip (fold-prediction contract, set = role = "external", fold = -1,
  n_models, start/end_frame_1based, positive_<slug> = prob >= the development threshold);
- clips_folds.parquet: every fold model's rows; videos_folds.parquet: the same pooled per video and fold model
  (what `luskit label select --strategy disagreement` reads);
- videos.parquet: per video the pooled ensemble (max or mean of its clips, evaluate.video_pooling), its
  threshold and positive_<slug>;
- ls_predictions.parquet: the table `luskit label push --predictions` reads (video_id, pattern, start, end,
  score, model_version): one row per positive clip and pattern, its frames, the ensemble probability;
- report.md + figures/<video_id>.png: per positive video and pattern the clip that scored highest and its
  most important frames (the model's attention), numbered in the video; the grid of that clip's top frames;
  top_frames.csv: the same frames as a table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from luskit.atomic import write_bytes_atomic, write_parquet_atomic
from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.evaluation import attention, figures
from training.evaluation.tables import column

FOLDER = "predictions"
CLIPS, FOLDS, VIDEOS, LS, REPORT, FIGURES, TOPS = ("clips.parquet", "clips_folds.parquet", "videos.parquet",
                                                   "ls_predictions.parquet", "report.md", "figures", "top_frames.csv")
VIDEO_FOLDS = "videos_folds.parquet"  # per fold model, pooled per video (label select: disagreement)
META = "meta.json"  # model, version, preprocessing, clips, seconds, clips/s
LS_COLUMNS = ("video_id", "pattern", "start", "end", "score", "model_version")


def ls_predictions(clips: pd.DataFrame, version: str) -> pd.DataFrame:
    """One row per (positive clip, pattern): its real frames (1-based inclusive) and ensemble probability."""
    rows = []
    for pattern, s in zip(PATTERNS, PATTERN_SLUGS):
        hit = clips[clips[f"positive_{s}"]]
        rows.append(pd.DataFrame({"video_id": hit["video_id"].astype(str), "pattern": pattern,
                                  "start": hit["start_frame_1based"].astype("int64"),
                                  "end": hit["end_frame_1based"].astype("int64"),
                                  "score": hit[column("prob", s)].astype(float), "model_version": version}))
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["video_id", "pattern", "start"], kind="stable").reset_index(drop=True)[list(LS_COLUMNS)]


def top_attention(clips: pd.DataFrame, videos: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per positive (video, pattern): the highest-probability clip and its k most attended real frames as
    1-based frame numbers in the video (`frames`, "; "-joined) with their weights."""
    rows = []
    for s, pattern in zip(PATTERN_SLUGS, PATTERNS):
        for video_id in videos.loc[videos[f"positive_{s}"], "video_id"]:
            own = clips[clips["video_id"] == video_id]
            best = own.sort_values([column("prob", s), "clip_id"], ascending=[False, True]).iloc[0]
            weights = best[column("attention", s)]
            if weights is None or (isinstance(weights, float) and np.isnan(weights)):
                frames, values = [], []
            else:
                idx = attention.top_frames(np.asarray(weights), k, int(best["n_real_frames"]))
                frames = [int(best["start_frame_1based"]) + int(i) for i in idx]
                values = [float(weights[i]) for i in idx]
            rows.append({"video_id": video_id, "pattern": pattern, "clip_id": best["clip_id"],
                         "prob": float(best[column("prob", s)]), "threshold": float(best[column("thr", s)]),
                         "frames": "; ".join(map(str, frames)),
                         "weights": "; ".join(f"{w:.3f}" for w in values)})
    return pd.DataFrame(rows, columns=["video_id", "pattern", "clip_id", "prob", "threshold", "frames", "weights"])


def write_figures(folder: Path, clips: pd.DataFrame, tops: pd.DataFrame, clips_dir: Path, length: int,
                  grid_top: int) -> list[str]:
    """figures/<video_id>.png: the frame grid (training/evaluation/attention.frames_figure) of the clip
    that carries the video's highest positive probability; returns the video ids drawn."""
    from curation.clip_cache import load_clip

    drawn = []
    folder.mkdir(parents=True, exist_ok=True)
    by_clip = clips.set_index("clip_id")
    for video_id, group in tops.groupby("video_id", sort=True):
        clip_id = group.sort_values("prob", ascending=False)["clip_id"].iloc[0]
        row = by_clip.loc[clip_id].copy()
        if row[column("attention", PATTERN_SLUGS[0])] is None:
            continue  # a model without attention: nothing to draw
        row["clip_id"] = clip_id
        cache = Path(clips_dir) / str(row["cache_file"])
        frames = load_clip(cache, int(row["start"]), int(row["start"]) + int(row["n_real_frames"]), length)
        figures.save_png(attention.frames_figure(row, frames, grid_top), folder / f"{video_id}.png")
        drawn.append(video_id)
    return drawn


def _fmt(value: float) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.2f}"


def report_markdown(videos: pd.DataFrame, tops: pd.DataFrame, not_predicted: pd.DataFrame, meta: dict,
                    drawn: list[str]) -> str:
    """The short human report (module doc)."""
    lines = [f"# Predictions: {meta['model']} fold ensemble ({meta['n_models']} fold models)", "",
             f"- model_version `{meta['version']}`; preprocessing from the checkpoint: {meta['prep']}",
             f"- {len(videos)} videos, {meta['n_clips']} clips predicted on CPU in {meta['seconds']:.1f} s "
             f"({meta['clips_per_s']:.2f} clips/s); video = {meta['pooling']} over its clips; positive = probability "
             "at or above the development (validation) threshold, mean of the fold models'",
             f"- {len(not_predicted)} input(s) not predicted (below)", "",
             "## Videos", "", "| video | clips | " + " | ".join(PATTERNS) + " |",
             "|---|---:|" + "---:|" * len(PATTERNS)]
    for r in videos.itertuples(index=False):
        cells = []
        for s in PATTERN_SLUGS:
            p, t = getattr(r, f"prob_{s}"), getattr(r, f"thr_{s}")
            cells.append(f"{'**' if getattr(r, f'positive_{s}') else ''}{_fmt(p)} (thr {_fmt(t)})"
                         f"{'**' if getattr(r, f'positive_{s}') else ''}")
        lines.append(f"| {r.video_id} | {r.n_clips} | " + " | ".join(cells) + " |")
    lines += ["", "## Top-attention frames of positive videos", "",
              "Frame numbers are 1-based in the de-identified video (OUT/videos/<video_id>.mp4), from the clip "
              "with the highest probability for the pattern.", ""]
    if tops.empty:
        lines.append("No video is positive for any pattern.")
    else:
        lines += ["| video | pattern | clip | probability | top frames (weight) |", "|---|---|---|---:|---|"]
        for r in tops.itertuples(index=False):
            pairs = ", ".join(f"{f} ({w})" for f, w in zip(r.frames.split("; "), r.weights.split("; ")) if f)
            lines.append(f"| {r.video_id} | {r.pattern} | {r.clip_id} | {r.prob:.2f} | {pairs or 'no attention'} |")
        lines += [""] + [f"![{v}]({FIGURES}/{v}.png)" for v in drawn]
    if len(not_predicted):
        lines += ["", "## Not predicted", "", "| input | reason |", "|---|---|"]
        lines += [f"| {r.label} | {r.reason} |" for r in not_predicted.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def nothing_report(not_predicted: pd.DataFrame) -> str:
    """The report when no video could be predicted: what was left out and why."""
    lines = ["# Predictions", "", "No video could be predicted.", "", "| input | reason |", "|---|---|"]
    lines += [f"| {r.label} | {r.reason} |" for r in not_predicted.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_all(out: Path, clips: pd.DataFrame, folds: pd.DataFrame, videos: pd.DataFrame, tops: pd.DataFrame,
              version: str, report: str) -> Path:
    folder = Path(out) / FOLDER
    write_parquet_atomic(folder / CLIPS, clips)
    write_parquet_atomic(folder / FOLDS, folds)
    write_parquet_atomic(folder / VIDEOS, videos)
    write_parquet_atomic(folder / LS, ls_predictions(clips, version))
    write_bytes_atomic(folder / TOPS, tops.to_csv(index=False, lineterminator="\n").encode())
    write_bytes_atomic(folder / REPORT, report.encode())
    return folder
