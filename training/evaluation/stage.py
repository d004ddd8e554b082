"""The `evaluate` stage: fold predictions of every model -> artifacts/eval/.

Reads artifacts/models/<model>/fold<k>/predictions.parquet (+ checkpoint.pt for the cost table) for
each model in evaluate.models, the clip manifest and frame cache (attention frame grids). Writes
(paths.EVAL):
- metrics.json (DVC metrics: per model and set, headline AUROCs), <model>/metrics.json (everything:
  per set, level, fold model, pooled/ensemble; per pattern, micro, macro; CIs), <model>/predictions.parquet
  (fold rows + ensemble rows with fold = -1 and n_models);
- comparison.md (Tables 1-2 layout, DeLong/bootstrap p, operating points, cost), comparisons.csv (every
  paired comparison), costs.json;
- plots/{roc,pr,calibration}/<set>/<model>/<slug>.csv (DVC plots), figures/*.png (ROC and reliability
  per set), figures/attention/<clip_id>_{curves,frames}.png (primary model);
- label_errors.parquet: the primary model's label-error ranking (feeds `luskit review-queue`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from tqdm import tqdm

from luskit import paths
from luskit.config import ConfigError, load_section, read_params, require
from training.evaluation import compare, costs, curves, nested, outputs, protected, tables, views
from training.evaluation.scoring import Bootstrap

PREDICTIONS = "predictions.parquet"
CHECKPOINT = "checkpoint.pt"
MODEL_NAMES = ("luvnet", "luvnet_tfwo", "usvn", "c3d", "r2plus1d", "frame2d", "cnn_lstm")


@dataclass(frozen=True)
class EvalParams:
    """The `evaluate:` section of params.yaml."""

    models: tuple[str, ...] = ("luvnet", "usvn", "c3d")  # evaluated (trained) models; each needs artifacts/eval/<model>
    # among the evaluate stage's outs in dvc.yaml
    primary_model: str = "luvnet"  # reference of the paired tests; the review queue's and app's model
    video_pooling: Literal["max", "mean"] = "max"  # the video level the summary reports (both are computed)
    ensemble_threshold: Literal["mean", "median"] = "mean"  # of the fold models' validation thresholds
    bootstrap: int = 1000  # patient-bootstrap replicates per CI (vectorised)
    ci: float = 0.95
    seed: int = 2025
    min_patients_ci: int = 5  # fewer patients in a set: no CI (a patient bootstrap needs several)
    min_class_patients_ci: int = 5  # fewer positive or negative patients of a pattern: no CI / bootstrap p
    ece_bins: int = 10
    fold_bootstrap: bool = False  # CIs for each fold model too (the headline views always have them)
    measure_costs: bool = True
    cost_repeats: int = 3  # timed forward passes per model (median); few: the demo must stay fast
    cost_warmup: int = 1
    attention_per_pattern: int = 2  # highest-confidence true positives illustrated per pattern
    attention_curve_top: int = 3  # frames marked on the importance curves (the seed: 3)
    attention_grid_top: int = 5  # frames per pattern in the grid (the seed: 5)
    label_error_method: Literal["self_confidence", "adjusted_self_confidence"] = "self_confidence"

    def __post_init__(self) -> None:
        require(len(self.models) > 0, "models: name at least one model")
        unknown = sorted(set(self.models) - set(MODEL_NAMES))
        require(not unknown, f"models: unknown {unknown}; known: {list(MODEL_NAMES)}")
        require(len(set(self.models)) == len(self.models), "models: each model once")
        require(self.primary_model in self.models, f"primary_model={self.primary_model!r} is not in models")
        require(self.bootstrap >= 0, f"bootstrap={self.bootstrap}: use 0 (no CIs) or more")
        require(0.5 < self.ci < 1.0, f"ci={self.ci}: use a level in (0.5, 1), e.g. 0.95")
        require(self.min_patients_ci >= 2, f"min_patients_ci={self.min_patients_ci}: use 2 or more")
        require(self.min_class_patients_ci >= 1, f"min_class_patients_ci={self.min_class_patients_ci}: use 1 or more")
        require(self.ece_bins >= 2, f"ece_bins={self.ece_bins}: use 2 or more")
        require(self.cost_repeats >= 1 and self.cost_warmup >= 0, "cost_repeats >= 1 and cost_warmup >= 0")
        require(min(self.attention_per_pattern, self.attention_curve_top, self.attention_grid_top) >= 0,
                "attention_*: use 0 or more")

    @property
    def boot(self) -> Bootstrap:
        return Bootstrap(self.bootstrap, self.seed, self.ci, self.min_patients_ci, self.min_class_patients_ci)


@dataclass(frozen=True)
class ClipShape:
    """The clips section's clip length and frame size (cost-measurement input)."""

    length: int
    size: int


def read_clip_shape(params_path: Path) -> ClipShape:
    section = read_params(params_path).get("clips", {})
    return ClipShape(int(section.get("length", 30)), int(section.get("size", 128)))


