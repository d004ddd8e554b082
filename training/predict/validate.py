"""External validation of `luskit predict` output: the development model, its thresholds, new labelled videos.

Nothing is refitted: the probabilities and the development (validation) thresholds in OUT/predictions are
scored as they are, with training/evaluation's scoring (AUROC, AUPRC, sensitivity, specificity, PPV, NPV, F1,
ECE; patient-bootstrap CIs, evaluate: bootstrap/ci/seed/min_patients_ci) at
- clip level, where the labels are frame ranges (clip labels by the labels stage's rule);
- video level always: the pooled video probability (evaluate.video_pooling) against the video label (a video
  is positive if any clip is; or the video-level yes/no label itself).
Calibration: ECE in the tables and the reliability bins (reliability.csv). `--recalibrate` adds a Platt
recalibration cross-fitted over patients (each patient's probabilities are mapped by a fit on the other
patients), reported in its own table: it shows what a local recalibration would buy, and is never mixed into
the headline.

Outputs (OUT/validation/): metrics.json, report.md, reliability.csv, labels.parquet (the labels used).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from luskit.atomic import write_bytes_atomic, write_parquet_atomic
from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.evaluation import calibration, tables
from training.evaluation.report import fmt
from training.evaluation.scoring import Bootstrap, score_table
from training.predict.labels import LABEL_COLUMNS, ExternalLabels

FOLDER = "validation"
RECAL_FOLDS = 5


def labelled_views(clips: pd.DataFrame, labels: ExternalLabels, pooling: str) -> dict[str, pd.DataFrame]:
    """{"clip": clip rows with labels (frames only), "video": video rows with labels}; unlabelled rows dropped."""
    views = {}
    base = clips.drop(columns=[c for c in LABEL_COLUMNS if c in clips.columns])
    if labels.level == "frames":
        rows = base.merge(labels.clips, on="clip_id", how="inner", validate="one_to_one")
        views["clip"] = rows
        views["video"] = tables.pool_videos(rows, pooling)
    else:
        videos = tables.pool_videos(base.assign(**{c: pd.array([pd.NA] * len(base), dtype="Int8")
                                                   for c in LABEL_COLUMNS}), pooling)
        videos = videos.drop(columns=LABEL_COLUMNS).merge(labels.videos, on="video_id", how="inner")
        views["video"] = videos
    return views


def platt_cross_fit(prob: np.ndarray, label: np.ndarray, groups: np.ndarray, folds: int = RECAL_FOLDS,
                    iterations: int = 50) -> np.ndarray:
    """(n,) recalibrated probabilities: sigmoid(a * logit(p) + b) with (a, b) fitted by Newton's method on the
    patients outside each item's fold (folds = hash of the patient id modulo `folds`); a fold whose training
    part lacks a class keeps its probabilities."""
    z = np.log(np.clip(prob, 1e-6, 1 - 1e-6) / np.clip(1 - prob, 1e-6, 1))
    fold = np.array([int(hashlib.sha256(str(g).encode()).hexdigest()[:8], 16) % folds for g in groups])
    out = prob.astype(np.float64).copy()
    for k in range(folds):
        train, test = fold != k, fold == k
        if not test.any() or len(set(label[train])) < 2:
            continue
        x = np.stack([z[train], np.ones(train.sum())], 1)
        w = np.zeros(2)
        for _ in range(iterations):
            p = 1 / (1 + np.exp(-x @ w))
            hess = x.T @ (x * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
            w -= np.linalg.solve(hess, x.T @ (p - label[train]))
        out[test] = 1 / (1 + np.exp(-(w[0] * z[test] + w[1])))
    return out


def recalibrated(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with each pattern's probabilities cross-fitted (platt_cross_fit); NA labels keep theirs."""
    out = rows.copy()
    for s in PATTERN_SLUGS:
        known = out[f"label_{s}"].notna().to_numpy()
        prob = out[f"prob_{s}"].to_numpy(np.float64, copy=True)
        label = out[f"label_{s}"].to_numpy(dtype=np.float64, na_value=np.nan)
        prob[known] = platt_cross_fit(prob[known], label[known].astype(int), out["patient_id"].to_numpy()[known])
        out[f"prob_{s}"] = prob
    return out


