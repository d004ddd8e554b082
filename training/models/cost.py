"""Model cost: parameter counts, multiply-accumulates and inference time.

GMACs come from `torch.utils.flop_counter.FlopCounterMode`, which counts the FLOPs of matrix multiplies and
convolutions (2 FLOPs per multiply-accumulate) and ignores element-wise ops, norms, pooling and activations:
MACs = FLOPs / 2. That is the quantity thop reports (the seed called thop's number "GFLOPs"), so the two are
comparable up to small differences in what each counts. Recurrent kernels (aten LSTM ops) are not counted by
FlopCounterMode in this torch version, so the CNN-LSTM figure covers its encoder and classifier only.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once); only those with requires_grad when `trainable_only`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_summary(model: nn.Module) -> dict[str, object]:
    """{"model": name, "params": int, "trainable_params": int, "params_m": float (millions, 2 decimals)}."""
    params = count_parameters(model)
    return {"model": getattr(model, "model_name", type(model).__name__), "params": params,
            "trainable_params": count_parameters(model, trainable_only=True), "params_m": round(params / 1e6, 2)}


def count_gmacs(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> float:
    """Giga multiply-accumulates of one forward pass on x (B, T, C, H, W) + mask (B, T), in eval mode, no grad.

    Counts the whole batch (divide by B for a per-clip figure). The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x, mask)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


def inference_seconds(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, repeats: int = 5,
                      warmup: int = 1) -> float:
    """Median wall-clock seconds of one forward pass (eval mode, no grad) after `warmup` untimed passes.

    x (B, T, C, H, W) and mask (B, T) on the model's device; CUDA work is synchronised before each reading.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    was_training = model.training
    model.eval()
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(x, mask)
            for _ in range(repeats):
                sync()
                start = time.perf_counter()
                model(x, mask)
                sync()
                times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return float(sorted(times)[len(times) // 2])
