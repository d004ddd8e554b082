"""R(2+1)D (Tran et al. CVPR 2018) as the seed built it, from scratch.

The seed used the widely copied "R2Plus1D" PyTorch network: every 3x3x3 convolution is factorised into a spatial
(1, d, d) conv to M channels and a temporal (t, 1, 1) conv, each followed by BatchNorm3d and ReLU, with
M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out)) so that the factorised pair has about the parameters of the full
3-D kernel. The stem is spatial (1, 7, 7) stride (1, 2, 2) to 45 channels, then temporal (3, 1, 1) to 64.
Residual blocks (conv-BN-ReLU, conv-BN, + shortcut, ReLU) form 4 stages of 64-128-256-512 channels; stages 2-4
halve T, H and W in their first block (shortcut: a factorised 1x1x1 conv with stride 2 + BN). Note that each
factorised conv already ends with its own BN + ReLU, so the block's BN follows a ReLU: that is the seed's network
and is kept (it changes the count by a few thousand parameters). Then AdaptiveAvgPool3d(1) and Linear(512, 4).
layers (2,2,2,2) -> R(2+1)D-18 (33.2 M parameters), (3,4,6,3) -> R(2+1)D-34 (63.5 M). `width` scales all channel
counts by width/64 for CPU demos.

3-D CNNs see a fixed-length clip: padded frames are set to 0 before the network (see c3d.py).
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.frames import check_inputs, expand_channels

N_PATTERNS = 4
STAGE_CHANNELS = (64, 128, 256, 512)
STEM_INTERMEDIATE = 45


def intermediate_channels(t: int, d: int, n_in: int, n_out: int) -> int:
    """M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out)): the factorised pair's parameters ~ the t x d x d conv's."""
    return max(1, (t * d * d * n_in * n_out) // (d * d * n_in + t * n_out))


class FactorisedConv(nn.Module):
    """(2+1)D conv: Conv3d (1, d, d) -> BN -> ReLU -> Conv3d (t, 1, 1) -> BN -> ReLU.

    (B, N_in, T, H, W) -> (B, N_out, T', H', W'); `mid` overrides M (the stem's 45), `spatial_stride` the H/W stride.
    """

    def __init__(self, n_in: int, n_out: int, t: int, d: int, stride: int = 1, mid: int | None = None,
                 spatial_stride: int | None = None) -> None:
        super().__init__()
        mid = mid if mid is not None else intermediate_channels(t, d, n_in, n_out)
        s_stride = spatial_stride if spatial_stride is not None else stride
        self.spatial = nn.Conv3d(n_in, mid, (1, d, d), stride=(1, s_stride, s_stride), padding=(0, d // 2, d // 2),
                                 bias=False)
        self.bn_spatial = nn.BatchNorm3d(mid)
        self.temporal = nn.Conv3d(mid, n_out, (t, 1, 1), stride=(stride, 1, 1), padding=(t // 2, 0, 0), bias=False)
        self.bn_temporal = nn.BatchNorm3d(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_spatial(self.spatial(x)))
        return torch.relu(self.bn_temporal(self.temporal(x)))


class ResBlock(nn.Module):
    """Two factorised 3x3x3 convs with BN, a shortcut (factorised 1x1x1 stride-2 conv + BN when downsampling), ReLU."""

    def __init__(self, n_in: int, n_out: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = FactorisedConv(n_in, n_out, 3, 3, stride=stride)
        self.bn1 = nn.BatchNorm3d(n_out)
        self.conv2 = FactorisedConv(n_out, n_out, 3, 3)
        self.bn2 = nn.BatchNorm3d(n_out)
        self.shortcut: nn.Module = (nn.Sequential(FactorisedConv(n_in, n_out, 1, 1, stride=2), nn.BatchNorm3d(n_out))
                                    if downsample else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(self.shortcut(x) + residual)


def _stage(n_in: int, n_out: int, blocks: int, downsample: bool) -> nn.Sequential:
    return nn.Sequential(ResBlock(n_in, n_out, downsample), *(ResBlock(n_out, n_out, False) for _ in range(blocks - 1)))


class R2Plus1D(nn.Module):
    """forward(x (B, T, C, H, W), mask (B, T) bool) -> {"logits": (B, 4), "attention": None}. Any T, H, W >= 1."""

    def __init__(self, in_chans: int, layers: list[int], width: int) -> None:
        super().__init__()
        self.in_chans = in_chans
        channels = [max(1, c * width // 64) for c in STAGE_CHANNELS]
        # Stem: spatial (1,7,7) stride (1,2,2) to 45 channels, temporal (3,1,1) stride 1.
        self.stem = FactorisedConv(in_chans, channels[0], 3, 7, stride=1, spatial_stride=2,
                                   mid=max(1, STEM_INTERMEDIATE * width // 64))
        stages = []
        for i, blocks in enumerate(layers):
            n_in = channels[max(i - 1, 0)]
            stages.append(_stage(n_in, channels[i], blocks, downsample=i > 0))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Linear(channels[-1], N_PATTERNS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """x (B, T, C, H, W) float32, mask (B, T) bool -> logits (B, 4), attention None."""
        check_inputs(x, mask, self.in_chans)
        x = torch.where(mask[:, :, None, None, None], x, x.new_zeros(()))
        x = expand_channels(x, self.in_chans, dim=2).transpose(1, 2)  # (B, C, T, H, W)
        features = self.pool(self.stages(self.stem(x))).flatten(1)
        return {"logits": self.classifier(features), "attention": None}
