"""The evaluate stage end to end on simulated prediction tables (contract layout), its params, its cost
measurement on a real tiny checkpoint, and the attention figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from luskit.config import load_section
from luskit.schema import PATTERN_SLUGS
from tests.training.evaluation import simulate
from training.evaluation import attention, outputs, stage, tables

REPO = Path(__file__).resolve().parents[3]
MODELS = {"luvnet": 1.5, "usvn": 1.0, "c3d": 0.4}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-project")
    clips = simulate.study(5, n_fold_patients=10, n_test=5, n_temporal=5)
    simulate.write_project(root, clips, MODELS, attention_models=("luvnet", "usvn"),
                           evaluate={"min_patients_ci": 3, "min_class_patients_ci": 2,
                                     "attention_per_pattern": 1},
                           consensus=simulate.consensus_views(clips, changed=0.2))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert stage.main(progress=False) == 0
    return root / "artifacts" / "eval"


def test_outputs_layout_and_contents(evaluated):
    summary = json.loads((evaluated / "metrics.json").read_text())
    assert set(summary) == set(MODELS)
    assert set(summary["luvnet"]) == {"validation", "internal_test", "temporal"}
    head = summary["luvnet"]["internal_test"]
    assert 0.5 < head["macro_auroc"] <= 1 and len(head["macro_auroc_ci"]) == 2 and "video_max_macro_auroc" in head
    assert summary["luvnet"]["validation"]["macro_auroc"] > summary["c3d"]["validation"]["macro_auroc"]
    for model in MODELS:
        full = json.loads((evaluated / model / "metrics.json").read_text())
        assert set(full["temporal"]) == {"clip", "video_max", "video_mean"}
        preds = pd.read_parquet(evaluated / model / "predictions.parquet")
        ens = preds[preds["fold"] == tables.ENSEMBLE_FOLD]
        assert set(ens["set"]) == {"internal_test", "temporal"} and (ens["n_models"] == 5).all()
        assert ens["clip_id"].is_unique and set(preds.loc[preds["fold"] >= 0, "fold"]) == set(range(5))
    comparisons = pd.read_csv(evaluated / "comparisons.csv")
    assert len(comparisons) == 2 * 4 * 3 and set(comparisons["reference"]) == {"luvnet"}
    md = (evaluated / "comparison.md").read_text()
    for heading in ("## Table 1. Development: internal test", "## Table 1b.", "## Table 2. Temporally separated",
                    "## Video level", "## Operating points", "## Model cost"):
        assert heading in md
    assert md.count("| c3d |") >= 4 and "p=" in md and "Holm" in md
    assert "DeLong, clips independent" in md and "positive patients" in md and "valid replicates" in md
    assert md.index("p=") < md.index("DeLong, clips independent:")  # the patient bootstrap p leads
    assert {"n_pos_patients", "n_neg_patients", "boot_valid", "boot_single_class"} <= set(comparisons.columns)
    # test sets twice: after blind review (headline) and on the readers' labels alone, with provenance counts
    assert "## Test labels: before any model and after blind review" in md and "changed by blind review" in md
    full = json.loads((evaluated / "luvnet" / "metrics.json").read_text())["internal_test"]["clip"]
    after, before = full["ensemble"]["macro"]["auroc"], full["before_review"]["macro"]["auroc"]
    assert after > before  # 20 % of the readers' test labels were changed by review: scored on them, AUROC drops
    changed = sum(p["changed_by_blind_review"] for p in full["label_provenance"].values())
    assert changed > 0 and f"{after:.3f} ({before:.3f})" in md


def test_plot_data_and_figures(evaluated):
    for kind in ("roc", "pr", "calibration"):
        for set_name in ("validation", "internal_test", "temporal"):
            for model in MODELS:
                for slug in PATTERN_SLUGS:
                    assert (evaluated / "plots" / kind / set_name / model / f"{slug}.csv").exists()
    roc = pd.read_csv(evaluated / "plots" / "roc" / "temporal" / "luvnet" / "a_lines.csv")
    assert list(roc.columns) == ["fpr", "tpr", "threshold"] and roc["fpr"].iloc[-1] == 1.0
    names = {p.name for p in (evaluated / "figures").glob("*.png")}
    assert names == {f"{k}_{s}.png" for k in ("roc", "reliability")
                     for s in ("validation", "internal_test", "temporal")}
    drawn = sorted((evaluated / "figures" / "attention").iterdir())
    assert drawn and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)
    clip_ids = {p.name.rsplit("_", 1)[0] for p in drawn}
    assert {p.name for p in drawn} == {f"{c}_{kind}.png" for c in clip_ids for kind in ("curves", "frames")}
    errors = pd.read_parquet(evaluated / "label_errors.parquet")
    preds = pd.read_parquet(evaluated / "luvnet" / "predictions.parquet")
    assert len(errors) == 4 * len(outputs.held_out(preds)) and errors["clip_id"].is_unique is False
    assert clip_ids <= set(errors["clip_id"])
    fold_clips = set(preds.loc[preds["set"] == "validation", "clip_id"])
    assert clip_ids <= fold_clips  # never a test clip's attention: the review app lists these figures
    assert json.loads((evaluated / "costs.json").read_text()) == {"machine": {}, "models": {}}


def test_an_empty_temporal_set_and_a_missing_model(tmp_path, monkeypatch):
    clips = simulate.study(6, n_fold_patients=5, n_test=2, n_temporal=0)
    simulate.write_project(tmp_path, clips, {"luvnet": 1.0, "frame2d": 0.8},
                           evaluate={"bootstrap": 50, "attention_per_pattern": 0})
    monkeypatch.chdir(tmp_path)
    assert stage.main(progress=False) == 0
    out = tmp_path / "artifacts" / "eval"
    assert json.loads((out / "metrics.json").read_text())["luvnet"]["temporal"] == {"n": 0}
    assert "## Table 2. Temporally separated set" in (out / "comparison.md").read_text()
    assert "empty set: no predictions with set=temporal" in (out / "comparison.md").read_text()
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["evaluate"]["models"] = ["luvnet", "cnn_lstm"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert stage.main(progress=False) == 2


def test_repository_params_load_and_bad_params_are_refused(tmp_path):
    params = load_section(REPO / "params.yaml", "evaluate", stage.EvalParams)
    assert params.primary_model in params.models
    from luskit.config import ConfigError

    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump({"evaluate": {"models": ["luvnet"], "primary_model": "usvn"}}))
    with pytest.raises(ConfigError, match="primary_model"):
        load_section(bad, "evaluate", stage.EvalParams)
    bad.write_text(yaml.safe_dump({"evaluate": {"models": ["resnet"]}}))
    with pytest.raises(ConfigError, match="unknown"):
        load_section(bad, "evaluate", stage.EvalParams)


def test_costs_from_a_real_tiny_checkpoint(tmp_path):
    import torch

    from training.evaluation import costs
    from training.models import build_model
    from training.models.cost import count_parameters

    config = {"encoder": "test_resnet", "heads": 2, "kernel": 3, "attn_hidden": 8, "head_hidden": 8}
    model = build_model("luvnet", config)
    torch.save({"format": 1, "model_name": "luvnet", "model_config": {**model.config, "encoder_weights": "/gone.pt"},
                "train_params": {"frame_size": 24}, "state_dict": model.state_dict()}, tmp_path / "checkpoint.pt")
    got = costs.measure_checkpoint(tmp_path / "checkpoint.pt", costs.CostSettings(frames=4, size=32, repeats=1))
    assert got["params"] == count_parameters(model) and got["input_shape"] == [1, 4, 1, 24, 24]
    assert got["gmacs_per_clip"] > 0 and got["cpu_seconds_per_clip"] > 0
    c3d_like = costs.input_shape({"frames": 16, "size": 32}, {"frame_size": 24}, costs.CostSettings(4, 8))
    assert c3d_like == (1, 16, 1, 32, 32)
    torch.save({"state_dict": {}}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="model_name"):
        costs.measure_checkpoint(tmp_path / "bare.pt", costs.CostSettings(4, 32))
    with pytest.raises(FileNotFoundError, match="train stage"):
        costs.measure_checkpoint(tmp_path / "none.pt", costs.CostSettings(4, 32))


def test_attention_selection_and_top_frames():
    att = np.array([0.1, 0.5, 0.2, 0.2, 0.0, 0.0], dtype=np.float32)
    assert attention.top_frames(att, 3).tolist() == [1, 2, 3]
    assert attention.top_frames(att, 5, n_real=4).tolist() == [1, 2, 3, 0]  # padded frames never shown
    rows = pd.DataFrame({"clip_id": ["a", "b", "c", "d"], "n_real_frames": 4})
    for s in PATTERN_SLUGS:
        rows[f"prob_{s}"] = [0.9, 0.95, 0.99, 0.2]
        rows[f"thr_{s}"] = 0.5
        rows[f"label_{s}"] = pd.array([1, 1, 0, 1], dtype="Int8")  # c: confident false positive; d: missed
        rows[f"attention_{s}"] = [att] * 4
    assert attention.select_clips(rows, 1) == ["b"]
    assert attention.select_clips(rows, 5) == ["a", "b"]
    rows["attention_a_lines"] = [None] * 4
    assert attention.select_clips(rows, 1) == ["b"]  # other patterns still have attention


def test_dvc_stage_matches_params_and_the_writers():
    """dvc.yaml's evaluate outs = one folder per evaluate.models entry + outputs.OUTPUTS; metrics and plots as
    written; review-queue's out = labeling.queue.QUEUE; the model list = the model registry's."""
    from labeling import queue
    from luskit import paths
    from training.models import MODEL_NAMES

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    params = load_section(REPO / "params.yaml", "evaluate", stage.EvalParams)
    name = lambda entry: next(iter(entry)) if isinstance(entry, dict) else entry  # noqa: E731
    outs = {name(o) for o in dvc["evaluate"]["outs"]}
    assert outs == {str(paths.EVAL / m) for m in params.models} | {str(paths.EVAL / o) for o in outputs.OUTPUTS}
    assert [name(m) for m in dvc["evaluate"]["metrics"]] == [str(paths.EVAL / outputs.SUMMARY)]
    plots = {str(paths.EVAL / outputs.PLOTS / k) for k in ("roc", "pr", "calibration")}
    assert {name(p) for p in dvc["evaluate"]["plots"]} == plots | {str(paths.EVAL / outputs.FIGURES)}
    assert "artifacts/models" in dvc["evaluate"]["deps"]
    assert [name(o) for o in dvc["review-queue"]["outs"]] == [str(queue.QUEUE)]
    assert str(queue.LABEL_ERRORS) in dvc["review-queue"]["deps"]
    assert stage.MODEL_NAMES == MODEL_NAMES
    train = yaml.safe_load((REPO / "params.yaml").read_text()).get("train")
    if train and "models" in train:  # only trained models can be evaluated
        assert set(params.models) <= set(train["models"]), "evaluate.models must be a subset of train.models"
