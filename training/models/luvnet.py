"""LUV-Net (per-pattern attention pooling + temporal convolution branch) and its ablation without the branch.

Shapes: B clips, T frames, F encoder features, H heads, d = F / H, P = 4 patterns.

Differences from the seed (luvnet-reference.md section 3), all deliberate:
- padded frames are masked with -inf (weight exactly 0), not -50;
- the temporal branch averages over the REAL frames only (the seed's AdaptiveAvgPool1d averaged padding too),
  padded features are zeroed before the conv, and its BatchNorm statistics come from real frames only, so a padded
  clip gives the same result as the unpadded one;
- T follows the input and mask (the seed hard-coded 30 frames); the encoder runs only on real frames.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.frames import FrameEncoder, check_inputs
from training.models.pooling import QueryAttentionPool, frame_importance, masked_mean

N_PATTERNS = 4


class TemporalBranch(nn.Module):
    """Conv1d(F, F, k, pad=(k-1)//2, bias=False)-BN1d-ReLU over time, then the mean over real frames.

    h (B, T, F) with zero rows at padded frames, mask (B, T) -> (B, F).
    """

    def __init__(self, features: int, kernel: int) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 1 so 'same' padding keeps T; got {kernel}")
        self.conv = nn.Conv1d(features, features, kernel, padding=(kernel - 1) // 2, bias=False)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (B, T, F) float (padded rows 0), mask (B, T) bool -> (B, F)."""
        # Zero padding beyond the last real frame equals the conv's own zero padding of the unpadded clip.
        y = self.conv(h.transpose(1, 2)).transpose(1, 2)  # (B, T, F)
        # BatchNorm on the real positions only: padded positions must not shift the training statistics.
        normed = torch.relu(self.bn(y[mask]))  # (N_real, F)
        out = normed.new_zeros(y.shape)  # normed's dtype: BatchNorm may run in float32 under autocast
        out[mask] = normed
        return masked_mean(out, mask)


class LUVNet(nn.Module):
    """LUV-Net: per-frame encoder -> 4 pattern query sets -> MLP, plus the temporal branch, summed -> head.

    forward(x (B, T, C, H, W), mask (B, T) bool) -> {"logits": (B, 4), "attention": (B, 4, T)}.
    """

    def __init__(self, encoder: str, encoder_weights: str | None, in_chans: int, heads: int, kernel: int,
                 attn_hidden: int, head_hidden: int, dropout: float) -> None:
        super().__init__()
        self.encoder = FrameEncoder(encoder, in_chans, weights=encoder_weights)
        features = self.encoder.num_features
        self.pool = QueryAttentionPool(features, heads, N_PATTERNS)
        self.attn_fc = nn.Sequential(nn.Linear(N_PATTERNS * features, attn_hidden), nn.ReLU(),
                                     nn.Linear(attn_hidden, features))
        self.temporal = TemporalBranch(features, kernel)
        self.head = nn.Sequential(nn.Linear(features, head_hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(head_hidden, N_PATTERNS))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, T, C, H, W) float32, mask (B, T) bool -> logits (B, 4), attention (B, 4, T) (0 on padded frames)."""
        check_inputs(x, mask, self.encoder.in_chans)
        h = self.encoder(x, mask)  # (B, T, F)
        pooled, attention = self.pool(h, mask)  # (B, 4, F), (B, 4, H, T)
        fused = self.attn_fc(pooled.flatten(1)) + self.temporal(h, mask)
        return {"logits": self.head(fused), "attention": frame_importance(attention)}


class LUVNetTFWO(nn.Module):
    """LUV-Net without the temporal branch: the same pooling, then Linear(4F, attn_hidden)-ReLU-Linear(., 4).

    forward(x (B, T, C, H, W), mask (B, T) bool) -> {"logits": (B, 4), "attention": (B, 4, T)}.
    """

    def __init__(self, encoder: str, encoder_weights: str | None, in_chans: int, heads: int,
                 attn_hidden: int) -> None:
        super().__init__()
        self.encoder = FrameEncoder(encoder, in_chans, weights=encoder_weights)
        features = self.encoder.num_features
        self.pool = QueryAttentionPool(features, heads, N_PATTERNS)
        self.head = nn.Sequential(nn.Linear(N_PATTERNS * features, attn_hidden), nn.ReLU(),
                                  nn.Linear(attn_hidden, N_PATTERNS))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, T, C, H, W) float32, mask (B, T) bool -> logits (B, 4), attention (B, 4, T) (0 on padded frames)."""
        check_inputs(x, mask, self.encoder.in_chans)
        h = self.encoder(x, mask)
        pooled, attention = self.pool(h, mask)
        return {"logits": self.head(pooled.flatten(1)), "attention": frame_importance(attention)}
