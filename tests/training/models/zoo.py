"""Tiny configurations of every model (CPU-fast) and clip/mask helpers for the model tests."""

from __future__ import annotations

import torch

from training.models import MODEL_NAMES

ENC = {"encoder": "test_resnet"}  # timm test model: 0.37 M parameters, F = 96
TINY: dict[str, dict] = {
    "luvnet": {**ENC, "heads": 8, "kernel": 3, "attn_hidden": 32, "head_hidden": 16},
    "luvnet_tfwo": {**ENC, "heads": 8, "attn_hidden": 32},
    "usvn": {**ENC, "heads": 4},
    "c3d": {"width": 4, "fc": 16, "frames": 16, "size": 32},
    "r2plus1d": {"layers": [1, 1, 1, 1], "width": 8},
    "frame2d": dict(ENC),
    "cnn_lstm": {**ENC, "features": 12, "hidden": 8, "layers": 2},
}
assert set(TINY) == set(MODEL_NAMES)
FRAMES = {"c3d": 16}  # C3D's fc6 is built for config frames; every other model takes any T
SIZE = 32
ATTENTION_MODELS = ("luvnet", "luvnet_tfwo", "usvn")
POOLED_2D = ("luvnet", "luvnet_tfwo", "usvn", "frame2d", "cnn_lstm")  # encoder sees real frames only


def clip_batch(lengths: list[int], frames: int, channels: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T, C, SIZE, SIZE) with padded frames full of large garbage, mask (B, T) with tail padding."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), frames, channels, SIZE, SIZE, generator=gen)
    mask = torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]
    garbage = 1e3 * torch.randn(x.shape, generator=gen)
    return torch.where(mask[:, :, None, None, None], x, garbage), mask
