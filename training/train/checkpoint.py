"""The self-describing checkpoint and the resume state.

checkpoint.pt (contract): {format, model_name, model_config, train_params, epoch, best_epoch, best_val_loss,
thresholds {pattern: float}, patterns, state_dict} plus threshold_details, the data fingerprint and `preprocessing`
(what turns a new video into this model's input: the clips section that made its clips, {length, overlap, tail,
size, resize, grayscale}, plus the training frame_size; `luskit predict` reads it, never a guess). It loads
only through `load_model` -> build_model(model_name, model_config).

Resume state: .luskit/resume/<model>-fold<k>/state.pt, written atomically at epoch ends and every
train.resume_every optimiser steps, next to key.json. The key hashes what determines the result (model config,
recipe, fold, data fingerprint); a state with another key is ignored with a message and replaced.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from luskit import paths
from luskit.atomic import write_atomic, write_bytes_atomic
from luskit.schema import PATTERNS

FORMAT = "luskit-checkpoint/1"
STATE = "state.pt"
KEY = "key.json"


def fingerprint(files: list[Path]) -> str:
    """sha256 over the bytes of small tables (manifest, splits, consensus) and the names and sizes of cache files."""
    digest = hashlib.sha256()
    for path in files:
        path = Path(path)
        digest.update(path.name.encode())
        if path.suffix == ".npy":
            digest.update(str(path.stat().st_size).encode())
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def resume_key(description: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resume_dir(root: Path, model: str, fold: int) -> Path:
    return Path(root) / paths.RESUME / f"{model}-fold{fold}"


def save_resume(folder: Path, key: str, description: dict, payload: dict, progress: dict) -> None:
    """Write the resume state atomically (state first, then the key that vouches for it).

    key.json = {"key", "progress": {"epoch", "batch", "step"} (what state.pt holds), **description}.
    """
    folder = Path(folder)
    write_atomic(folder / STATE, lambda tmp: torch.save(payload, tmp))
    body = {"key": key, "progress": progress, **description}
    write_bytes_atomic(folder / KEY, (json.dumps(body, indent=1, default=str) + "\n").encode())


def load_resume(folder: Path, key: str) -> tuple[dict | None, str]:
    """(payload, message): the saved state when its key matches, else None and why it was not used."""
    folder = Path(folder)
    if not (folder / STATE).exists() or not (folder / KEY).exists():
        return None, ""
    try:
        saved = json.loads((folder / KEY).read_text())["key"]
    except (ValueError, KeyError):
        return None, f"ignoring resume state in {folder}: unreadable {KEY}"
    if saved != key:
        return None, (f"ignoring resume state in {folder}: it was made with other params, model config or data "
                      f"(key {saved} != {key}); starting fresh")
    try:
        payload = torch.load(folder / STATE, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - a torn or foreign file: start fresh rather than fail
        return None, f"ignoring resume state in {folder}: unreadable {STATE} ({err}); starting fresh"
    return payload, f"resuming from {folder}"


def clear_resume(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def checkpoint_dict(model_name: str, model_config: dict, train_params: dict, epoch: int, best_epoch: int,
                    best_val_loss: float, thresholds: dict[str, dict], state_dict: dict, data: str,
                    preprocessing: dict | None = None) -> dict:
    """The checkpoint.pt content; `thresholds` maps pattern -> youden() details; `preprocessing` as the module doc
    (None only for callers that never predict new videos: such a checkpoint is refused by `luskit predict`)."""
    return {"format": FORMAT, "model_name": model_name, "model_config": model_config,
            "train_params": train_params, "epoch": epoch, "best_epoch": best_epoch,
            "best_val_loss": float(best_val_loss), "patterns": list(PATTERNS),
            "thresholds": {p: float(thresholds[p]["threshold"]) for p in PATTERNS},
            "threshold_details": thresholds, "data_fingerprint": data, "preprocessing": preprocessing,
            "state_dict": state_dict}


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    write_atomic(Path(path), lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint.pt (tensors and plain Python only: weights_only loading)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: train it first (luskit train / dvc repro)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a luskit checkpoint ({FORMAT}); retrain with luskit train")
    return checkpoint


def load_model(path: Path) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode with the best weights, checkpoint dict) from a checkpoint.pt."""
    from training.models import build_model

    checkpoint = load_checkpoint(path)
    config = dict(checkpoint["model_config"])
    if config.get("encoder_weights"):
        config["encoder_weights"] = None  # the trained weights follow; the init file need not exist here
    model = build_model(checkpoint["model_name"], config)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint
