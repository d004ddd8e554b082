"""bench/gpu_check.sh works without a GPU in its --dry-run mode and refuses clearly without CUDA otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}


def test_gpu_check_dry_run_prints_the_table_on_a_cpu():
    run = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--dry-run"], env=ENV, capture_output=True,
                         text=True, timeout=300, cwd="/")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| fp32 |" in run.stdout and "| bf16 + channels_last |" in run.stdout
    assert "| the seed (reported) | 0.065 |" in run.stdout and "CPU dry run" in run.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the real check would run")
def test_gpu_check_without_cuda_fails_with_a_clear_message():
    run = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh")], env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0 and "no CUDA device" in run.stderr and "--dry-run" in run.stderr
