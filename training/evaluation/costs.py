"""Model cost table: parameters, GMACs per clip and CPU inference seconds per clip.

Each model is rebuilt from a checkpoint's own description (model_name + model_config, through
training.models.build_model: the only way checkpoints become models) and its weights are loaded, so
the numbers are those of the evaluated network. Measured on this machine's CPU with batch 1; GPU
timings belong in BENCHMARKS.md (measured on a GPU machine), never here.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CostSettings:
    frames: int  # T of one clip (clips.length)
    size: int  # H = W when the checkpoint does not say (clips.size; training resizes to train_params.frame_size)
    channels: int = 1  # grayscale clips; 3-channel encoders expand the channel themselves
    repeats: int = 3
    warmup: int = 1


def input_shape(config: dict, train_params: dict, settings: CostSettings) -> tuple[int, int, int, int, int]:
    """(1, T, C, H, W) of one clip as the model saw it in training: the frame size it was trained at
    (train_params.frame_size), models with a fixed input (C3D's fc6) their own frames/size."""
    size = int(config.get("size", train_params.get("frame_size", settings.size)))
    frames = int(config.get("frames", settings.frames))
    return (1, frames, settings.channels, size, size)


def measure_checkpoint(checkpoint: Path, settings: CostSettings) -> dict:
    """{"model", "params", "params_m", "gmacs_per_clip", "cpu_seconds_per_clip", "input_shape", ...}.

    Raises FileNotFoundError / ValueError with the fix when the checkpoint cannot be read or built.
    """
    import torch

    from training.models import build_model
    from training.models.cost import count_gmacs, count_parameters, inference_seconds

    if not Path(checkpoint).exists():
        raise FileNotFoundError(f"{checkpoint} not found: rerun the train stage for this model")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)  # tensors and plain data only
    missing = [k for k in ("model_name", "model_config", "state_dict") if k not in state]
    if missing:
        raise ValueError(f"{checkpoint}: key(s) {missing} missing (not a luskit checkpoint): retrain the model")
    config = dict(state["model_config"])
    if config.get("encoder_weights"):
        config["encoder_weights"] = None  # the trained weights follow; the initialisation file need not exist here
    model = build_model(state["model_name"], config)
    model.load_state_dict(state["state_dict"])
    model.eval()
    shape = input_shape(dict(model.config), dict(state.get("train_params") or {}), settings)
    x = torch.zeros(shape, dtype=torch.float32)
    mask = torch.ones(shape[:2], dtype=torch.bool)
    params = count_parameters(model)
    return {"model": state["model_name"], "params": params, "params_m": round(params / 1e6, 3),
            "gmacs_per_clip": round(count_gmacs(model, x, mask), 4),
            "cpu_seconds_per_clip": round(inference_seconds(model, x, mask, settings.repeats, settings.warmup), 4),
            "input_shape": list(shape), "repeats": settings.repeats, "checkpoint": str(checkpoint)}


def machine() -> dict:
    """Where the CPU timings were taken (no host names: only the processor and thread count)."""
    import torch

    return {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "device": "cpu", "batch": 1}
