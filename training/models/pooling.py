"""Multi-head query attention pooling over time (LUV-Net's per-pattern pooling and USVN's single-query pooling).

For each of P query sets q_p (H heads of size d = F / H), frame t's score in head j is <h_tj, q_pj> / sqrt(d);
a softmax over the real frames per head gives weights, and the pooled feature is the weighted sum of the frame
features, head by head, concatenated back to F. Padded frames get a -inf score (the seed used -50, which still
leaks weight to padding when real scores are low), so their weight is exactly 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim (time) with padded positions at exactly 0.

    scores (..., T) float, mask broadcastable to scores, True = real. Needs >= 1 real position per row.
    """
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real frames: values (B, T, F), mask (B, T) bool -> (B, F)."""
    weights = mask.to(values.dtype).unsqueeze(-1)
    total = torch.where(mask.unsqueeze(-1), values, values.new_zeros(())).sum(dim=1)
    return total / weights.sum(dim=1)


class QueryAttentionPool(nn.Module):
    """P query sets x H heads attention pooling: h (B, T, F) + mask (B, T) -> pooled (B, P, F), attention (B, P, H, T).

    The queries are `randn(P, H, d)` as in the seed. F must be divisible by H.
    """

    def __init__(self, features: int, heads: int, queries: int) -> None:
        super().__init__()
        if heads < 1 or features % heads != 0:
            raise ValueError(f"the encoder's feature size F={features} is not divisible by heads={heads}; choose "
                             f"heads among the divisors of {features} (e.g. 8 for DenseNet-161's 2208)")
        self.heads = heads
        self.head_dim = features // heads
        self.query = nn.Parameter(torch.randn(queries, heads, self.head_dim))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, T, F) float, mask (B, T) bool -> pooled (B, P, F), attention (B, P, H, T) (sums to 1 over real t)."""
        batch, time, features = h.shape
        heads = h.view(batch, time, self.heads, self.head_dim)
        scores = torch.einsum("bthd,phd->bpht", heads, self.query) / math.sqrt(self.head_dim)
        attention = masked_softmax(scores, mask[:, None, None, :])
        pooled = torch.einsum("bpht,bthd->bphd", attention, heads)
        return pooled.reshape(batch, -1, features), attention


def frame_importance(attention: torch.Tensor) -> torch.Tensor:
    """Per-head attention (B, P, H, T) -> frame importance (B, P, T): sum over heads / H (the seed's attention plot)."""
    return attention.mean(dim=2)
