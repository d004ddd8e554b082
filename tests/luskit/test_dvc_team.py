"""Sharing a luskit project through DVC remotes, on a tiny real project (tests/luskit/dvc_project.py).

- push from one clone, pull into a fresh clone: `dvc status` clean, `dvc repro` reruns nothing;
- data/raw (PHI) goes only to the `raw` remote: no raw file's content reaches the default remote;
- a teammate without the raw remote pulls the rest and reruns nothing;
- runtime params (workers, quiet, ...) rerun nothing, a real param does;
- `dvc exp run -S train.profile=...` and `dvc exp show` work.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from tests.luskit.dvc_project import build, clone, dvc, git, raw_files, remote_hashes

pytestmark = pytest.mark.slow  # two tiny trainings and ~20 DVC commands: about a minute or two


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    base = tmp_path_factory.mktemp("team")
    shared = base / "shared-remote"
    origin = build(base / "origin", shared)
    dvc(["push"], origin)
    return base, origin, shared


def test_push_keeps_raw_out_of_the_default_remote(team):
    base, origin, shared = team
    raw_remote = base / "luskit-raw"  # .dvc/config: ../../luskit-raw, beside the clone
    pushed, raw_pushed = remote_hashes(shared), remote_hashes(raw_remote)
    raw = {hashlib.md5(data).hexdigest() for data in raw_files(origin).values()}
    assert raw <= raw_pushed, "data/raw was not pushed to the raw remote"
    assert not raw & pushed, "raw file content reached the default (shared) remote"
    raw_dir = yaml.safe_load((origin / "raw.dvc").read_text())["outs"][0]["md5"].removesuffix(".dir")
    assert raw_dir not in pushed  # nor the listing of data/raw (file names)
    index = yaml.safe_load((origin / "dvc.lock").read_text())["stages"]["ingest"]["outs"][0]["md5"]
    assert index.removesuffix(".dir") in pushed  # the pseudonymised outputs did go to the team


def site_clone(team, dest):
    """A fresh clone by a teammate on the site's machine, with access to the raw store (its url in
    .dvc/config.local, which git does not share), after `dvc pull`."""
    base, origin, _ = team
    fresh = clone(origin, dest)
    dvc(["remote", "modify", "--local", "raw", "url", str(base / "luskit-raw")], fresh)
    dvc(["pull"], fresh)
    return fresh


def test_fresh_clone_pulls_and_reruns_nothing(team, tmp_path):
    origin = team[1]
    fresh = site_clone(team, tmp_path / "fresh")
    assert "up to date" in dvc(["status"], fresh).stdout
    repro = dvc(["repro"], fresh)
    assert "Running stage" not in repro.stdout + repro.stderr, repro.stdout
    assert (fresh / "artifacts/models/luvnet/fold0/checkpoint.pt").is_file()
    assert (fresh / "data/raw/site/0.dcm").read_bytes() == (origin / "data/raw/site/0.dcm").read_bytes()


def test_teammate_without_raw_access_pulls_the_rest(team, tmp_path):
    _, origin, _ = team
    fresh = clone(origin, tmp_path / "outside")  # its raw remote, ../luskit-raw beside it, does not exist
    dvc(["pull", "--allow-missing"], fresh)
    assert not (fresh / "data" / "raw").exists()
    assert (fresh / "artifacts/index/videos.parquet").is_file()
    repro = dvc(["repro", "--allow-missing", "--dry"], fresh)
    assert "Running stage" not in repro.stdout + repro.stderr, repro.stdout


def test_runtime_params_rerun_nothing_and_real_ones_do(team, tmp_path):
    work = site_clone(team, tmp_path / "params")
    path = work / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["train"].update(workers=3, threads=1, quiet=False, eval_batch_size=2, preload="off", resume_every=7)
    params["ingest"]["workers"] = 2
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    assert "up to date" in dvc(["status"], work).stdout
    params["train"]["seed"] += 1
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    status = dvc(["status", "--json"], work).stdout
    assert set(json.loads(status)) == {"train@luvnet-0"}, status


def test_experiment_with_another_profile(team, tmp_path):
    work = site_clone(team, tmp_path / "exp")
    git(["config", "user.email", "t@t"], work)  # dvc exp commits the experiment to refs/exps
    git(["config", "user.name", "t"], work)
    run = dvc(["exp", "run", "-S", "train.profile=tiny2", "--name", "tiny2"], work)
    assert "Running stage 'train@luvnet-0'" in run.stdout and "Running stage 'ingest'" not in run.stdout
    shown = json.loads(dvc(["exp", "show", "--json"], work).stdout)
    exps = [e for commit in shown for e in (commit.get("experiments") or [])]
    runs = [r for e in exps for r in e.get("revs", []) if r.get("name") == "tiny2"]
    assert runs, json.dumps(shown)[:2000]
    data = runs[0]["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["profile"] == "tiny2"
    metrics = data["metrics"]["artifacts/models/luvnet/fold0/metrics.json"]["data"]
    assert metrics["epochs_run"] == 2  # tiny2 trains 2 epochs, tiny 1
