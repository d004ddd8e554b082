"""The `train` stage: `luskit train --model M --fold K` -> artifacts/models/M/foldK/.

Fold K's model trains on the other folds and validates on fold K (early stopping, model selection and the
per-pattern Youden thresholds: the test sets never touch any of them), then predicts the validation fold,
internal_test and temporal with the best weights. Outputs (rank 0 only): checkpoint.pt, log.csv, metrics.json
(a DVC metric), predictions.parquet; see training/train/checkpoint.py and predict.py for their contents.

Interrupted runs continue: rerun the same command and it resumes from .luskit/resume/M-foldK/ (saved every
train.resume_every optimiser steps and at each epoch end) when params, model config and data are unchanged.
Under `torchrun --nproc_per_node N` the same command trains with DistributedDataParallel.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from luskit import paths
from luskit.atomic import write_bytes_atomic
from luskit.config import ConfigError, load_section, read_params
from luskit.tables import read_table
from training.data.dataset import ClipDataset, clip_bytes
from training.data.table import SETS, clip_table, fold_sets, labels_array
from training.train import build, checkpoint, distributed, predict
from training.train.determinism import deterministic
from training.train.loop import Context, RunState, fit
from training.train.params import RUNTIME_KEYS, TrainParams, model_config, resolved
from training.train.thresholds import aurocs, thresholds as youden_thresholds

LOG_COLUMNS = ("epoch", "train_loss", "val_loss", "val_macro_auroc", "lr", "seconds")
OUTPUTS = ("checkpoint.pt", "log.csv", "predictions.parquet")
METRICS = "metrics.json"


def out_dir(root: Path, model: str, fold: int) -> Path:
    return Path(root) / paths.MODELS / model / f"fold{fold}"


def preprocessing(params_path: Path, frame_size: int) -> dict:
    """What a new video must go through to become this model's input (stored in the checkpoint for `luskit
    predict`): the clips section as the clips stage read it (its defaults filled in) and the training frame_size."""
    from curation.clips import ClipParams

    section = read_params(Path(params_path)).get("clips") or {}
    keys = [k for k in ClipParams.__dataclass_fields__ if k != "workers"]  # workers: how, not what (not listed)
    clips = ClipParams(**{k: section[k] for k in keys if k in section})
    return {**{k: getattr(clips, k) for k in keys}, "frame_size": int(frame_size)}


def load_params(params_path: Path, profile: str | None) -> tuple[TrainParams, str, int | None]:
    """(train params, profile name, clips.length or None when params has no clips section)."""
    params = load_section(Path(params_path), "train", TrainParams)
    name = profile or params.profile
    if name not in params.profiles:
        raise ConfigError(f"{params_path}: profile {name!r} is not among train.profiles {sorted(params.profiles)}")
    clips = read_params(Path(params_path)).get("clips") or {}
    return params, name, clips.get("length")


def read_clips(root: Path) -> tuple[pd.DataFrame, list[Path]]:
    """The clip table and the files whose content defines the data (for the resume key)."""
    root = Path(root)
    files = [root / paths.CLIP_MANIFEST, root / paths.SPLITS_TABLE, root / paths.CONSENSUS]
    manifest = read_table(files[0], ["clip_id", "video_id", "patient_id", "period", "start", "end",
                                     "n_real_frames", "cache_file"], "run the clips stage first")
    splits = read_table(files[1], ["clip_id", "role"], "run the split stage first")
    consensus = read_table(files[2], ["clip_id", "pattern", "label"], "run the labels stage first")
    caches = sorted({root / paths.CLIPS / f for f in manifest["cache_file"].astype(str)})
    return clip_table(manifest, splits, consensus), files + caches


def make_datasets(root: Path, sets: dict[str, pd.DataFrame], params: TrainParams, frame_size: int,
                  progress: bool) -> tuple[dict[str, ClipDataset], bool]:
    total = sum(clip_bytes(t, frame_size) for t in sets.values())
    preload = params.preload == "on" or (params.preload == "auto" and total <= params.preload_max_mb * 2**20)
    data = {name: ClipDataset(t, Path(root) / paths.CLIPS, frame_size, preload, progress) for name, t in sets.items()}
    return data, preload


def pos_weights(train: pd.DataFrame) -> np.ndarray:
    """Negatives / positives per pattern in the training folds (1 where a pattern has no positive)."""
    labels = labels_array(train)
    pos, neg = np.nansum(labels, axis=0), np.sum(labels == 0, axis=0)
    return np.where(pos > 0, neg / np.maximum(pos, 1), 1.0).astype(np.float32)


def restore(payload: dict, model, optimizer, scheduler) -> RunState:
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload.get("scheduler") is not None:
        scheduler.load_state_dict(payload["scheduler"])
    return RunState(**payload["run"])


def saver(folder: Path, key: str, description: dict, model, optimizer, scheduler, env: distributed.Dist):
    def save(state: RunState) -> None:
        if env.main:
            payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "scheduler": None if scheduler is None else scheduler.state_dict(),
                       "run": dataclasses.asdict(state)}
            progress = {"epoch": state.epoch, "batch": state.batch, "step": state.step, "finished": state.finished}
            checkpoint.save_resume(folder, key, description, payload, progress)
        distributed.barrier(env)
    return save


def write_log(path: Path, history: list[dict]) -> None:
    frame = pd.DataFrame(history, columns=list(LOG_COLUMNS))
    write_bytes_atomic(path, frame.to_csv(index=False, float_format="%.6g").encode())


def say(message: str) -> None:
    print(f"train: {message}", file=sys.stderr, flush=True)


def evaluate_best(ctx: Context, state: RunState, infer, sets: dict[str, pd.DataFrame]) -> tuple[dict, dict]:
    """Load the best weights; (per-set inference with attention, validation Youden details)."""
    ctx.model.load_state_dict(state.best_state)
    outputs = {name: infer(ctx.model, name, attention=True) for name in SETS}
    probs = predict.sigmoid(outputs["validation"]["logits"])
    return outputs, youden_thresholds(labels_array(sets["validation"]), probs)


def metrics_dict(state: RunState, val_labels: np.ndarray, val_logits: np.ndarray, details: dict) -> dict:
    probs = predict.sigmoid(val_logits)
    per = aurocs(val_labels, probs)
    values = [v for v in per.values() if v is not None]
    return {"best_epoch": state.best_epoch, "epochs_run": len(state.history), "val_loss": state.best_val_loss,
            "val_macro_auroc": float(np.mean(values)) if values else None, "val_auroc": per,
            "n_validation": int(len(val_labels)),
            "thresholds": {p: {k: d[k] for k in ("threshold", "method", "sensitivity", "specificity")}
                           for p, d in details.items()}}


def write_outputs(folder: Path, ctx: Context, state: RunState, sets, outputs, details, identity: dict) -> None:
    """checkpoint.pt, log.csv, metrics.json, predictions.parquet (rank 0)."""
    thr = {p: d["threshold"] for p, d in details.items()}
    tables = [predict.set_table(sets[name], name, identity["fold"], identity["model"], outputs[name]["logits"],
                                outputs[name].get("attention"), thr) for name in SETS]
    predict.write_predictions(folder / "predictions.parquet", tables)
    metrics = metrics_dict(state, ctx.val_labels, outputs["validation"]["logits"], details)
    write_bytes_atomic(folder / METRICS, (json.dumps(metrics, indent=2) + "\n").encode())
    write_log(folder / "log.csv", state.history)
    ckpt = checkpoint.checkpoint_dict(identity["model"], identity["model_config"], identity["train_params"],
                                      len(state.history) - 1, state.best_epoch, state.best_val_loss, details,
                                      state.best_state, identity["data"], identity.get("preprocessing"))
    checkpoint.save_checkpoint(folder / "checkpoint.pt", ckpt)


def describe(params: TrainParams, profile_name: str, model_name: str, fold: int, config: dict, length: int,
             data_files: list[Path]) -> dict:
    """What determines a run's result: hashed into the resume key and stored in the checkpoint."""
    recipe = json.loads(json.dumps(resolved(params, profile_name)))
    recipe["frame_stride"] = params.profiles[profile_name].frame_stride.get(model_name, 1)  # this model's
    return {"model": model_name, "fold": fold, "model_config": config, "clip_length": length,
            "train": {k: v for k, v in recipe.items() if k not in RUNTIME_KEYS},
            "data": checkpoint.fingerprint(data_files)}


def build_context(root: Path, params: TrainParams, profile_name: str, model_name: str, fold: int, length: int,
                  sets: dict, config: dict, env: distributed.Dist, progress: bool) -> Context:
    from training.models import build_model

    profile = params.profiles[profile_name]
    torch.manual_seed(params.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    model, net = build.place_model(build_model(model_name, config), params, env)
    optimizer = build.make_optimizer(model, profile)
    data, preloaded = make_datasets(root, {"train": sets["train"], **{s: sets[s] for s in SETS}}, params,
                                    profile.frame_size, progress and env.main)
    workers = 0 if preloaded else params.workers
    scheduler = build.make_scheduler(optimizer, profile, build.steps_per_epoch(len(data["train"]), profile))
    autocast = build.autocast_factory(build.use_bf16(params, env.device), env.device)
    desc = f"{model_name} fold{fold}"

    def infer(m, name: str, attention: bool = False) -> dict:
        return build.infer(m, data[name], env, length, params.eval_batch_size, workers, autocast, attention,
                           progress, desc=f"{desc} {name}")

    pos_weight = (torch.tensor(pos_weights(sets["train"]), device=env.device) if profile.pos_weight else None)
    loaders = build.train_loader_factory(data["train"], profile, env, params.seed, length, workers)
    return Context(model, net, optimizer, scheduler, profile, params.seed, env, pos_weight, autocast, loaders,
                   infer, labels_array(sets["validation"]), progress, desc, profile.frame_stride.get(model_name, 1))


def run(root: Path, params: TrainParams, profile_name: str, clip_length: int | None, model_name: str, fold: int,
        progress: bool, prep: dict | None = None) -> RunState:
    """Train (or resume), select, threshold, predict and write fold `fold` of `model_name`."""
    if params.threads:
        torch.set_num_threads(params.threads)
    with deterministic(params.deterministic):  # before setup: CUBLAS_WORKSPACE_CONFIG must precede CUDA init
        return _run(root, params, profile_name, clip_length, model_name, fold, progress, prep)


def _run(root: Path, params: TrainParams, profile_name: str, clip_length: int | None, model_name: str, fold: int,
         progress: bool, prep: dict | None) -> RunState:
    env = distributed.setup(params.device)
    try:
        table, data_files = read_clips(root)
        sets = fold_sets(table, fold)
        length = clip_length or int(table["n_real_frames"].max())
        config = model_config(params, params.profiles[profile_name], model_name, length)
        ctx = build_context(root, params, profile_name, model_name, fold, length, sets, config, env, progress)
        description = describe(params, profile_name, model_name, fold, ctx.model.config, length, data_files)
        key, folder = checkpoint.resume_key(description), checkpoint.resume_dir(root, model_name, fold)
        payload, message = checkpoint.load_resume(folder, key)
        state = RunState()
        if payload:
            try:
                state = restore(payload, ctx.model, ctx.optimizer, ctx.scheduler)
                message += f": epoch {state.epoch + 1}, micro-batch {state.batch} ({len(state.history)} epochs done)"
            except (KeyError, TypeError, ValueError, RuntimeError) as err:  # saved by other code: start afresh
                message = f"ignoring resume state in {folder}: it does not fit this code ({err}); starting fresh"
                ctx = build_context(root, params, profile_name, model_name, fold, length, sets, config, env, progress)
        if message and env.main:
            say(f"{ctx.desc}: {message}")
        out = out_dir(root, model_name, fold)

        def on_epoch(state: RunState, row: dict) -> None:
            if env.main:
                write_log(out / "log.csv", state.history)
                if progress:
                    say(f"{ctx.desc} epoch {row['epoch'] + 1}/{ctx.profile.epochs}: train loss {row['train_loss']:.4f}"
                        f", val loss {row['val_loss']:.4f}, val macro AUROC {row['val_macro_auroc']:.3f} "
                        f"({row['seconds']:.1f} s)")

        save = saver(folder, key, description, ctx.model, ctx.optimizer, ctx.scheduler, env)
        state = fit(ctx, state, save, params.resume_every, on_epoch)
        outputs, details = evaluate_best(ctx, state, ctx.infer, sets)
        if env.main:
            identity = {"model": model_name, "fold": fold, "model_config": ctx.model.config,
                        "train_params": {**description["train"], "clip_length": length}, "data": description["data"],
                        "preprocessing": None if prep is None else {**prep, "length": length}}
            write_outputs(out, ctx, state, sets, outputs, details, identity)
            checkpoint.clear_resume(folder)
        distributed.barrier(env)
        return state
    finally:
        distributed.teardown(env)


def main(params_path: Path = paths.PARAMS, model: str = "luvnet", fold: int = 0, profile: str | None = None,
         quiet: bool | None = None, root: Path | None = None) -> int:
    """Run the stage from the project folder (or `root`); 0 done, 2 bad params or inputs."""
    from training.models import MODEL_NAMES

    root = Path(root) if root is not None else Path(".")  # relative: messages show project paths
    started = time.perf_counter()
    try:
        if model not in MODEL_NAMES:
            raise ConfigError(f"--model {model!r} is not a model; choose one of {', '.join(MODEL_NAMES)}")
        params, name, length = load_params(params_path, profile)
        progress = not (params.quiet if quiet is None else quiet)
        prep = preprocessing(params_path, params.profiles[name].frame_size)
        state = run(root, params, name, length, model, fold, progress, prep)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        best = state.history[state.best_epoch] if 0 <= state.best_epoch < len(state.history) else {}
        loss, auroc = best.get("val_loss", float("nan")), best.get("val_macro_auroc", float("nan"))
        say(f"{model} fold{fold} ({name}): {len(state.history)} epochs, best_epoch {state.best_epoch} (val loss "
            f"{loss:.4f}, val macro AUROC {auroc:.3f}) in {time.perf_counter() - started:.1f} s "
            f"-> {out_dir(Path(''), model, fold)}/")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
