"""Frame transforms in torch: resize (once, uint8), normalise (batch, float) and the seed's augmentation done right.

The seed (vidaug) flipped and rotated clips with p=0.5 each, the same way for every frame of a clip; here the
same happens on the batch tensor: one flip decision and one angle per clip, drawn from a generator keyed by
(seed, epoch, clip index), so a clip's augmentation does not depend on batch composition, worker or rank.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# ImageNet statistics (the seed's A.Normalize). A grayscale frame that an encoder expands to 3 channels gets
# the mean of the three (one value per channel cannot differ for identical channels).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN = sum(IMAGENET_MEAN) / 3
GRAY_STD = sum(IMAGENET_STD) / 3


def to_chw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(n, H, W) or (n, H, W, 3) uint8 -> (n, C, H, W) uint8 tensor (C = 1 or 3)."""
    tensor = torch.as_tensor(np.asarray(frames))
    return tensor.unsqueeze(1) if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2)


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(n, C, H, W) uint8 -> (n, C, size, size) uint8: bilinear with antialiasing (area-like when shrinking).

    Unchanged (no copy) when already size x size.
    """
    if frames.shape[-2:] == (size, size):
        return frames
    out = F.interpolate(frames.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def normalise(frames: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) uint8 or float in [0, 255] -> float32 normalised with ImageNet statistics."""
    channels = frames.shape[-3]
    mean = torch.tensor(IMAGENET_MEAN if channels == 3 else (GRAY_MEAN,) * channels, device=frames.device)
    std = torch.tensor(IMAGENET_STD if channels == 3 else (GRAY_STD,) * channels, device=frames.device)
    x = frames.float().div_(255.0)
    return (x - mean[:, None, None]) / std[:, None, None]


def augment_params(seed: int, epoch: int, indices: torch.Tensor, flip_p: float, rotate_p: float,
                   max_degrees: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip augmentation: flip (B,) bool and angle (B,) float32 degrees (0 = no rotation).

    Each clip's draws come from its own generator seeded by (seed, epoch, dataset index): reproducible and
    identical whichever process or batch the clip lands in.
    """
    flips, angles = [], []
    for index in indices.tolist():
        state = np.random.SeedSequence([seed, epoch, int(index)]).generate_state(2, dtype=np.uint64)
        gen = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
        u = torch.rand(3, generator=gen)
        flips.append(bool(u[0] < flip_p))
        angles.append(float((2 * u[2] - 1) * max_degrees) if u[1] < rotate_p else 0.0)
    return torch.tensor(flips, dtype=torch.bool), torch.tensor(angles, dtype=torch.float32)


def subsample_offsets(seed: int, epoch: int, indices: torch.Tensor, n_real: torch.Tensor, stride: int) -> torch.Tensor:
    """(B,) int64 first frame of each clip's temporal subsample: keyed by (seed, epoch, clip), below
    min(stride, n_real) so at least one real frame is kept."""
    out = []
    for index, n in zip(indices.tolist(), n_real.tolist()):
        state = np.random.SeedSequence([seed, epoch, int(index), 1]).generate_state(1, dtype=np.uint64)
        out.append(int(state[0] % np.uint64(min(stride, n))))
    return torch.tensor(out, dtype=torch.int64)


def subsample_frames(frames: torch.Tensor, mask: torch.Tensor, offsets: torch.Tensor,
                     stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every `stride`-th frame of each clip from its offset: frames (B, T, ...) and mask (B, T) ->
    (B, ceil(T / stride), ...) and the matching mask (positions past the clip end are padding, False)."""
    if stride == 1:
        return frames, mask
    steps = -(-frames.shape[1] // stride)
    index = offsets[:, None] + stride * torch.arange(steps)[None, :]  # (B, T')
    inside = index < frames.shape[1]
    index = index.clamp(max=frames.shape[1] - 1)
    rows = torch.arange(frames.shape[0])[:, None]
    return frames[rows, index], mask[rows, index] & inside


def rotate_clips(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate every frame of clip b by degrees[b] about the image centre (bilinear, black outside).

    x (B, T, C, H, W) float with 0 = black; degrees (B,) -> same shape. Frames and channels are stacked as
    channels of one grid_sample call per clip, so all frames of a clip share one sampling grid by construction.
    """
    b, t, c, h, w = x.shape
    rad = degrees.to(device=x.device, dtype=torch.float32) * (math.pi / 180.0)
    cos, sin, zero = torch.cos(rad), torch.sin(rad), torch.zeros_like(rad)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, (b, t * c, h, w), align_corners=False).to(x.dtype)
    out = F.grid_sample(x.reshape(b, t * c, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(b, t, c, h, w)


def augment_clips(x: torch.Tensor, flip: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Horizontal flip where flip[b], then rotation by degrees[b] where non-zero; untouched clips stay exact.

    x (B, T, C, H, W) float in [0, 1] (before normalisation, so the rotation's fill is black) -> same shape.
    """
    flip = flip.to(x.device)
    x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
    rotate = (degrees != 0).nonzero().flatten().to(x.device)
    if rotate.numel():
        x = x.clone()
        x[rotate] = rotate_clips(x[rotate], degrees.to(x.device)[rotate])
    return x


def prepare_batch(frames: torch.Tensor, flip: torch.Tensor | None = None,
                  degrees: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T, C, H, W) uint8 (on the target device) -> normalised float32, augmented when flip/degrees are given."""
    if flip is None:
        return normalise(frames)
    x = augment_clips(frames.float().div_(255.0), flip, degrees)
    return normalise(x.mul_(255.0))
