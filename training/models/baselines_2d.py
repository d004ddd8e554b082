"""Baselines built on a per-frame 2-D encoder: USVN, the frame CNN (max over frames) and CNN-LSTM.

Shapes: B clips, T frames, F encoder features, H heads. All follow T and the mask; padded frames never reach
the encoder (see frames.FrameEncoder).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from training.models.frames import FrameEncoder, check_inputs
from training.models.pooling import QueryAttentionPool, frame_importance

N_PATTERNS = 4


class USVN(nn.Module):
    """US Video Network (Smith, Lineberger & Baker, MICCAI 2023): one (H, d) query set, attention pooling over
    time per head -> (B, F) -> Dropout-Linear(F, 4).

    forward(x (B, T, C, H, W), mask (B, T) bool) -> {"logits": (B, 4), "attention": (B, 4, T)}; the attention is
    the single pooling curve (heads summed / H), repeated for the 4 patterns.
    """

    def __init__(self, encoder: str, encoder_weights: str | None, in_chans: int, heads: int,
                 dropout: float) -> None:
        super().__init__()
        self.encoder = FrameEncoder(encoder, in_chans, weights=encoder_weights)
        features = self.encoder.num_features
        self.pool = QueryAttentionPool(features, heads, queries=1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, N_PATTERNS))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, T, C, H, W) float32, mask (B, T) bool -> logits (B, 4), attention (B, 4, T)."""
        check_inputs(x, mask, self.encoder.in_chans)
        pooled, attention = self.pool(self.encoder(x, mask), mask)  # (B, 1, F), (B, 1, H, T)
        curve = frame_importance(attention)  # (B, 1, T)
        return {"logits": self.head(pooled[:, 0]), "attention": curve.repeat(1, N_PATTERNS, 1)}


class Frame2D(nn.Module):
    """Frame CNN: encoder + Linear(F, 4) on every frame; the clip logit is the max over REAL frames.

    max of per-frame logits = logit of the max of per-frame sigmoids (sigmoid is monotone), the seed's
    clip-level rule for its 2-D baseline. Trained on clip labels this is multiple-instance learning.
    forward(x (B, T, C, H, W), mask (B, T) bool) -> {"logits": (B, 4), "attention": None,
    "frame_logits": (B, T, 4) (-inf at padded frames)}.
    """

    def __init__(self, encoder: str, encoder_weights: str | None, in_chans: int) -> None:
        super().__init__()
        self.encoder = FrameEncoder(encoder, in_chans, weights=encoder_weights)
        self.classifier = nn.Linear(self.encoder.num_features, N_PATTERNS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """x (B, T, C, H, W) float32, mask (B, T) bool -> logits (B, 4), attention None, frame_logits (B, T, 4)."""
        check_inputs(x, mask, self.encoder.in_chans)
        frame_logits = self.classifier(self.encoder(x, mask)).masked_fill(~mask[..., None], float("-inf"))
        return {"logits": frame_logits.amax(dim=1), "attention": None, "frame_logits": frame_logits}


def _check_prefix_mask(mask: torch.Tensor) -> torch.Tensor:
    """Lengths (B,) int64 on the CPU; the real frames must come first (tail padding), as the clip loader pads."""
    lengths = mask.sum(dim=1)
    positions = torch.arange(mask.shape[1], device=mask.device)
    if not bool(torch.equal(mask, positions[None, :] < lengths[:, None])):
        raise ValueError("cnn_lstm needs tail padding: each mask row must be True for its first n frames, then "
                         "False (pad clips at the end, as curation.clip_cache.load_clip does)")
    return lengths.cpu()


class CNNLSTM(nn.Module):
    """CNN-LSTM: encoder with a `features`-unit classifier -> LSTM(batch_first) over the real frames ->
    ReLU(last real step) -> Linear(hidden, 4).

    The seed ran its LSTM without batch_first on (B, T, .) tensors, so it recursed over the batch; here time is
    dim 1 and packing stops each clip at its last real frame. forward(x (B, T, C, H, W), mask (B, T) bool, tail
    padding) -> {"logits": (B, 4), "attention": None}.
    """

    def __init__(self, encoder: str, encoder_weights: str | None, in_chans: int, features: int, hidden: int,
                 layers: int) -> None:
        super().__init__()
        self.encoder = FrameEncoder(encoder, in_chans, num_classes=features, weights=encoder_weights)
        self.lstm = nn.LSTM(features, hidden, num_layers=layers, batch_first=True)
        self.classifier = nn.Linear(hidden, N_PATTERNS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """x (B, T, C, H, W) float32, mask (B, T) bool -> logits (B, 4), attention None."""
        check_inputs(x, mask, self.encoder.in_chans)
        lengths = _check_prefix_mask(mask)
        packed = pack_padded_sequence(self.encoder(x, mask), lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n (layers, B, hidden): the top layer's state at each last real step
        return {"logits": self.classifier(torch.relu(h_n[-1])), "attention": None}