def fold_files(model: str, models_dir: Path = paths.MODELS) -> list[Path]:
    """artifacts/models/<model>/fold<k>/predictions.parquet for every fold folder, sorted by k."""
    folder = Path(models_dir) / model
    found = sorted((p for p in folder.glob(f"fold*/{PREDICTIONS}") if p.parent.name[4:].isdigit()),
                   key=lambda p: int(p.parent.name[4:]))
    if not found:
        raise FileNotFoundError(f"{folder}/fold*/{PREDICTIONS} not found: train {model} (dvc repro / luskit train "
                                f"--model {model} --fold K) or remove it from evaluate.models and the evaluate "
                                "stage's outs in dvc.yaml")
    return found


def read_model(model: str, params: EvalParams, models_dir: Path = paths.MODELS,
               label_views: pd.DataFrame | None = None) -> pd.DataFrame:
    """A model's fold rows (checked; out-of-fold rows at their nested threshold, nested.py; test-set rows
    relabelled with the blind labels when label_views are given, protected.py) + ensemble rows, n_models = 1
    on fold rows."""
    parts = [tables.check_predictions(pd.read_parquet(f), str(f)) for f in fold_files(model, models_dir)]
    rows = pd.concat(parts, ignore_index=True)
    if set(rows["model"].astype(str)) != {model}:
        raise ValueError(f"{models_dir}/{model}: predictions name model(s) {sorted(set(rows['model']))}, "
                         f"expected {model}: rerun the train stage")
    rows = nested.with_nested_thresholds(rows)
    if label_views is not None:
        rows = protected.relabel(rows, label_views, "blind_label")
    ens = tables.ensemble(rows, params.ensemble_threshold)
    return pd.concat([rows.assign(n_models=1), ens], ignore_index=True)


def evaluate_models(rows: dict[str, pd.DataFrame], params: EvalParams, progress: bool = True,
                    label_views: pd.DataFrame | None = None) -> tuple[dict[str, dict], pd.DataFrame, list[curves.Curve]]:
    """Scores per model (test sets also before review, with label provenance), the paired comparisons against
    the primary model, curve points."""
    settings = views.ViewSettings(params.boot, params.ece_bins, params.fold_bootstrap)
    results, all_curves = {}, []
    for model, table in tqdm(rows.items(), desc="evaluate: score", unit="model", disable=not progress):
        results[model] = protected.add_label_views(views.score_model(table, settings), table, label_views, settings)
        all_curves += curves.model_curves(model, table, params.ece_bins)
    frames = [compare.compare_view(s, {m: views.headline_rows(t, s) for m, t in rows.items()},
                                   params.primary_model, params.boot) for s in tables.SETS]
    frames = [f for f in frames if not f.empty]
    comparisons = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(compare.COLUMNS))
    return results, comparisons, all_curves


def measure_costs(params: EvalParams, shape: ClipShape, models_dir: Path = paths.MODELS, progress: bool = True
                  ) -> dict[str, dict]:
    """Per model the cost of its fold-0 (first) checkpoint; a model that cannot be measured gets {"error"}."""
    if not params.measure_costs:
        return {}
    settings = costs.CostSettings(shape.length, shape.size, repeats=params.cost_repeats, warmup=params.cost_warmup)
    out = {}
    for model in tqdm(params.models, desc="evaluate: cost", unit="model", disable=not progress):
        checkpoint = fold_files(model, models_dir)[0].parent / CHECKPOINT
        try:
            out[model] = costs.measure_checkpoint(checkpoint, settings)
        except (FileNotFoundError, ValueError, RuntimeError, KeyError) as err:
            out[model] = {"error": str(err)}
    return out


def main(params_path: Path = paths.PARAMS, progress: bool = True) -> int:
    """Run the stage from the project folder; 0 done, 2 bad params or inputs."""
    try:
        params = load_section(Path(params_path), "evaluate", EvalParams)
        shape = read_clip_shape(Path(params_path))
        label_views = protected.label_views(pd.read_parquet(paths.CONSENSUS) if paths.CONSENSUS.exists() else None)
        rows = {m: read_model(m, params, label_views=label_views) for m in params.models}
        manifest = pd.read_parquet(paths.CLIP_MANIFEST) if paths.CLIP_MANIFEST.exists() else None
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    folds = {m: tuple(sorted(set(t.loc[t["fold"] != tables.ENSEMBLE_FOLD, "fold"]))) for m, t in rows.items()}
    if len(set(folds.values())) > 1:  # comparisons stay paired on common clips, but say so
        print(f"evaluate: warning: models have different fold models: {folds}; out-of-fold sets differ "
              "(train the missing folds)", file=sys.stderr)
    results, comparisons, all_curves = evaluate_models(rows, params, progress, label_views)
    if label_views is None:
        print(f"evaluate: warning: {protected.UNAVAILABLE}", file=sys.stderr)
    cost = measure_costs(params, shape, progress=progress)
    outputs.write_all(paths.EVAL, params, rows, results, comparisons, all_curves, cost, manifest, paths.CLIPS,
                      progress)
    head = views.headline(results[params.primary_model], "internal_test")
    macro = head["macro"]["auroc"] if head else None
    print(f"evaluate: {len(rows)} model(s); {params.primary_model} internal-test macro AUROC "
          f"{'—' if macro is None else f'{macro:.3f}'} -> {paths.EVAL}/ (comparison.md)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
