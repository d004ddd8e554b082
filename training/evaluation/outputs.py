"""Write everything the evaluate stage produces under artifacts/eval/ (layout: stage.py's docstring).

The I/O edge of the stage: tables, JSON, CSV curve points, PNG figures. Every file is written
atomically; plots/ and figures/attention/ are emptied first, so a model or clip that is no longer
evaluated leaves no stale file behind (they are this stage's own outputs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from luskit.atomic import write_atomic, write_bytes_atomic, write_parquet_atomic
from training.evaluation import attention, curves, figures, label_errors, nested, report, tables, views

SUMMARY = "metrics.json"
COMPARISON_MD = "comparison.md"
COMPARISONS_CSV = "comparisons.csv"
COSTS = "costs.json"
LABEL_ERRORS = "label_errors.parquet"
PLOTS = "plots"
FIGURES = "figures"
ATTENTION = "attention"
OUTPUTS = (COMPARISON_MD, COMPARISONS_CSV, COSTS, LABEL_ERRORS)  # plus <model>/ folders, metrics, plots, figures


def write_json(path: Path, data) -> None:
    """Strict JSON (NaN is refused: DVC metrics and browsers reject it; NaN is None upstream)."""
    write_bytes_atomic(path, (json.dumps(data, indent=1, allow_nan=False) + "\n").encode())


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))


def held_out(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per clip that the model never trained on: out-of-fold rows + ensemble rows."""
    return pd.concat([views.headline_rows(rows, s) for s in tables.SETS], ignore_index=True)


def write_curves(out_dir: Path, all_curves: Sequence[curves.Curve], results: Mapping[str, dict]) -> None:
    """CSV per (kind, set, model, pattern); one ROC and one reliability PNG per set with all models (PR curves
    stay CSV only: each PNG costs a fraction of a second of matplotlib text layout)."""
    plots = out_dir / PLOTS
    shutil.rmtree(plots, ignore_errors=True)
    for c in all_curves:
        write_csv(plots / c.kind / c.set / c.model / f"{c.pattern}.csv", c.points)
    for kind in ("roc", "calibration"):
        for set_name, per_pattern in curves.by_set(all_curves, kind).items():
            legend = {slug: {m: f"{m} ({_legend_value(results, m, set_name, slug, kind)})" for m in models}
                      for slug, models in per_pattern.items()}
            name = {"roc": "roc", "calibration": "reliability"}[kind]
            figures.save_png(figures.curve_figure(per_pattern, kind, set_name, legend),
                             out_dir / FIGURES / f"{name}_{set_name}.png")


def _legend_value(results: Mapping[str, dict], model: str, set_name: str, slug: str, kind: str) -> str:
    head = views.headline(results[model], set_name)
    metric = {"roc": "auroc", "pr": "auprc", "calibration": "ece"}[kind]
    value = head["patterns"][slug][metric] if head else None
    return f"{metric.upper()} {report.fmt(value)}"


def write_attention(out_dir: Path, rows: pd.DataFrame, params, manifest: pd.DataFrame | None, clips_dir: Path,
                    progress: bool) -> list[str]:
    """Figures for the selected clips of the primary model (attention.select_clips); returns the clip ids."""
    folder = out_dir / FIGURES / ATTENTION
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)  # exists even when nothing is drawn (a DVC plots out)
    chosen = attention.select_clips(rows, params.attention_per_pattern)
    windows = manifest.set_index("clip_id") if manifest is not None else None
    by_clip = rows.drop_duplicates("clip_id").set_index("clip_id")
    for clip_id in tqdm(chosen, desc="evaluate: attention", unit="clip", disable=not progress):
        row = by_clip.loc[clip_id].copy()
        row["clip_id"] = clip_id
        figures.save_png(attention.curves_figure(row, params.attention_curve_top), folder / f"{clip_id}_curves.png")
        frames = _clip_frames(windows, clip_id, len(row[tables.column("attention", "a_lines")]), clips_dir)
        if frames is not None:
            figures.save_png(attention.frames_figure(row, frames, params.attention_grid_top),
                             folder / f"{clip_id}_frames.png")
    return chosen


def _clip_frames(windows: pd.DataFrame | None, clip_id: str, length: int, clips_dir: Path) -> np.ndarray | None:
    """(length, H, W) uint8 frames of a clip from the cache, or None (with a warning) when unavailable."""
    from curation.clip_cache import load_clip

    if windows is None or clip_id not in windows.index:
        print(f"evaluate: warning: {clip_id} not in the clip manifest; frame grid skipped")
        return None
    w = windows.loc[clip_id]
    path = Path(clips_dir) / str(w["cache_file"])
    if not path.exists():
        print(f"evaluate: warning: {path} missing (rerun the clips stage); frame grid of {clip_id} skipped")
        return None
    return load_clip(path, int(w["start"]), int(w["end"]), length)


def write_all(out_dir: Path, params, rows: Mapping[str, pd.DataFrame], results: Mapping[str, dict],
              comparisons: pd.DataFrame, all_curves: Sequence[curves.Curve], costs: Mapping[str, dict],
              manifest: pd.DataFrame | None, clips_dir: Path, progress: bool = True) -> None:
    """Every output of the stage (module doc)."""
    from training.evaluation.costs import machine

    out_dir = Path(out_dir)
    for model, table in rows.items():
        write_parquet_atomic(out_dir / model / "predictions.parquet", table)
        write_json(out_dir / model / "metrics.json", results[model])
    level = f"video_{params.video_pooling}"
    write_json(out_dir / SUMMARY, report.summary_metrics(results, level))
    write_csv(out_dir / COMPARISONS_CSV, comparisons)
    info = machine() if costs else {}
    write_json(out_dir / COSTS, {"machine": info, "models": costs})
    write_curves(out_dir, all_curves, results)
    primary = held_out(rows[params.primary_model])
    write_parquet_atomic(out_dir / LABEL_ERRORS, label_errors.label_error_table(primary, params.label_error_method))
    # Attention figures of out-of-fold clips only: the review app lists every figure, and a test clip's model
    # output must not reach a reviewer (blind adjudication of test labels, protected.py).
    illustrated = primary[primary["set"] == "validation"]
    has_attention = illustrated[tables.column("attention", "a_lines")].notna().any()
    if has_attention:
        write_attention(out_dir, illustrated, params, manifest, clips_dir, progress)
    else:
        (out_dir / FIGURES / ATTENTION).mkdir(parents=True, exist_ok=True)
    meta = {"reference": params.primary_model, "n_boot": params.bootstrap, "ci": params.ci, "seed": params.seed,
            "video_pooling": params.video_pooling, "ensemble_threshold": params.ensemble_threshold,
            "min_patients_ci": params.min_patients_ci,
            "min_class_patients_ci": params.min_class_patients_ci,
            "oof_thresholds": nested.nested_note(rows[params.primary_model]), "machine": info, "cost_repeats": params.cost_repeats,
            "folds": {m: sorted(int(k) for k in set(t["fold"]) if k != tables.ENSEMBLE_FOLD) for m, t in rows.items()}}
    text = report.comparison_markdown(results, comparisons, costs, meta)
    write_bytes_atomic(out_dir / COMPARISON_MD, text.encode())
