"""LUV-Net specifics: config errors, the temporal branch and its masked BatchNorm."""

from __future__ import annotations

import pytest
import torch

from tests.training.models.zoo import TINY, clip_batch
from training.models import build_model
from training.models.luvnet import TemporalBranch


def test_heads_must_divide_features():
    with pytest.raises(ValueError, match=r"F=96 is not divisible by heads=7"):
        build_model("luvnet", {**TINY["luvnet"], "heads": 7})


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match="kernel must be odd"):
        build_model("luvnet", {**TINY["luvnet"], "kernel": 4})


def test_temporal_branch_sees_frame_order():
    """Permuting frames changes the logits: the temporal conv is order-aware (attention pooling alone is not)."""
    torch.manual_seed(0)
    model = build_model("luvnet", TINY["luvnet"]).eval()
    tfwo = build_model("luvnet_tfwo", TINY["luvnet_tfwo"]).eval()
    x, mask = clip_batch([6], 6)
    order = torch.tensor([5, 0, 3, 1, 4, 2])
    with torch.no_grad():
        assert not torch.allclose(model(x, mask)["logits"], model(x[:, order], mask)["logits"], atol=1e-6)
        torch.testing.assert_close(tfwo(x, mask)["logits"], tfwo(x[:, order], mask)["logits"])


def test_temporal_branch_training_statistics_ignore_padding():
    """In training mode, BatchNorm statistics come from real frames only: padding does not change the output."""
    torch.manual_seed(0)
    branch = TemporalBranch(features=8, kernel=3).train()
    h = torch.randn(2, 5, 8)
    short = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    h = h * short[..., None]  # the encoder zeroes padded rows
    padded = torch.cat([h, torch.zeros(2, 4, 8)], dim=1)
    mask = torch.cat([short, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(branch(padded, mask), branch(h, short))
