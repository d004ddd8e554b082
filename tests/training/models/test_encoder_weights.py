"""encoder_weights: a local state dict loads into the per-frame encoder; wrong files fail with the file's name."""

from __future__ import annotations

import pytest
import timm
import torch

from tests.training.models.zoo import TINY
from training.models import build_model


def _saved(tmp_path, name: str, num_classes: int, fname: str) -> tuple[str, dict]:
    torch.manual_seed(123)
    state = timm.create_model(name, pretrained=False, num_classes=num_classes).state_dict()
    path = tmp_path / fname
    torch.save(state, path)
    return str(path), state


@pytest.mark.parametrize("model_name", ["luvnet", "cnn_lstm"])
def test_loads_state_dict_ignoring_classifier(tmp_path, model_name):
    """An ImageNet-style file (1000-class head) loads; the head is ignored (CNN-LSTM keeps its own projection)."""
    path, state = _saved(tmp_path, "test_resnet", 1000, "encoder.pt")
    model = build_model(model_name, {**TINY[model_name], "encoder_weights": path})
    loaded = model.encoder.net.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            torch.testing.assert_close(loaded[key], value)
    fresh = build_model(model_name, TINY[model_name]).encoder.net.state_dict()
    assert not torch.equal(fresh["conv1.0.weight"], loaded["conv1.0.weight"])


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    _, state = _saved(tmp_path, "test_resnet", 0, "unused.pt")
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = build_model("usvn", {**TINY["usvn"], "encoder_weights": str(path)})
    torch.testing.assert_close(model.encoder.net.state_dict()["conv1.0.weight"], state["conv1.0.weight"])


def test_other_architecture_is_a_clear_error(tmp_path):
    path, _ = _saved(tmp_path, "test_efficientnet", 0, "effnet.pt")
    with pytest.raises(ValueError, match=r"encoder_weights file .*effnet\.pt does not match"):
        build_model("frame2d", {**TINY["frame2d"], "encoder_weights": path})


def test_shape_mismatch_is_a_clear_error(tmp_path):
    path, _ = _saved(tmp_path, "test_resnet", 0, "rgb.pt")
    with pytest.raises(ValueError, match=r"rgb\.pt does not match.*shape mismatches \['conv1\.0\.weight"):
        build_model("frame2d", {**TINY["frame2d"], "in_chans": 1, "encoder_weights": path})


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "notes.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match=r"notes\.pt does not hold a state dict"):
        build_model("frame2d", {**TINY["frame2d"], "encoder_weights": str(path)})
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"garbage\.pt is not a readable state dict"):
        build_model("frame2d", {**TINY["frame2d"], "encoder_weights": str(garbage)})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pt does not exist"):
        build_model("frame2d", {**TINY["frame2d"], "encoder_weights": str(tmp_path / "absent.pt")})
