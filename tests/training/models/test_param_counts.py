"""Paper-size models have the seed's parameter counts (built on the meta device: real modules, no memory/init)."""

from __future__ import annotations

import pytest
import torch

from training.models import build_model
from training.models.cost import count_parameters


def paper_params(name: str, config: dict | None = None) -> int:
    with torch.device("meta"):
        return count_parameters(build_model(name, config or {}))


@pytest.mark.parametrize(("encoder", "expected"), [("densenet161", 136_222_884), ("resnet50", 121_046_596)])
def test_luvnet_exact(encoder, expected):
    assert paper_params("luvnet", {"encoder": encoder}) == expected


def test_meta_count_equals_real_count():
    """The meta-device shortcut counts what a real build allocates (checked on the ResNet-50 LUV-Net)."""
    assert count_parameters(build_model("luvnet", {"encoder": "resnet50"})) == 121_046_596


@pytest.mark.parametrize(("name", "config", "millions", "digits"), [
    ("luvnet_tfwo", {}, 62.68, 2),
    ("usvn", {}, 26.48, 2),
    ("c3d", {}, 214.3, 1),
    ("r2plus1d", {}, 33.2, 1),
    ("r2plus1d", {"layers": [3, 4, 6, 3]}, 63.5, 1),
])
def test_paper_millions(name, config, millions, digits):
    assert round(paper_params(name, config) / 1e6, digits) == millions


def test_c3d_fc6_follows_clip_shape():
    with torch.device("meta"):
        assert build_model("c3d").classifier[1].in_features == 41472  # the seed's hard-wired 30x256x256 value
        assert build_model("c3d", {"frames": 16, "size": 112}).classifier[1].in_features == 8192  # C3D paper
