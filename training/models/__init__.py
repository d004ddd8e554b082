"""Model zoo: LUV-Net, its ablation without the temporal branch, and the seed's baselines.

`build_model(name, config)` returns an nn.Module whose forward(x (B, T, C, H, W) float32, mask (B, T) bool)
returns {"logits": (B, 4) in PATTERNS order, "attention": (B, 4, T) frame importance or None}.
"""

from training.models.registry import DEFAULTS, MODEL_NAMES, build_model, resolve_config

__all__ = ["DEFAULTS", "MODEL_NAMES", "build_model", "resolve_config"]
