"""Building a run's parts: model on its device (channels_last, SyncBatchNorm, DDP, compile), optimiser,
schedule, autocast, the resumable distributed sampler and loaders, and sharded inference."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from training.data.collate import PadCollate
from training.data.transforms import prepare_batch
from training.train import distributed
from training.train.params import Profile, TrainParams


def use_bf16(params: TrainParams, device: torch.device) -> bool:
    if params.precision == "bf16" and device.type != "cuda":
        raise ValueError("train.precision=bf16 needs a CUDA device here: set precision: auto or fp32")
    if params.precision == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return params.precision == "bf16"


def autocast_factory(bf16: bool, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    if not bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def place_model(model: nn.Module, params: TrainParams, env: distributed.Dist) -> tuple[nn.Module, nn.Module]:
    """(bare model on the device, the module to train): channels_last on CUDA (channels_last_3d for 3-D
    convolutions), SyncBatchNorm + DDP under torchrun, torch.compile when asked."""
    cuda = env.device.type == "cuda"
    if env.active and cuda and params.sync_bn in ("auto", "on"):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(env.device)
    if params.channels_last == "on" or (params.channels_last == "auto" and cuda):
        has_3d = any(isinstance(m, nn.Conv3d) for m in model.modules())
        model = model.to(memory_format=torch.channels_last_3d if has_3d else torch.channels_last)
    net = model
    if env.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[env.device.index] if cuda else None)
    if params.compile:
        net = torch.compile(net)
    return model, net


def make_optimizer(model: nn.Module, profile: Profile) -> torch.optim.Optimizer:
    if profile.optimizer == "adam":  # the seed: Adam, no weight decay by default
        return torch.optim.Adam(model.parameters(), lr=profile.lr, weight_decay=profile.weight_decay)
    if profile.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=profile.lr, weight_decay=profile.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=profile.lr, momentum=profile.momentum,
                           weight_decay=profile.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, profile: Profile, steps_per_epoch: int):
    """constant: None; cosine: per-step linear warm-up then cosine to 0; plateau: x0.1 after 3 flat epochs."""
    if profile.schedule == "plateau":  # the seed's baselines
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=3)
    if profile.schedule == "constant":
        return None
    total = max(1, profile.epochs * steps_per_epoch)
    warmup = int(round(profile.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can skip the first `skip` indices of this rank's epoch order (mid-epoch resume).

    With batch b per rank and W ranks, global batch i is the permutation's items [i*b*W, (i+1)*b*W): the same
    clips one process with batch b*W sees, so world size does not change what a step trains on.
    """

    def __init__(self, dataset, env: distributed.Dist, seed: int, epoch: int, skip: int) -> None:
        super().__init__(dataset, num_replicas=env.world, rank=env.rank, shuffle=True, seed=seed, drop_last=True)
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return super().__len__() - self.skip


def per_rank_batch(profile: Profile, env: distributed.Dist) -> int:
    if profile.batch_size % env.world:
        raise ValueError(f"batch_size {profile.batch_size} is not divisible by the {env.world} processes: set "
                         f"train.profiles.<profile>.batch_size to a multiple of {env.world} (and lower accumulation)")
    return profile.batch_size // env.world


def train_loader_factory(dataset, profile: Profile, env: distributed.Dist, seed: int, length: int,
                         workers: int) -> Callable[[int, int], DataLoader]:
    """(epoch, skip micro-batches) -> this rank's loader; incomplete last batches are dropped (the seed too)."""
    batch = per_rank_batch(profile, env)
    if len(dataset) < profile.batch_size:
        raise ValueError(f"only {len(dataset)} training clips for batch_size {profile.batch_size}: lower it")

    def make(epoch: int, skip: int) -> DataLoader:
        sampler = ResumableSampler(dataset, env, seed, epoch, skip * batch)
        return DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers,
                          collate_fn=PadCollate(length), pin_memory=env.device.type == "cuda")

    return make


def steps_per_epoch(n_clips: int, profile: Profile) -> int:
    return math.ceil((n_clips // profile.batch_size) / profile.accumulation)


@torch.no_grad()
def infer(model: nn.Module, dataset, env: distributed.Dist, length: int, batch_size: int, workers: int,
          autocast, attention: bool, progress: bool = False, desc: str = "predict") -> dict[str, np.ndarray]:
    """Logits (N, 4) float32 and, when asked and the model has it, attention (N, 4, T) float32 (0 on padded
    frames) for every clip of `dataset`, in dataset order. Each rank runs a shard; all ranks get everything."""
    was_training = model.training
    model.eval()
    shard = list(range(env.rank, len(dataset), env.world))
    loader = DataLoader(Subset(dataset, shard), batch_size=batch_size, num_workers=workers,
                        collate_fn=PadCollate(length), pin_memory=env.device.type == "cuda")
    index, logits, attn = [], [], []
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not (progress and env.main)):
        mask = batch["mask"].to(env.device)
        with autocast():
            out = model(prepare_batch(batch["frames"].to(env.device)), mask)
        index.append(batch["index"].numpy())
        logits.append(out["logits"].float().cpu().numpy())
        if attention and out.get("attention") is not None:
            attn.append((out["attention"].float() * mask[:, None, :]).cpu().numpy())
    model.train(was_training)
    parts = distributed.gather(env, (index, logits, attn))
    idx = np.concatenate([i for part in parts for i in part[0]]) if len(dataset) else np.zeros(0, int)
    order = np.argsort(idx, kind="stable")
    out = {"logits": np.concatenate([x for p in parts for x in p[1]])[order] if len(dataset)
           else np.zeros((0, 4), np.float32)}
    if attention and any(p[2] for p in parts):
        out["attention"] = np.concatenate([x for p in parts for x in p[2]])[order]
    return out