def reliability_rows(views: dict[str, pd.DataFrame], bins: int) -> pd.DataFrame:
    parts = []
    for level, rows in views.items():
        for s in PATTERN_SLUGS:
            known = rows[f"label_{s}"].notna().to_numpy()
            table = calibration.reliability(rows[f"prob_{s}"].to_numpy(np.float64)[known],
                                            rows[f"label_{s}"].to_numpy(dtype=np.float64, na_value=np.nan)[known], bins)
            parts.append(table.assign(level=level, pattern=s))
    return pd.concat(parts, ignore_index=True)


def score_views(views: dict[str, pd.DataFrame], boot: Bootstrap, bins: int) -> dict:
    return {level: score_table(rows, boot, bins) for level, rows in views.items()}


def _cell(block: dict, name: str) -> str:
    ci = block.get(f"{name}_ci")
    return fmt(block.get(name)) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def metrics_table(result: dict, title: str) -> list[str]:
    lines = [f"### {title}", "", f"{result['n']} rows, {result['n_patients']} patients. {result['ci_note']}".strip(),
             "", "| pattern | n (positive) | patients | AUROC [95% CI] | sensitivity | specificity | PPV | NPV | ECE "
             "| threshold |", "|---|---|---:|---|---|---|---|---|---:|---:|"]
    for slug, name in zip(PATTERN_SLUGS, PATTERNS):
        b = result["patterns"][slug]
        lines.append(f"| {name} | {b['n']} ({b['n_pos']}) | {b['n_patients']} | {_cell(b, 'auroc')} | "
                     f"{_cell(b, 'sensitivity')} | {_cell(b, 'specificity')} | {_cell(b, 'ppv')} | {_cell(b, 'npv')} | "
                     f"{fmt(b['ece'])} | {fmt(b['threshold'])} |")
    m = result["macro"]
    lines += [f"| macro ({len(m['auroc_patterns'])} patterns) | | | {_cell(m, 'auroc')} | {_cell(m, 'sensitivity')} | "
              f"{_cell(m, 'specificity')} | {_cell(m, 'ppv')} | {_cell(m, 'npv')} | | |", ""]
    return lines


def report_markdown(results: dict, recal: dict | None, labels: ExternalLabels, meta: dict) -> str:
    lines = ["# External validation", "",
             f"- model `{meta['version']}`, labels `{labels.source}` ({labels.level} level); "
             f"{len(labels.excluded)} video(s) excluded by readers' quality choices",
             f"- probabilities and development thresholds as predicted: nothing refitted on these videos; video = "
             f"{meta['pooling']} over clips (a video is positive if any clip is)",
             f"- {meta['n_boot']} patient-bootstrap replicates, {int(meta['ci'] * 100)}% percentile intervals", ""]
    if "clip" not in results:
        lines += ["Clip level: not scored (video-level labels say nothing about single clips).", ""]
    for level in ("clip", "video"):
        if level in results:
            lines += metrics_table(results[level], f"{level.capitalize()} level")
    if recal:
        lines += ["## Recalibrated (separate; cross-fitted Platt scaling over patients, thresholds unchanged)", ""]
        for level in ("clip", "video"):
            if level in recal:
                lines += metrics_table(recal[level], f"{level.capitalize()} level, recalibrated")
    return "\n".join(lines) + "\n"


def validate(out: Path, labels: ExternalLabels, boot: Bootstrap, pooling: str, bins: int, version: str,
             recalibrate: bool = False) -> dict:
    """Score OUT/predictions/clips.parquet against `labels`; write OUT/validation/; return the results."""
    clips = pd.read_parquet(Path(out) / "predictions" / "clips.parquet")
    views = labelled_views(clips, labels, pooling)
    results = score_views(views, boot, bins)
    recal = None
    if recalibrate:
        recal = score_views({k: recalibrated(v) for k, v in views.items()}, boot, bins)
    folder = Path(out) / FOLDER
    meta = {"version": version, "pooling": pooling, "n_boot": boot.n_boot, "ci": boot.ci}
    body = {"labels": labels.source, "level": labels.level, "excluded": labels.excluded, **meta,
            "results": results, "recalibrated": recal}
    write_bytes_atomic(folder / "metrics.json", (json.dumps(body, indent=1) + "\n").encode())
    write_bytes_atomic(folder / "reliability.csv",
                       reliability_rows(views, bins).to_csv(index=False, lineterminator="\n").encode())
    write_parquet_atomic(folder / "labels.parquet", labels.clips if labels.clips is not None else labels.videos)
    write_bytes_atomic(folder / "report.md", report_markdown(results, recal, labels, meta).encode())
    return body
