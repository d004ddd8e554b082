"""The `train:` section of params.yaml: run-wide settings plus named profiles (demo: CPU minutes; paper: the seed).

A profile holds everything that shapes the result (frame size, batch, optimiser, schedule, augmentation, model
configs); the run-wide keys say how to run it (device, precision, workers, resume cadence). `resolved()` gives
the flat dict stored in checkpoints and hashed for resume compatibility.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from luskit.config import require

Switch = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class Profile:
    """One training recipe. Defaults = the seed's LUV-Net script (luvnet-reference.md section 4)."""

    frame_size: int = 256  # frames are resized (in torch) from the cache's size to this square side
    batch_size: int = 4  # clips per forward pass, summed over all processes (DDP splits it evenly)
    accumulation: int = 1  # forward passes per optimiser step (effective batch = batch_size * accumulation)
    epochs: int = 151  # the seed: range(0, 151)
    patience: int = 20  # stop when the selection metric has not improved for this many epochs (the seed: 20)
    select: Literal["val_loss", "val_macro_auroc"] = "val_loss"  # model selection on the validation fold
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-6  # the seed's Adam learning rate (no scheduler)
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: Literal["constant", "cosine", "plateau"] = "constant"  # cosine: per step to 0; plateau: x0.1, patience 3
    warmup_epochs: float = 0.0  # linear warm-up (cosine), in epochs
    pos_weight: bool = False  # BCE pos_weight = negatives / positives per pattern in the training folds
    augment: bool = True  # the seed's clip-consistent flip and rotation
    flip_p: float = 0.5
    rotate_p: float = 0.5
    rotate_degrees: float = 10.0
    # Training-time temporal subsampling per model, {model: stride}: each clip is trained on every stride-th
    # frame from a random offset (validation and prediction always see every frame). Only for models that take
    # any clip length (not c3d, built for a fixed frame count). The seed: none (1).
    frame_stride: dict[str, int] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # build_model configs (missing = paper)

    def __post_init__(self) -> None:
        require(self.frame_size >= 16, f"frame_size={self.frame_size}: use 16 or more")
        require(self.batch_size >= 1 and self.accumulation >= 1, "batch_size and accumulation: use 1 or more")
        require(self.epochs >= 1 and self.patience >= 1, "epochs and patience: use 1 or more")
        require(self.lr > 0 and self.weight_decay >= 0, f"lr={self.lr} must be > 0, weight_decay >= 0")
        require(0 <= self.warmup_epochs < self.epochs, f"warmup_epochs={self.warmup_epochs}: use [0, epochs)")
        require(0 <= self.flip_p <= 1 and 0 <= self.rotate_p <= 1, "flip_p and rotate_p are probabilities")
        require(0 <= self.rotate_degrees <= 180, f"rotate_degrees={self.rotate_degrees}: use 0..180")
        require(all(v >= 1 for v in self.frame_stride.values()), f"frame_stride={self.frame_stride}: use 1 or more")
        require("c3d" not in self.frame_stride or self.frame_stride["c3d"] == 1,
                "frame_stride: c3d is built for a fixed frame count; leave it out")


@dataclass(frozen=True)
class TrainParams:
    """The `train:` section of params.yaml."""

    profile: str = "demo"  # which entry of `profiles` to run (`luskit train --profile` overrides)
    models: tuple[str, ...] = ("luvnet", "usvn", "c3d")  # the DVC stage's matrix
    folds: tuple[int, ...] = (0, 1, 2, 3, 4)  # the DVC stage's matrix (folds of split.n_folds to train)
    seed: int = 234  # the seed's checkpoints: 234; drives init, shuffling, augmentation, dropout
    workers: int = 2  # DataLoader worker processes when clips are not preloaded
    threads: int = 0  # torch CPU threads per process (0 = torch's default, one per core)
    preload: Switch = "auto"  # keep every resized clip in RAM: auto = when they take <= preload_max_mb
    preload_max_mb: int = 4096
    device: str = "auto"  # auto = cuda when available (the local rank's GPU under torchrun), else cpu
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on a bf16-capable GPU, else fp32
    channels_last: Switch = "auto"  # auto = on for CUDA
    compile: bool = False  # torch.compile the model (GPU; costs start-up minutes)
    deterministic: bool = True  # deterministic kernels (training/train/determinism.py): same params, same weights
    sync_bn: Switch = "auto"  # SyncBatchNorm across GPUs under DDP (auto = when world size > 1 on CUDA)
    resume_every: int = 50  # save resume state every this many optimiser steps (and at every epoch end)
    eval_batch_size: int = 16
    quiet: bool = False  # no progress bars
    encoder_weights: dict[str, str] = field(default_factory=dict)  # timm encoder name -> local weights file
    profiles: dict[str, Profile] = field(default_factory=lambda: {"paper": Profile()})

    def __post_init__(self) -> None:
        require(self.profile in self.profiles,
                f"profile={self.profile!r} is not among profiles {sorted(self.profiles)}: add it or pick one")
        require(self.workers >= 0 and self.threads >= 0 and self.resume_every >= 1 and self.eval_batch_size >= 1,
                "workers >= 0, threads >= 0, resume_every >= 1 and eval_batch_size >= 1")
        require(len(set(self.folds)) == len(self.folds) and all(k >= 0 for k in self.folds),
                f"folds={self.folds}: distinct fold numbers >= 0")


# Keys that change how a run goes, not what it computes: left out of the resume key.
RUNTIME_KEYS = ("workers", "threads", "preload", "preload_max_mb", "resume_every", "eval_batch_size", "quiet", "models",
                "folds", "profiles")


def model_config(params: TrainParams, profile: Profile, name: str, clip_length: int) -> dict[str, Any]:
    """The build_model config of `name` under `profile`: the profile's entry, the local encoder weights named in
    `encoder_weights`, and for fixed-shape 3-D CNNs (c3d) the clip length and frame size."""
    config = dict(profile.models.get(name, {}))
    encoder = config.get("encoder")
    if encoder is None and name not in ("c3d", "r2plus1d"):
        encoder = "densenet161"  # the paper default of every per-frame encoder model
    if encoder in params.encoder_weights and "encoder_weights" not in config:
        config["encoder_weights"] = params.encoder_weights[encoder]
    if name == "c3d":
        config.setdefault("frames", clip_length)
        config.setdefault("size", profile.frame_size)
    return config


def resolved(params: TrainParams, profile_name: str) -> dict[str, Any]:
    """Flat, JSON-able description of a run's recipe: the profile's fields plus the run-wide keys."""
    profile = params.profiles[profile_name]
    base = {k: v for k, v in dataclasses.asdict(params).items() if k not in ("profiles", "profile")}
    recipe = {k: v for k, v in dataclasses.asdict(profile).items() if k != "models"}
    return {"profile": profile_name, **base, **recipe}
