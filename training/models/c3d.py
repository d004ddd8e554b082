"""C3D (Tran et al. 2015) as the seed trained it, from scratch, with fc6 sized from the configured clip shape.

8 Conv3d 3x3x3 (64-128-256-256-512-512-512-512, scaled by width/64), pool1 (1,2,2), pools 2-5 (2,2,2), pool5 with
padding (0,1,1), then fc6 -> fc7 (`fc` units) -> fc8 (4) with ReLU and dropout. The seed hard-wired
fc6 = Linear(41472, 4096), valid only for 30x256x256 clips; here fc6's input is computed from `frames` x `size`,
and a clip of another shape raises a clear error.

A 3-D CNN sees a fixed-length clip: padded frames are set to 0 (the normalised mean intensity) before the network,
so their content cannot leak in, but their presence (the clip length) still shapes the result.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.frames import check_inputs, expand_channels

N_PATTERNS = 4
BASE_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
# (kernel, stride, padding) per pool, per dim (T, H, W); the index is the conv after which it applies.
POOLS = {0: ((1, 2, 2), (1, 2, 2), (0, 0, 0)), 1: ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
         3: ((2, 2, 2), (2, 2, 2), (0, 0, 0)), 5: ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
         7: ((2, 2, 2), (2, 2, 2), (0, 1, 1))}


def pooled_shape(frames: int, size: int) -> tuple[int, int, int]:
    """(T, H, W) after the 5 max-pools (the convs keep the shape: 3x3x3, padding 1)."""
    shape = [frames, size, size]
    for kernel, stride, pad in POOLS.values():
        shape = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(shape, kernel, stride, pad)]
        if min(shape) < 1:
            raise ValueError(f"c3d: a {frames}x{size}x{size} clip is too small for C3D's 5 poolings "
                             f"(needs frames >= 16 and size >= 16)")
    return shape[0], shape[1], shape[2]


def _features(in_chans: int, width: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_chans
    for i, base in enumerate(BASE_CHANNELS):
        out = max(1, base * width // 64)
        layers += [nn.Conv3d(channels, out, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        if i in POOLS:
            kernel, stride, pad = POOLS[i]
            layers.append(nn.MaxPool3d(kernel, stride, pad))
        channels = out
    return nn.Sequential(*layers)


class C3D(nn.Module):
    """forward(x (B, T, C, H, W), mask (B, T) bool) -> {"logits": (B, 4), "attention": None}.

    T must equal config `frames` and H = W = config `size` (fc6 is built for that shape).
    """

    def __init__(self, in_chans: int, width: int, fc: int, frames: int, size: int, dropout: float) -> None:
        super().__init__()
        self.in_chans, self.frames, self.size = in_chans, frames, size
        self.features = _features(in_chans, width)
        t, h, w = pooled_shape(frames, size)
        last = max(1, BASE_CHANNELS[-1] * width // 64)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(last * t * h * w, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(fc, N_PATTERNS))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """x (B, T, C, H, W) float32, mask (B, T) bool -> logits (B, 4), attention None."""
        check_inputs(x, mask, self.in_chans)
        if tuple(x.shape[1:2]) + tuple(x.shape[3:]) != (self.frames, self.size, self.size):
            raise ValueError(f"c3d was built for {self.frames} frames of {self.size}x{self.size} (config frames, "
                             f"size); got {x.shape[1]} frames of {x.shape[3]}x{x.shape[4]}: set the config to "
                             f"the clip shape")
        x = torch.where(mask[:, :, None, None, None], x, x.new_zeros(()))
        x = expand_channels(x, self.in_chans, dim=2).transpose(1, 2)  # (B, C, T, H, W)
        return {"logits": self.classifier(self.features(x)), "attention": None}
