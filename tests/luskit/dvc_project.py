"""A tiny luskit DVC project for team tests: real `ingest` on three small DICOMs (with planted PHI) under
data/raw, and one real `train@luvnet-0` on a synthetic clip cache, both stages as dvc.yaml defines them.

The project is a copy of this working tree (code, .dvc/config with its `raw` remote, raw.dvc) in a new git repo,
with dvc.yaml cut down to those two stages and a params.yaml to match. Train inputs that the real pipeline makes
(clip cache, consensus, splits) are plain tracked inputs here (inputs.dvc).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import copy_worktree, run_in
from tests.curation import corrupt
from tests.training.train.project import make_project, tiny_profile

REPO = Path(__file__).resolve().parents[2]
DVC = str(Path(sys.executable).parent / "dvc")
INPUTS = ["artifacts/clips", "artifacts/labels/consensus.parquet", "artifacts/splits/splits.parquet"]
GIT_ID = ["-c", "user.email=t@t", "-c", "user.name=t"]


def dvc(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    run = run_in([DVC, *args], cwd, timeout=900)
    if check:
        assert run.returncode == 0, f"dvc {' '.join(args)}: {run.stdout[-2000:]}{run.stderr[-2000:]}"
    return run


def git(args: list[str], cwd: Path) -> None:
    subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True)


def raw_files(root: Path) -> dict[str, bytes]:
    """data/raw of the tiny project: three small US DICOMs (planted names, ids, dates in their headers)."""
    return {f"site/{k}.dcm": corrupt.make_dicom(k, patient_id=f"PAT{k:04d}") for k in range(3)}


def params(root: Path) -> dict:
    """The repository's ingest and train sections, train cut to one tiny LUV-Net run (profiles tiny and tiny2)."""
    repo = yaml.safe_load((REPO / "params.yaml").read_text())
    tiny = yaml.safe_load((root / "params.yaml").read_text())  # written by make_project
    train = {**repo["train"], **{k: v for k, v in tiny["train"].items() if k != "profiles"}}
    profile = tiny_profile(epochs=1, augment=False)
    train.update(profile="tiny", models=["luvnet"], folds=[0], workers=0, quiet=True, device="cpu",
                 profiles={"tiny": profile, "tiny2": {**profile, "epochs": 2}})
    # Made-up test DICOMs: the public demo key on request (real data stops without a key; test_ingest_key.py).
    return {"ingest": {**repo["ingest"], "workers": 1, "demo_key": True},
            "clips": {**repo["clips"], **tiny["clips"]}, "train": train}


def build(root: Path, shared_remote: Path) -> Path:
    """Write, commit and `dvc repro` the tiny project under `root` (default remote: `shared_remote`)."""
    root.mkdir(parents=True)
    copy_worktree(root)
    make_project(root, folds=[0])
    (root / "params.yaml").write_text(yaml.safe_dump(params(root), sort_keys=False))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {k: copy.deepcopy(stages[k]) for k in ("ingest", "train")}},
                                                  sort_keys=False))
    for rel, data in raw_files(root).items():
        (root / "data" / "raw" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "data" / "raw" / rel).write_bytes(data)
    (root / "inputs.dvc").write_text(yaml.safe_dump({"outs": [{"path": p} for p in INPUTS]}))
    for stale in ("dvc.lock", "data.dvc"):
        (root / stale).unlink(missing_ok=True)
    dvc(["commit", "-f", "raw.dvc", "inputs.dvc"], root)
    dvc(["remote", "add", "-d", "shared", str(shared_remote)], root)
    dvc(["repro"], root)
    git(["add", "-A"], root)
    git(["commit", "-qm", "tiny project"], root)
    return root


def clone(origin: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    return dest


def remote_hashes(remote: Path) -> set[str]:
    """md5s of every object in a DVC 3 local remote (files/md5/ab/cdef... -> abcdef...)."""
    base = remote / "files" / "md5"
    return {p.parent.name + p.name.removesuffix(".dir") for p in base.rglob("*") if p.is_file()} if base.exists() \
        else set()

