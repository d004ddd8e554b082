"""LUV-Net: exact paper parameter counts, shapes, masking and the temporal branch (real torch, tiny encoder)."""

from __future__ import annotations

import pytest
import torch

from training.models import build_model
from training.models.cost import count_parameters

TINY = {"encoder": "test_resnet", "heads": 8, "kernel": 3, "attn_hidden": 32, "head_hidden": 16}


@pytest.mark.parametrize(("encoder", "expected"), [("densenet161", 136_222_884), ("resnet50", 121_046_596)])
def test_paper_parameter_count(encoder, expected):
    assert count_parameters(build_model("luvnet", {"encoder": encoder})) == expected


def test_tfwo_parameter_count():
    assert round(count_parameters(build_model("luvnet_tfwo")) / 1e6, 2) == 62.68


def test_heads_must_divide_features():
    with pytest.raises(ValueError, match="not divisible by heads=7"):
        build_model("luvnet", {**TINY, "heads": 7})


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match="kernel must be odd"):
        build_model("luvnet", {**TINY, "kernel": 4})


def test_temporal_branch_sees_neighbouring_frames():
    """Permuting frames changes the logits: the temporal conv is order-aware (attention pooling alone is not)."""
    torch.manual_seed(0)
    model = build_model("luvnet", TINY).eval()
    x = torch.randn(1, 6, 3, 32, 32)
    mask = torch.ones(1, 6, dtype=torch.bool)
    with torch.no_grad():
        a = model(x, mask)["logits"]
        b = model(x[:, torch.tensor([5, 0, 3, 1, 4, 2])], mask)["logits"]
    assert not torch.allclose(a, b, atol=1e-6)
