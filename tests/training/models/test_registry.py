"""build_model's names, defaults and config validation."""

from __future__ import annotations

import pytest

from training.models import DEFAULTS, MODEL_NAMES, build_model, resolve_config


def test_model_names_are_the_contract():
    assert MODEL_NAMES == ("luvnet", "luvnet_tfwo", "usvn", "c3d", "r2plus1d", "frame2d", "cnn_lstm")


def test_paper_defaults():
    luvnet = resolve_config("luvnet")
    assert luvnet == {"encoder": "densenet161", "encoder_weights": None, "in_chans": 3, "heads": 8, "kernel": 13,
                      "attn_hidden": 4096, "head_hidden": 512, "dropout": 0.5}
    assert resolve_config("usvn")["heads"] == 32
    assert resolve_config("c3d", {"frames": 16})["frames"] == 16
    assert resolve_config("r2plus1d")["layers"] == [2, 2, 2, 2]
    assert resolve_config("cnn_lstm")["features"] == 300


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_unknown_key_names_key_and_allowed_keys(name):
    with pytest.raises(ValueError, match=r"unknown config key 'kernal'.*allowed keys: ") as err:
        build_model(name, {"kernal": 3})
    assert all(key in str(err.value) for key in DEFAULTS[name])


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'vivit'"):
        build_model("vivit", {})


@pytest.mark.parametrize(("name", "config", "message"), [
    ("luvnet", {"heads": 0}, "'heads' must be a positive int"),
    ("luvnet", {"dropout": 1.5}, "'dropout' must be in"),
    ("r2plus1d", {"layers": [2, 2, 2]}, "4 positive ints"),
    ("cnn_lstm", {"layers": [3]}, "LSTM layers"),
    ("frame2d", {"encoder_weights": 3}, "local file path or null"),
])
def test_bad_values(name, config, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(name, config)


def test_resolved_config_kept_on_model():
    model = build_model("r2plus1d", {"width": 4, "layers": (1, 1, 1, 1)})
    assert model.config == {"in_chans": 3, "layers": [1, 1, 1, 1], "width": 4}
    assert model.model_name == "r2plus1d"
