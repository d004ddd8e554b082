"""Cost counters on tiny models: parameters, GMACs (FlopCounterMode) and inference time."""

from __future__ import annotations

import pytest
import torch

from tests.training.models.zoo import FRAMES, POOLED_2D, TINY, clip_batch
from training.models import MODEL_NAMES, build_model
from training.models.cost import count_gmacs, count_parameters, inference_seconds, model_summary


def test_count_parameters_by_hand():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    model[1].weight.requires_grad_(False)
    assert count_parameters(model) == 3 * 4 + 4 + 4 * 2 + 2
    assert count_parameters(model, trainable_only=True) == 3 * 4 + 4 + 2
    summary = model_summary(model)
    assert summary["params"] == 26 and summary["trainable_params"] == 18


def test_gmacs_of_a_linear_layer_by_hand():
    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(10, 5, bias=False)

        def forward(self, x, mask):
            return self.fc(x.flatten(1))

    x = torch.zeros(2, 1, 1, 2, 5)
    assert count_gmacs(Probe(), x, torch.ones(2, 1, dtype=torch.bool)) == pytest.approx(2 * 10 * 5 / 1e9)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gmacs_positive_and_mode_restored(name):
    model = build_model(name, TINY[name]).train()
    frames = FRAMES.get(name, 4)
    x, mask = clip_batch([frames], frames)
    assert count_gmacs(model, x, mask) > 0
    assert model.training


@pytest.mark.parametrize("name", POOLED_2D)
def test_gmacs_scale_with_frames(name):
    """Per-frame encoders: doubling the real frames about doubles the MACs (padded frames cost nothing)."""
    model = build_model(name, TINY[name])
    short = count_gmacs(model, *clip_batch([4], 4))
    long = count_gmacs(model, *clip_batch([8], 8))
    assert 1.8 < long / short <= 2.05
    assert count_gmacs(model, *clip_batch([4], 8)) == pytest.approx(short, rel=0.1)


def test_inference_seconds():
    model = build_model("frame2d", TINY["frame2d"]).train()
    assert inference_seconds(model, *clip_batch([3], 3), repeats=2) > 0
    assert model.training
    with pytest.raises(ValueError, match="repeats"):
        inference_seconds(model, *clip_batch([3], 3), repeats=0)
