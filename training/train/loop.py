"""The training loop: epochs of micro-batches with accumulation, validation, selection, early stopping.

Everything a resumed run needs lives in `RunState` (saved by the caller's `save` hook at epoch ends and every
`resume_every` optimiser steps). Randomness is keyed, not streamed: the shuffle order comes from the sampler's
(seed, epoch), augmentation from (seed, epoch, clip) and dropout from a reseed per (seed, epoch, micro-batch,
rank), so a run resumed mid-epoch replays exactly what the interrupted one would have done.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.data.transforms import augment_params, prepare_batch, subsample_frames, subsample_offsets
from training.train import distributed
from training.train.params import Profile
from training.train.thresholds import bce_loss, macro_auroc


@dataclass
class RunState:
    """Progress of a run (picklable; saved as the resume state with the model and optimiser)."""

    epoch: int = 0  # the epoch in progress (0-based)
    batch: int = 0  # micro-batches of `epoch` already done (a multiple of accumulation when saved)
    step: int = 0  # optimiser steps since the start of training
    loss_sum: float = 0.0  # training loss of this epoch's done micro-batches, summed (global mean per batch)
    seconds: float = 0.0  # time spent on this epoch before an interruption
    history: list[dict] = field(default_factory=list)  # log.csv rows, one per finished epoch
    best_epoch: int = -1
    best_score: float = math.inf  # lower is better: val_loss or -val_macro_auroc
    best_val_loss: float = math.inf
    best_state: dict | None = None  # the best epoch's weights (CPU)
    bad_epochs: int = 0
    finished: bool = False  # training done (the run may have died while predicting)


@dataclass
class Context:
    """What the loop needs besides the state; built by the stage."""

    model: nn.Module  # the bare model (its state_dict is what is saved)
    net: nn.Module  # the model as trained (DDP-wrapped under torchrun, maybe compiled)
    optimizer: torch.optim.Optimizer
    scheduler: object | None  # LambdaLR stepped per optimiser step, ReduceLROnPlateau per epoch, or None
    profile: Profile
    seed: int
    env: distributed.Dist
    pos_weight: torch.Tensor | None  # (4,) on the device
    autocast: Callable[[], contextlib.AbstractContextManager]
    train_loader: Callable[[int, int], torch.utils.data.DataLoader]  # (epoch, skip micro-batches) -> loader
    infer: Callable[[nn.Module, str], dict]  # (model, set name) -> {"logits": (N, 4), ...} over the whole set
    val_labels: np.ndarray  # (N, 4) float with NaN
    progress: bool = True
    desc: str = "train"
    stride: int = 1  # training-time temporal subsampling (Profile.frame_stride of this model)


def reseed(seed: int, *keys: int) -> None:
    """Seed torch's global generators (dropout) from a key; cheap enough to call per micro-batch."""
    torch.manual_seed(int(np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0] >> 1))


def batch_loss(logits: torch.Tensor, labels: torch.Tensor, known: torch.Tensor,
               pos_weight: torch.Tensor | None) -> torch.Tensor:
    """BCE with logits summed over the known labels / (B * 4): unknown labels weigh 0, and every process of a
    DDP run divides by the same count, so averaging their gradients equals one process on the whole batch."""
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, pos_weight=pos_weight,
                                                          reduction="none")
    return (loss * known).sum() / known.numel()


def _group_size(batch: int, n_batches: int, accumulation: int) -> int:
    """Micro-batches in the optimiser step that micro-batch `batch` belongs to (the last one may be short)."""
    start = batch - batch % accumulation
    return min(accumulation, n_batches - start)


def _sync_loss(ctx: Context, state: RunState, local: float) -> None:
    state.loss_sum += sum(distributed.gather(ctx.env, local)) / ctx.env.world


