"""Real interruptions and real process groups: `kill -9` mid-epoch then rerun resumes and ends where an
uninterrupted run ends; two gloo processes under torchrun train what one process trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from luskit.schema import PATTERN_SLUGS
from tests.training.train.project import make_project, tiny_profile
from training.train import checkpoint

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}


def _train_cmd(model: str) -> list[str]:
    return ["luskit.cli", "train", "--params", "params.yaml", "--model", model, "--fold", "0", "--quiet"]


def _run(root: Path, model: str = "luvnet", prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", *prefix, *(["-m"] if prefix else []), *_train_cmd(model)]
    run = subprocess.run(cmd, cwd=root, env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _outputs(root: Path, model: str = "luvnet") -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    out = root / "artifacts" / "models" / model / "fold0"
    return (checkpoint.load_checkpoint(out / "checkpoint.pt"), pd.read_csv(out / "log.csv"),
            pd.read_parquet(out / "predictions.parquet"))


def _kill_mid_epoch(root: Path) -> dict:
    """Start training, SIGKILL it once the resume state is mid-way through epoch 2; returns that progress."""
    proc = subprocess.Popen([sys.executable, "-m", *_train_cmd("luvnet")], cwd=root, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    key = checkpoint.resume_dir(root, "luvnet", 0) / checkpoint.KEY
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read()[-2000:]}"
            if key.exists():
                progress = json.loads(key.read_text())["progress"]
                if progress["epoch"] == 1 and 1 <= progress["batch"] <= 3:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.002)
        else:
            pytest.fail("no mid-epoch resume state appeared")
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return json.loads(key.read_text())["progress"]


@pytest.mark.slow
def test_kill_9_mid_epoch_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path):
    # 12 training clips, batch 2: 6 optimiser steps per epoch, resume state after every step; dropout and
    # augmentation on, so an exact match needs the keyed randomness to replay.
    profile = tiny_profile(epochs=3, batch_size=2, lr=0.01)
    profile["models"]["luvnet"]["dropout"] = 0.3
    killed = make_project(tmp_path / "killed", profile=profile, resume_every=1)
    saved = _kill_mid_epoch(killed)
    out = killed / "artifacts" / "models" / "luvnet" / "fold0"
    assert not (out / "checkpoint.pt").exists()
    assert pd.read_csv(out / "log.csv")["epoch"].tolist() == [0]  # epoch 1 was in progress

    rerun = _run(killed)
    assert f"resuming from {Path('.luskit/resume/luvnet-fold0')}" in rerun.stderr
    assert f"epoch {saved['epoch'] + 1}, micro-batch {saved['batch']} (1 epochs done)" in rerun.stderr
    assert not checkpoint.resume_dir(killed, "luvnet", 0).exists()
    ckpt, log, preds = _outputs(killed)
    assert log["epoch"].tolist() == [0, 1, 2]  # no epoch repeated or skipped

    reference = make_project(tmp_path / "reference", profile=profile, resume_every=1)
    _run(reference)
    ref_ckpt, ref_log, ref_preds = _outputs(reference)
    assert np.allclose(log[["train_loss", "val_loss"]], ref_log[["train_loss", "val_loss"]], rtol=1e-6, atol=1e-7)
    assert ckpt["best_epoch"] == ref_ckpt["best_epoch"] and ckpt["thresholds"] == ref_ckpt["thresholds"]
    for name, tensor in ref_ckpt["state_dict"].items():
        assert torch.allclose(ckpt["state_dict"][name].float(), tensor.float(), atol=1e-6), name
    probs = [f"prob_{s}" for s in PATTERN_SLUGS]
    assert np.allclose(preds[probs], ref_preds[probs], atol=1e-6)


def test_a_resume_state_from_other_params_is_ignored_with_a_message(tmp_path, capsys):
    from training.train import stage

    root = make_project(tmp_path, profile=tiny_profile(epochs=1))
    folder = checkpoint.resume_dir(root, "luvnet", 0)
    checkpoint.save_resume(folder, "0123456789abcdef", {"model": "luvnet"}, {"bogus": True}, {"epoch": 5})
    assert stage.main(root / "params.yaml", model="luvnet", fold=0, root=root) == 0
    err = capsys.readouterr().err
    assert "ignoring resume state" in err and "other params, model config or data" in err
    assert pd.read_csv(root / "artifacts/models/luvnet/fold0/log.csv")["epoch"].tolist() == [0]
    assert not folder.exists()


def test_a_matching_but_unusable_resume_state_is_replaced_with_a_message(tmp_path, capsys):
    from training.models import resolve_config
    from training.train import stage
    from training.train.params import model_config

    root = make_project(tmp_path, profile=tiny_profile(epochs=1))
    params, name, length = stage.load_params(root / "params.yaml", None)
    config = resolve_config("luvnet", model_config(params, params.profiles[name], "luvnet", length))
    _, files = stage.read_clips(root)
    description = stage.describe(params, name, "luvnet", 0, config, length, files)
    folder = checkpoint.resume_dir(root, "luvnet", 0)
    checkpoint.save_resume(folder, checkpoint.resume_key(description), description,
                           {"model": {"no.such.weight": torch.zeros(1)}, "optimizer": {}, "run": {}}, {"epoch": 0})
    assert stage.main(root / "params.yaml", model="luvnet", fold=0, root=root) == 0
    assert "does not fit this code" in capsys.readouterr().err
    assert pd.read_csv(root / "artifacts/models/luvnet/fold0/log.csv")["epoch"].tolist() == [0]


@pytest.mark.slow
def test_two_gloo_processes_under_torchrun_match_one_process(tmp_path):
    # GroupNorm encoder and no dropout: nothing depends on how the global batch is split over processes
    # (BatchNorm would normalise each half separately; SyncBatchNorm needs GPUs). Augmentation stays on: it
    # is keyed by clip, not by process. The global batch (4) is the same; each process takes 2.
    profile = tiny_profile(epochs=2, batch_size=4, optimizer="sgd", lr=0.05)
    profile["models"] = {"usvn": {"encoder": "test_efficientnet_gn", "in_chans": 1, "heads": 2, "dropout": 0.0}}
    one = make_project(tmp_path / "one", profile=profile, models=["usvn"])
    two = make_project(tmp_path / "two", profile=profile, models=["usvn"])
    _run(one, "usvn")
    run = _run(two, "usvn", prefix=("torch.distributed.run", "--standalone", "--nproc_per_node", "2"))
    assert run.stderr.count("-> artifacts/models/usvn/fold0/") == 1  # only rank 0 reports and writes
    (ckpt1, log1, preds1), (ckpt2, log2, preds2) = _outputs(one, "usvn"), _outputs(two, "usvn")
    # Float sums in another order (gradient all-reduce, per-process loss means): ~1e-7 relative per step.
    assert np.allclose(log1[["train_loss", "val_loss"]], log2[["train_loss", "val_loss"]], rtol=1e-5)
    for name, tensor in ckpt1["state_dict"].items():
        assert torch.allclose(ckpt2["state_dict"][name], tensor, atol=1e-5), name
    probs = [f"prob_{s}" for s in PATTERN_SLUGS]
    assert np.allclose(preds1[probs], preds2[probs], atol=1e-5)
    assert list(preds1["clip_id"]) == list(preds2["clip_id"])
