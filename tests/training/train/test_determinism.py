"""train.deterministic: two trainings with the same params give bit-identical weights and predictions."""

from __future__ import annotations

import pandas as pd
import torch

from tests.training.train.project import make_project, tiny_profile
from training.train import checkpoint, stage
from training.train.determinism import deterministic


def _train(root, model: str) -> tuple[dict, pd.DataFrame]:
    assert stage.main(root / "params.yaml", model=model, fold=0, root=root) == 0
    out = root / "artifacts" / "models" / model / "fold0"
    return checkpoint.load_checkpoint(out / "checkpoint.pt"), pd.read_parquet(out / "predictions.parquet")


def test_same_params_same_weights(tmp_path, model="luvnet"):
    # DataLoader worker processes (preload off), two threads and augmentation on: the paths where order or
    # scheduling could leak into the result.
    kwargs = dict(profile=tiny_profile(epochs=2, augment=True), deterministic=True, workers=2, preload="off",
                  threads=2)
    first, preds = _train(make_project(tmp_path / "a", **kwargs), model)
    second, preds2 = _train(make_project(tmp_path / "b", **kwargs), model)
    weights, weights2 = first["state_dict"], second["state_dict"]
    assert list(weights) == list(weights2)
    differ = [k for k in weights if not torch.equal(weights[k], weights2[k])]
    assert not differ, f"weights differ between two identical trainings: {differ[:5]}"
    pd.testing.assert_frame_equal(preds, preds2)
    assert first["thresholds"] == second["thresholds"]


def test_the_switch_sets_deterministic_kernels_and_restores_the_state():
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    with deterministic(True):
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    with deterministic(False):
        assert torch.are_deterministic_algorithms_enabled() == before[0]