def train_epoch(ctx: Context, state: RunState, save: Callable[[RunState], None], resume_every: int) -> int:
    """Run (the rest of) epoch state.epoch; saves every `resume_every` optimiser steps. Returns the epoch's
    micro-batch count."""
    ctx.net.train()
    loader = ctx.train_loader(state.epoch, state.batch)
    n_batches = state.batch + len(loader)
    acc, prof, started, local = ctx.profile.accumulation, ctx.profile, time.perf_counter(), 0.0
    bar = tqdm(loader, desc=f"{ctx.desc} epoch {state.epoch + 1}/{prof.epochs}", unit="batch", leave=False,
               disable=not (ctx.progress and ctx.env.main), initial=state.batch, total=n_batches)
    for batch in bar:
        reseed(ctx.seed, state.epoch, state.batch, ctx.env.rank)
        frames, mask = batch["frames"], batch["mask"]
        if ctx.stride > 1:
            offsets = subsample_offsets(ctx.seed, state.epoch, batch["index"], batch["n_real"], ctx.stride)
            frames, mask = subsample_frames(frames, mask, offsets, ctx.stride)
        frames = frames.to(ctx.env.device, non_blocking=True)
        flip = degrees = None
        if prof.augment:
            flip, degrees = augment_params(ctx.seed, state.epoch, batch["index"], prof.flip_p, prof.rotate_p,
                                           prof.rotate_degrees)
        x = prepare_batch(frames, flip, degrees)
        group = _group_size(state.batch, n_batches, acc)
        last_in_group = (state.batch + 1) % acc == 0 or state.batch + 1 == n_batches
        sync = contextlib.nullcontext() if last_in_group or not ctx.env.active else ctx.net.no_sync()
        with sync:
            with ctx.autocast():
                out = ctx.net(x, mask.to(ctx.env.device))
            loss = batch_loss(out["logits"], batch["labels"].to(ctx.env.device), batch["known"].to(ctx.env.device),
                              ctx.pos_weight)
            (loss / group).backward()
        value = loss.item()
        local += value
        state.batch += 1
        if last_in_group:
            ctx.optimizer.step()
            ctx.optimizer.zero_grad(set_to_none=True)
            state.step += 1
            if isinstance(ctx.scheduler, torch.optim.lr_scheduler.LambdaLR):
                ctx.scheduler.step()
            if state.step % resume_every == 0 and state.batch < n_batches:
                _sync_loss(ctx, state, local)
                local, state.seconds = 0.0, state.seconds + time.perf_counter() - started
                started = time.perf_counter()
                save(state)
        bar.set_postfix(loss=f"{value:.4f}")
    bar.close()
    _sync_loss(ctx, state, local)
    state.seconds += time.perf_counter() - started
    return n_batches


def validate(ctx: Context) -> dict:
    """Validation loss (BCE with the training pos_weight) and macro AUROC of the current weights."""
    logits = ctx.infer(ctx.model, "validation")["logits"]
    probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    weight = None if ctx.pos_weight is None else ctx.pos_weight.cpu().numpy()
    return {"val_loss": bce_loss(ctx.val_labels, logits, weight), "val_macro_auroc": macro_auroc(ctx.val_labels, probs)}


def end_epoch(ctx: Context, state: RunState, n_batches: int, val: dict) -> dict:
    """Record the epoch's log row, update the best weights and the early-stopping counter."""
    started = time.perf_counter()
    row = {"epoch": state.epoch, "train_loss": state.loss_sum / max(n_batches, 1), "val_loss": val["val_loss"],
           "val_macro_auroc": val["val_macro_auroc"], "lr": ctx.optimizer.param_groups[0]["lr"]}
    score = val["val_loss"] if ctx.profile.select == "val_loss" else -val["val_macro_auroc"]
    if math.isfinite(score) and score < state.best_score:
        state.best_score, state.best_epoch, state.best_val_loss = score, state.epoch, val["val_loss"]
        state.best_state = {k: v.detach().to("cpu", copy=True) for k, v in ctx.model.state_dict().items()}
        state.bad_epochs = 0
    else:
        state.bad_epochs += 1
    if isinstance(ctx.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        ctx.scheduler.step(val["val_loss"])
    row["seconds"] = round(state.seconds + time.perf_counter() - started, 3)
    state.history.append(row)
    state.epoch, state.batch, state.loss_sum, state.seconds = state.epoch + 1, 0, 0.0, 0.0
    return row


def fit(ctx: Context, state: RunState, save: Callable[[RunState], None], resume_every: int,
        on_epoch: Callable[[RunState, dict], None] = lambda s, r: None) -> RunState:
    """Train from `state` until the epochs run out or early stopping; returns the finished state."""
    while not state.finished and state.epoch < ctx.profile.epochs and state.bad_epochs < ctx.profile.patience:
        n_batches = train_epoch(ctx, state, save, resume_every)
        started = time.perf_counter()
        val = validate(ctx)
        state.seconds += time.perf_counter() - started
        row = end_epoch(ctx, state, n_batches, val)
        on_epoch(state, row)
        if state.epoch < ctx.profile.epochs and state.bad_epochs < ctx.profile.patience:
            save(state)
    state.finished = True
    if state.best_state is None:  # no finite validation score ever: keep the last weights, say so in the log
        state.best_state = {k: v.detach().to("cpu", copy=True) for k, v in ctx.model.state_dict().items()}
        state.best_epoch = state.epoch - 1
    save(state)
    return state
