"""Input checks and the per-frame 2-D encoder shared by LUV-Net, its ablation, USVN, the frame CNN and CNN-LSTM.

Every model takes x (B, T, C, H, W) float32 and mask (B, T) bool (True = real frame). The per-frame encoder runs
only on the real frames and scatters their features back into a (B, T, F) tensor whose padded rows are exactly 0,
so garbage in padded frames can neither leak into a result nor into BatchNorm statistics in training mode.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn


def check_inputs(x: torch.Tensor, mask: torch.Tensor, in_chans: int) -> None:
    """Validate the forward contract: x (B, T, C, H, W) float, mask (B, T) bool, C in {1, in_chans}, >= 1 real frame."""
    if x.dim() != 5:
        raise ValueError(f"x must be (B, T, C, H, W); got shape {tuple(x.shape)}")
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask must be a bool tensor of shape (B, T) = {tuple(x.shape[:2])}; "
                         f"got {mask.dtype} {tuple(mask.shape)}")
    if x.shape[2] not in (1, in_chans):
        raise ValueError(f"x has {x.shape[2]} channels; this model takes 1 (grayscale, expanded) or "
                         f"in_chans={in_chans}")
    # A clip without real frames has no defined softmax/mean/max; fail loudly rather than return NaN.
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every clip needs at least one real frame (a mask row is all False)")


def expand_channels(frames: torch.Tensor, in_chans: int, dim: int) -> torch.Tensor:
    """Grayscale (size 1 along `dim`) -> `in_chans` channels as an expand() view (no copy); else unchanged."""
    if frames.shape[dim] == 1 and in_chans != 1:
        shape = list(frames.shape)
        shape[dim] = in_chans
        return frames.expand(*shape)
    return frames


def real_frames(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> (N_real, C, H, W): the real frames in (clip, time) order. A view when nothing is padded."""
    if bool(mask.all()):
        return x.flatten(0, 1)
    return x[mask]


def scatter_frames(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N_real, F) -> (B, T, F) with the rows at padded frames exactly 0 (inverse of `real_frames`)."""
    batch, time = mask.shape
    if values.shape[0] == batch * time:
        return values.view(batch, time, -1)
    out = values.new_zeros(batch, time, values.shape[-1])
    out[mask] = values
    return out


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch.save file (weights_only: no code runs on load)."""
    if not path.is_file():
        raise FileNotFoundError(f"encoder_weights file {path} does not exist; give a local file path or null")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same actionable message
        raise ValueError(f"encoder_weights file {path} is not a readable state dict ({exc}); save one with "
                         f"torch.save(timm_model.state_dict(), PATH)") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"encoder_weights file {path} does not hold a state dict (name -> tensor)")
    return state


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load a local timm state dict into `encoder`, strict about names and shapes except the classifier.

    The file's classifier keys (e.g. an ImageNet head) are ignored, and the encoder's own classifier may stay
    untrained (CNN-LSTM's 300-unit projection). Anything else missing, unexpected or of another shape raises a
    ValueError naming the file. Never downloads.
    """
    path = Path(path)
    state = _read_state_dict(path)
    head = str(encoder.pretrained_cfg.get("classifier", "")) if hasattr(encoder, "pretrained_cfg") else ""

    def is_head(key: str) -> bool:
        return bool(head) and (key == head or key.startswith(head + "."))

    own = encoder.state_dict()
    state = {k: v for k, v in state.items() if not is_head(k)}
    missing = sorted(k for k in own if k not in state and not is_head(k))
    unexpected = sorted(k for k in state if k not in own)
    shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in state if k in own and state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(f"encoder_weights file {path} does not match encoder "
                         f"{type(encoder).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"shape mismatches {shapes[:5]} (first 5 of each); give the weights of the same timm "
                         f"model with the same in_chans")
    encoder.load_state_dict(state, strict=False)


class FrameEncoder(nn.Module):
    """A timm 2-D CNN applied to every real frame: (B, T, C, H, W) + mask (B, T) -> (B, T, F), padded rows 0.

    `num_classes=0` gives the pooled features (F = net.num_features); `num_classes=n` adds timm's own n-unit
    classifier (CNN-LSTM's 300-unit projection), F = n. Weights are random (`pretrained=False`) unless a local
    `weights` file is given.
    """

    def __init__(self, name: str, in_chans: int, num_classes: int = 0, weights: str | None = None) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.net = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
        self.num_features = num_classes if num_classes else int(self.net.num_features)
        if weights:
            load_encoder_weights(self.net, weights)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, C, H, W) float, mask (B, T) bool -> (B, T, F) float with zeros at padded frames."""
        frames = expand_channels(real_frames(x, mask), self.in_chans, dim=1)
        return scatter_frames(self.net(frames), mask)
