"""dvc.yaml, params.yaml, the CLI and luskit.paths agree with each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
NOT_STAGES = {"synth", "review", "predict"}  # synth fills data/ (an input); review serves the app; predict runs on
# new studies outside the DAG (README "Predicting on new studies": a per-study DVC template): none is a DAG stage


def _lookup(dotted: str):
    node = PARAMS
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"dvc.yaml names param '{dotted}', missing in params.yaml"
        node = node[part]
    return node


@pytest.mark.parametrize("stage", sorted(DVC))
def test_stage_params_exist(stage):
    for entry in DVC[stage].get("params", []):
        for key in entry if isinstance(entry, dict) else [entry]:
            _lookup(key)


def test_every_params_section_is_read_by_a_stage():
    named = {(e if isinstance(e, str) else k).split(".")[0]
             for s in DVC.values() for e in s.get("params", []) for k in ([e] if isinstance(e, str) else e)}
    assert set(PARAMS) - NOT_STAGES <= named, "params.yaml sections no stage reads"


@pytest.mark.parametrize("stage", sorted(DVC))
def test_stage_cmd_is_a_luskit_subcommand_with_help(stage):
    cmd = DVC[stage]["cmd"].split()
    assert cmd[0] == "luskit", "stage commands go through the luskit CLI"
    run = subprocess.run([sys.executable, "-m", "luskit.cli", *cmd[1:], "--help"], capture_output=True, text=True,
                         cwd=REPO)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("stage", sorted(DVC))
def test_outputs_live_under_artifacts_and_deps_exist(stage):
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in DVC[stage].get("outs", [])]
    metrics = [next(iter(m)) if isinstance(m, dict) else m for m in DVC[stage].get("metrics", [])]
    for path in outs + metrics:
        assert path.startswith("artifacts/"), f"{stage}: output {path} outside artifacts/ (data/ is inputs only)"
    for dep in DVC[stage].get("deps", []):
        if not dep.startswith(("data/", "artifacts/")):
            assert (REPO / dep).exists(), f"{stage}: code dependency {dep} does not exist"


def test_data_dvc_and_raw_dvc_track_the_data_folder():
    """data/raw (PHI) has its own .dvc file bound to the `raw` remote; data.dvc holds every other input folder."""
    raw = yaml.safe_load((REPO / "raw.dvc").read_text())["outs"]
    assert [(o["path"], o.get("remote")) for o in raw] == [("data/raw", "raw")]
    shared = yaml.safe_load((REPO / "data.dvc").read_text())["outs"]
    assert {o["path"] for o in shared} == {"data/annotations", "data/reference", "data/reviews"}
    assert not any(o.get("remote") for o in shared)
    assert (REPO / ".dvc" / "config").read_text().count("analytics = false") == 1


def test_stage_outputs_come_from_luskit_paths():
    from labeling.labels_stage import METRICS as LABEL_METRICS
    from labeling.labels_stage import OUTPUTS as LABEL_OUTPUTS
    from luskit import paths
    from training.splits import stage as split_stage

    outs = {s: {next(iter(o)) if isinstance(o, dict) else o for o in DVC[s].get("outs", []) + DVC[s].get("metrics", [])}
            for s in DVC}
    expected = {"ingest": {paths.INDEX}, "deidentify": {paths.VIDEOS, paths.DEID / "videos.parquet",
                                                         paths.DEID / "qc", paths.DEID / "report.json", paths.DEID_WITHHELD},
                "clips": {paths.CLIPS},
                "labels": {paths.LABELS / name for name in (*LABEL_OUTPUTS, LABEL_METRICS)},
                "split": {paths.SPLITS / name for name in (*split_stage.OUTPUTS, split_stage.METRICS)}}
    for stage, wanted in expected.items():
        assert {str(p) for p in wanted} == outs[stage], stage
