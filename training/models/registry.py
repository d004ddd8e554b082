"""Model names, their config keys with the paper's defaults, validation, and `build_model`.

A config is a flat dict; missing keys take the defaults below, unknown keys raise a ValueError naming the key and
the allowed ones. The resolved config is kept on the model as `model.config` (for checkpoints).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from torch import nn

_ENCODER = {"encoder": "densenet161", "encoder_weights": None, "in_chans": 3}

# Defaults = the paper configuration (luvnet-reference.md sections 3-4).
DEFAULTS: dict[str, dict[str, Any]] = {
    "luvnet": {**_ENCODER, "heads": 8, "kernel": 13, "attn_hidden": 4096, "head_hidden": 512, "dropout": 0.5},
    "luvnet_tfwo": {**_ENCODER, "heads": 8, "attn_hidden": 4096},
    "usvn": {**_ENCODER, "heads": 32, "dropout": 0.0},
    "c3d": {"in_chans": 3, "width": 64, "fc": 4096, "frames": 30, "size": 256, "dropout": 0.5},
    "r2plus1d": {"in_chans": 3, "layers": [2, 2, 2, 2], "width": 64},
    "frame2d": dict(_ENCODER),
    "cnn_lstm": {**_ENCODER, "features": 300, "hidden": 256, "layers": 3},
}
MODEL_NAMES: tuple[str, ...] = tuple(DEFAULTS)

_INT_KEYS = {"in_chans", "heads", "kernel", "attn_hidden", "head_hidden", "width", "fc", "frames", "size",
             "features", "hidden"}


def _check_value(name: str, key: str, value: Any) -> None:
    """Type/range checks that would otherwise surface as obscure errors deep inside torch."""
    if key in _INT_KEYS and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name}: config key {key!r} must be a positive int; got {value!r}")
    if key == "dropout" and not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ValueError(f"{name}: config key 'dropout' must be in [0, 1); got {value!r}")
    if key == "encoder" and not (isinstance(value, str) and value):
        raise ValueError(f"{name}: config key 'encoder' must be a timm model name; got {value!r}")
    if key == "encoder_weights" and value is not None and not isinstance(value, str):
        raise ValueError(f"{name}: config key 'encoder_weights' must be a local file path or null; got {value!r}")
    if key == "layers" and name == "cnn_lstm" and (isinstance(value, bool) or not isinstance(value, int)
                                                   or value < 1):
        raise ValueError(f"cnn_lstm: config key 'layers' (LSTM layers) must be a positive int; got {value!r}")
    if key == "layers" and name == "r2plus1d" and not (
            isinstance(value, (list, tuple)) and len(value) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise ValueError(f"r2plus1d: config key 'layers' must be 4 positive ints (e.g. [2, 2, 2, 2]); got {value!r}")


def resolve_config(name: str, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full config of model `name`: defaults updated with `config`, validated. Raises ValueError."""
    if name not in DEFAULTS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    config = dict(config or {})
    defaults = DEFAULTS[name]
    for key in config:
        if key not in defaults:
            raise ValueError(f"{name}: unknown config key {key!r}; allowed keys: {', '.join(defaults)}")
    resolved = {**defaults, **config}
    for key, value in resolved.items():
        _check_value(name, key, value)
    if name == "r2plus1d":
        resolved["layers"] = list(resolved["layers"])
    return resolved


# name -> (module, class); imported on demand so `MODEL_NAMES`/`DEFAULTS` stay cheap to import.
_CLASSES: dict[str, tuple[str, str]] = {
    "luvnet": ("training.models.luvnet", "LUVNet"),
    "luvnet_tfwo": ("training.models.luvnet", "LUVNetTFWO"),
    "usvn": ("training.models.baselines_2d", "USVN"),
    "c3d": ("training.models.c3d", "C3D"),
    "r2plus1d": ("training.models.r2plus1d", "R2Plus1D"),
    "frame2d": ("training.models.baselines_2d", "Frame2D"),
    "cnn_lstm": ("training.models.baselines_2d", "CNNLSTM"),
}


def model_class(name: str) -> type[nn.Module]:
    """The nn.Module class of model `name`."""
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, config: Mapping[str, Any] | None = None) -> nn.Module:
    """Build model `name` (one of MODEL_NAMES) from a flat config (missing keys = paper defaults).

    The model's forward(x (B, T, C, H, W) float32, mask (B, T) bool) returns {"logits": (B, 4),
    "attention": (B, 4, T) or None}. Weights are random unless `encoder_weights` names a local file.
    """
    resolved = resolve_config(name, config)
    model = model_class(name)(**resolved)
    model.config = dict(resolved)
    model.model_name = name
    return model
