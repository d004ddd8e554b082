"""`luskit train` end to end on a tiny project: every model trains 2 steps and writes a valid run; the outputs
follow the contract; the test sets never touch thresholds or model selection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from luskit.schema import PATTERN_SLUGS, PATTERNS
from tests.training.train.project import LENGTH, make_project, tiny_profile
from training.data.collate import pad_collate
from training.data.dataset import ClipDataset
from training.data.table import fold_sets
from training.data.transforms import prepare_batch
from training.models import MODEL_NAMES
from training.train import checkpoint, predict, stage

ATTENTION = {"luvnet", "luvnet_tfwo", "usvn"}


def _reload_probs(root, ckpt_path, fold: int) -> np.ndarray:
    """Validation probabilities recomputed from checkpoint.pt alone (build_model + state_dict)."""
    model, ckpt = checkpoint.load_model(ckpt_path)
    table, _ = stage.read_clips(root)
    data = ClipDataset(fold_sets(table, fold)["validation"], root / "artifacts/clips",
                       ckpt["train_params"]["frame_size"])
    batch = pad_collate([data[i] for i in range(len(data))], ckpt["train_params"]["clip_length"])
    with torch.no_grad():
        return torch.sigmoid(model(prepare_batch(batch["frames"]), batch["mask"])["logits"]).numpy()


def _check_predictions(path, model: str, ckpt: dict) -> pd.DataFrame:
    table = pq.read_table(path)
    assert table.schema.equals(predict.schema()), table.schema
    frame = table.to_pandas()
    assert frame.groupby("set")["role"].agg(set).to_dict() == {
        "validation": {"fold0"}, "internal_test": {"internal_test"}, "temporal": {"temporal"}}
    assert len(frame) == 18 and (frame["fold"] == 0).all() and (frame["model"] == model).all()
    assert frame["clip_id"].is_unique
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        assert (frame[f"thr_{slug}"] == ckpt["thresholds"][pattern]).all()
        assert frame[f"prob_{slug}"].between(0, 1).all()
        attention = frame[f"attention_{slug}"]
        if model not in ATTENTION:
            assert attention.isna().all()
            continue
        for weights, n_real in zip(attention, frame["n_real_frames"]):
            assert len(weights) == LENGTH and weights.dtype == np.float32
            assert np.all(weights[n_real:] == 0) and weights[:n_real].sum() == pytest.approx(1, abs=1e-5)
    return frame


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_two_training_steps_write_a_valid_run(tmp_path, model):
    root = make_project(tmp_path, profile=tiny_profile(batch_size=6))  # 12 training clips: 2 steps
    assert stage.main(root / "params.yaml", model=model, fold=0, root=root) == 0
    out = root / "artifacts" / "models" / model / "fold0"
    assert sorted(p.name for p in out.iterdir()) == sorted([*stage.OUTPUTS, stage.METRICS])
    ckpt = checkpoint.load_checkpoint(out / "checkpoint.pt")
    assert ckpt["model_name"] == model and ckpt["patterns"] == list(PATTERNS)
    assert ckpt["epoch"] == 0 and ckpt["best_epoch"] == 0 and np.isfinite(ckpt["best_val_loss"])
    assert ckpt["train_params"]["profile"] == "tiny" and ckpt["train_params"]["seed"] == 7
    assert ckpt["model_config"]["in_chans"] == 1 and set(ckpt["thresholds"]) == set(PATTERNS)
    frame = _check_predictions(out / "predictions.parquet", model, ckpt)
    validation = frame[frame["set"] == "validation"].sort_values("clip_id")
    probs = validation[[f"prob_{s}" for s in PATTERN_SLUGS]].to_numpy()
    assert np.allclose(_reload_probs(root, out / "checkpoint.pt", 0), probs, atol=1e-5)  # self-describing
    log = pd.read_csv(out / "log.csv")
    assert list(log.columns) == list(stage.LOG_COLUMNS) and log["epoch"].tolist() == [0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == 0 and metrics["val_loss"] == pytest.approx(log["val_loss"][0], rel=1e-5)
    assert not checkpoint.resume_dir(root, model, 0).exists()  # removed after success


def _run(root, **profile):
    assert stage.main(root / "params.yaml", model="luvnet", fold=1, root=root) == 0
    out = root / "artifacts" / "models" / "luvnet" / "fold1"
    ckpt = checkpoint.load_checkpoint(out / "checkpoint.pt")
    return ckpt, pd.read_parquet(out / "predictions.parquet"), pd.read_csv(out / "log.csv")


def test_test_sets_change_neither_thresholds_nor_model_selection(tmp_path):
    profile = tiny_profile(epochs=4, lr=0.01)
    ckpt, preds, log = _run(make_project(tmp_path / "a", profile=profile))
    other = make_project(tmp_path / "b", profile=profile)
    consensus = pd.read_parquet(other / "artifacts/labels/consensus.parquet")
    tests = consensus["clip_id"].str.startswith(("P3", "P4"))  # internal_test and temporal patients
    consensus.loc[tests, "label"] = 1 - consensus.loc[tests, "label"]
    consensus.to_parquet(other / "artifacts/labels/consensus.parquet")
    for video in ("P30_V0", "P40_V0", "P41_V0"):  # other test frames: other test predictions
        path = other / "artifacts/clips/cache" / f"{video}.npy"
        np.save(path, 255 - np.load(path))
    ckpt2, preds2, log2 = _run(other)
    assert ckpt["thresholds"] == ckpt2["thresholds"] and ckpt["best_epoch"] == ckpt2["best_epoch"]
    assert log["val_loss"].tolist() == log2["val_loss"].tolist()
    val = [f"prob_{s}" for s in PATTERN_SLUGS]
    assert np.array_equal(preds.loc[preds["set"] == "validation", val], preds2.loc[preds2["set"] == "validation", val])
    changed = preds["set"] != "validation"
    assert not np.array_equal(preds.loc[changed, val], preds2.loc[changed, val])  # the change did reach the tests
    assert (preds.loc[changed, "label_a_lines"] != preds2.loc[changed, "label_a_lines"]).all()


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    root = make_project(tmp_path)
    assert stage.main(root / "params.yaml", model="resnet", fold=0, root=root) == 2
    assert "not a model" in capsys.readouterr().err
    assert stage.main(root / "params.yaml", model="luvnet", fold=9, root=root) == 2
    assert "fold below split.n_folds" in capsys.readouterr().err
    assert stage.main(root / "params.yaml", model="luvnet", fold=0, profile="nope", root=root) == 2
    assert "profile 'nope'" in capsys.readouterr().err
    (root / "artifacts/splits/splits.parquet").unlink()
    assert stage.main(root / "params.yaml", model="luvnet", fold=0, root=root) == 2
    assert "run the split stage first" in capsys.readouterr().err
