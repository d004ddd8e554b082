"""The fold ensemble of one trained model: its checkpoints, their preprocessing and thresholds.

A model folder (artifacts/models/<model>/) holds fold<k>/checkpoint.pt per trained fold. Every checkpoint is
loaded through training/train/checkpoint.py (build_model on the stored config); their `preprocessing` (the
clips section that made the training clips, plus the training frame_size) must agree, since one clip cache
feeds them all. A checkpoint written before that field existed is refused with the fix (retrain), never
guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from luskit.schema import PATTERNS

FOLD_DIR = re.compile(r"fold(\d+)$")
PREP_KEYS = ("length", "overlap", "tail", "size", "resize", "grayscale", "frame_size")


class EnsembleError(ValueError):
    """A model folder that cannot be used for prediction; the message names it and the fix."""


@dataclass(frozen=True)
class Preprocessing:
    """How a de-identified video becomes model input: clips of `length` frames with `overlap`, the `tail` rule,
    cached at `size` x `size` (`resize`: letterbox | center_crop, `grayscale`), resized to `frame_size` in torch."""

    length: int
    overlap: int
    tail: str
    size: int
    resize: str
    grayscale: bool
    frame_size: int

    def clips_section(self, workers: int = 1) -> dict:
        """The params.yaml `clips:` section that reproduces the training clips."""
        return {k: getattr(self, k) for k in PREP_KEYS if k != "frame_size"} | {"workers": workers}


@dataclass
class FoldModel:
    fold: int
    model: torch.nn.Module
    thresholds: dict[str, float]  # pattern -> the fold's validation (Youden) threshold


@dataclass
class Ensemble:
    name: str  # model name (luvnet, ...)
    folds: list[FoldModel]
    prep: Preprocessing
    version: str  # model_version for Label Studio: <name>@<first 8 of the data fingerprint>


def fold_dirs(models_dir: Path) -> list[tuple[int, Path]]:
    """(fold, folder) of every fold<k>/checkpoint.pt under models_dir, by fold."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise EnsembleError(f"{models_dir} is not a folder: pass --models artifacts/models/<model> of a trained "
                            "project (dvc repro train)")
    found = sorted((int(m.group(1)), d) for d in models_dir.iterdir()
                   if (m := FOLD_DIR.match(d.name)) and (d / "checkpoint.pt").exists())
    if not found:
        raise EnsembleError(f"{models_dir} holds no fold<k>/checkpoint.pt: train the model first (dvc repro train)")
    return found


def preprocessing(checkpoint: dict, where: str) -> Preprocessing:
    """The checkpoint's preprocessing; EnsembleError for checkpoints written before it was stored."""
    prep = checkpoint.get("preprocessing")
    missing = [k for k in PREP_KEYS if not isinstance(prep, dict) or k not in prep]
    if missing:
        raise EnsembleError(f"{where} does not record its preprocessing ({', '.join(missing)} missing): it was "
                            "written by an older luskit; retrain it (luskit train / dvc repro train) so that "
                            "prediction uses exactly the training clips' length, size and colour")
    return Preprocessing(**{f.name: {"int": int, "str": str, "bool": bool}[f.type](prep[f.name])
                            for f in fields(Preprocessing)})


def load_ensemble(models_dir: Path) -> Ensemble:
    """Every fold checkpoint of one model, in eval mode on the CPU, with a common preprocessing."""
    from training.train.checkpoint import load_model

    folds, preps, names, data = [], set(), set(), set()
    for fold, folder in fold_dirs(models_dir):
        where = f"{Path(models_dir).name}/{folder.name}/checkpoint.pt"
        try:
            model, ckpt = load_model(folder / "checkpoint.pt")
        except ValueError as err:
            raise EnsembleError(str(err)) from None
        preps.add(preprocessing(ckpt, where))
        names.add(ckpt["model_name"])
        data.add(ckpt.get("data_fingerprint", ""))
        folds.append(FoldModel(fold, model, {p: float(ckpt["thresholds"][p]) for p in PATTERNS}))
    if len(preps) > 1 or len(names) > 1:
        raise EnsembleError(f"{models_dir}: the fold checkpoints disagree on model or preprocessing "
                            f"({sorted(names)}; {len(preps)} preprocessings): retrain all folds with one params.yaml")
    name = names.pop()
    version = f"{name}@{sorted(data)[0][:8]}" if data and sorted(data)[0] else name
    return Ensemble(name, folds, preps.pop(), version)
