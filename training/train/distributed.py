"""One process or many (torchrun): rank, device, process group, and collecting results from every rank.

Under `torchrun --nproc_per_node N ...` the environment carries RANK, WORLD_SIZE and LOCAL_RANK; each process
takes GPU LOCAL_RANK (NCCL) or, without GPUs, runs on the CPU with gloo. Without those variables it is one
ordinary process. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def pick_device(setting: str, local_rank: int) -> torch.device:
    """'auto' -> cuda:<local_rank> when CUDA is available, else cpu; otherwise the named device."""
    if setting == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={setting!r} but CUDA is not available here: set train.device: auto or cpu")
    return device


def setup(device_setting: str = "auto") -> Dist:
    """Join the torchrun process group when there is one (NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_setting, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=60))  # rank 0 predicts and writes at the end
    return Dist(rank, world, local_rank, device)


def teardown(env: Dist) -> None:
    if env.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: Dist) -> None:
    if env.active:
        dist.barrier()


def gather(env: Dist, obj):
    """Every rank's `obj` as a list in rank order (a one-element list in a single process)."""
    if not env.active:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def broadcast(env: Dist, obj):
    """Rank 0's `obj` on every rank."""
    if not env.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
