"""train.deterministic: the same params give the same weights on the same machine.

Seeds are keyed (training/train/loop.py), so what is left is the kernels: some CPU/GPU kernels pick algorithms by
timing (cuDNN benchmark) or accumulate with atomics (scatter/index_add on CUDA, some cuBLAS reductions). This
switches torch to its deterministic implementations for the duration of a run and restores the previous state
after (a run inside a test or a notebook leaves the process as it found it).

Across machines (another CPU's SIMD width, another GPU, another thread count) floating-point results can still
differ in the last bits: BENCHMARKS.md reports the demo's spread over seeds as the yardstick for such differences.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

# cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2); it is read when the first cuBLAS handle is made,
# so it must be in the environment before the run touches the GPU. ":4096:8" is the setting NVIDIA documents.
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic(on: bool) -> Iterator[None]:
    """Within the block, deterministic torch kernels when `on` (else torch's defaults, left untouched).

    warn_only: an op with no deterministic implementation warns (naming itself) instead of stopping a long run.
    """
    if not on:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
