"""The repository's train: section and train stage: profiles parse, every matrix model builds its config, the
DVC stage runs every (model, fold) with the contract's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from luskit.config import ConfigError, convert, load_section
from training.models import resolve_config
from training.train import stage
from training.train.params import TrainParams, model_config

REPO = Path(__file__).resolve().parents[3]


def test_repository_params_parse_and_every_model_config_resolves():
    params = load_section(REPO / "params.yaml", "train", TrainParams)
    assert {"demo", "paper"} <= set(params.profiles) and params.profile == "demo"
    assert params.models == ("luvnet", "usvn", "c3d") and params.folds == (0, 1, 2, 3, 4)
    for name, profile in params.profiles.items():
        for model in params.models:
            config = resolve_config(model, model_config(params, profile, model, 30))
            assert config, (name, model)
    paper = params.profiles["paper"]  # the seed's recipe (luvnet-reference.md section 4)
    assert (paper.optimizer, paper.lr, paper.batch_size, paper.frame_size) == ("adam", 1e-6, 4, 256)
    assert (paper.select, paper.patience, paper.schedule, paper.epochs) == ("val_loss", 20, "constant", 151)
    luvnet = resolve_config("luvnet", model_config(params, paper, "luvnet", 30))
    assert (luvnet["encoder"], luvnet["heads"], luvnet["kernel"]) == ("densenet161", 8, 13)


def test_encoder_weights_and_fixed_clip_shapes_reach_the_model_config():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    raw["encoder_weights"] = {"densenet161": "weights/densenet161.pth"}
    params = convert(raw, TrainParams, "train")
    assert model_config(params, params.profiles["paper"], "luvnet", 30)["encoder_weights"] == \
        "weights/densenet161.pth"
    c3d = model_config(params, params.profiles["demo"], "c3d", 30)
    assert c3d["frames"] == 30 and c3d["size"] == params.profiles["demo"].frame_size


def test_bad_train_params_name_the_key():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    with pytest.raises(ConfigError, match="learning_rate"):
        convert({**raw, "profiles": {"demo": {"learning_rate": 1}}}, TrainParams, "train")
    with pytest.raises(ConfigError, match="profile='gpu'"):
        convert({**raw, "profile": "gpu"}, TrainParams, "train")
    with pytest.raises(ConfigError, match="c3d is built for a fixed frame count"):
        convert({**raw, "profiles": {"demo": {"frame_stride": {"c3d": 2}}}}, TrainParams, "train")


def test_dvc_stage_trains_every_model_and_fold_with_the_contract_outputs():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]
    assert spec["matrix"] == {"model": "${train.models}", "fold": "${train.folds}"}
    assert spec["cmd"].startswith("luskit train --model ${item.model} --fold ${item.fold}")
    folder = "artifacts/models/${item.model}/fold${item.fold}"
    assert spec["outs"] == [f"{folder}/{name}" for name in stage.OUTPUTS]
    assert spec["metrics"] == [f"{folder}/{stage.METRICS}"]  # cached: a clone pulls it (artifacts/ is not in git)
    assert str(stage.out_dir(Path(""), "M", 3)) == "artifacts/models/M/fold3"
    assert {"train.profile", "train.profiles", "train.seed", "clips.length"} <= set(spec["params"])  # by key:
    assert not {"train", "train.workers", "train.quiet"} & set(spec["params"])  # runtime keys rerun nothing
