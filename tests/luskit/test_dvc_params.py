"""Each dvc.yaml stage lists exactly the params keys it reads, minus the runtime ones (luskit/stages.py RUNTIME).

Reads are recorded by luskit.config at run time (load_section: every key of the section given; read_params: each
leaf key looked up). The quick tests run each stage's main() in an empty folder: it reads its params and stops at
its first missing input; deidentify, whose only late read is ingest.ignore, also runs to the end on a tiny
study. The slow test reads the log of the session's full demo run (every stage, to the end).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from luskit import config
from luskit.stages import ENTRIES, MATRIX, RUNTIME, entry

REPO = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
EXEMPT = RUNTIME | MATRIX


def listed(stage: str) -> set[str]:
    """The dotted keys a stage lists; a whole section stands for each of its keys."""
    keys: set[str] = set()
    for entry_ in DVC[stage].get("params", []):
        for name in entry_ if isinstance(entry_, dict) else [entry_]:
            keys |= {f"{name}.{k}" for k in PARAMS[name]} if "." not in name else {name}
    return keys


def covered(key: str, keys: set[str]) -> bool:
    """`train.profiles.demo.lr` is covered by `train.profiles`; a whole mapping read needs the mapping listed."""
    return any(key == k or key.startswith(k + ".") for k in keys)


def check(stage: str, reads: set[str], complete: bool) -> None:
    keys = listed(stage)
    unlisted = sorted(k for k in reads - EXEMPT if not covered(k, keys))
    assert not unlisted, f"stage {stage} reads {unlisted} but dvc.yaml does not list them (add them to its params)"
    assert not keys & EXEMPT, f"stage {stage} lists runtime keys {sorted(keys & EXEMPT)}: they must rerun nothing"
    if complete:  # every listed key is read: listing more would rerun the stage for nothing
        unread = sorted(k for k in keys if not any(r == k or r.startswith(k + ".") for r in reads))
        assert not unread, f"stage {stage} lists {unread} but never reads them"


def run_until_first_missing_input(stage: str, folder: Path, monkeypatch) -> set[str]:
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    monkeypatch.chdir(folder)
    kwargs = {"model": "luvnet", "fold": 0} if stage == "train" else {}
    with config.recording() as reads:
        try:
            entry(stage)(Path("params.yaml"), **kwargs)
        except FileNotFoundError:  # some stages raise for the CLI to print; the params are read by then
            pass
    return reads


@pytest.mark.parametrize("stage", sorted(ENTRIES))
def test_keys_read_at_start_are_listed(stage, tmp_path, monkeypatch):
    reads = run_until_first_missing_input(stage, tmp_path, monkeypatch)
    assert reads, f"{stage} read no params before its first input"
    check(stage, reads, complete=False)
    own = {k for k in listed(stage) if k.split(".")[0] == stage.replace("-", "_")}
    assert {k for k in own if not any(r == k or r.startswith(k + ".") for r in reads)} == set(), \
        f"{stage} lists keys of its own section that its params loader does not read"


def test_deidentify_reads_to_the_end(tmp_path, monkeypatch):
    """deidentify reads ingest.ignore late (to locate sources): run it to the end on a tiny real study."""
    from curation import ingest
    from curation.deid import stage
    from tests.curation.test_deid_stage import _params, build_raw

    build_raw(tmp_path / "raw")
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", "params-test-key-0123456789")
    params = _params(tmp_path / "params.yaml")
    assert ingest.main(params, tmp_path / "raw", tmp_path / "index") == 0
    with config.recording() as reads:
        assert stage.main(params, tmp_path / "index", tmp_path / "raw", tmp_path / "videos", tmp_path / "deid") == 0
    assert "ingest.ignore" in reads
    check("deidentify", reads, complete=True)


def test_runtime_keys_exist_and_no_stage_lists_them():
    for key in EXEMPT:
        section, name = key.split(".")
        assert name in PARAMS[section], f"{key} (luskit/stages.py) is not in params.yaml"
    assert not any(listed(s) & EXEMPT for s in DVC)


def test_reads_are_recorded_by_leaf_key(tmp_path, monkeypatch):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"clips": {"length": 3, "size": 8}, "train": {"a": {"b": 1}}}))
    log = tmp_path / "reads.tsv"
    monkeypatch.setenv("LUSKIT_PARAMS_READS", str(log))
    monkeypatch.setattr(config, "stage_label", "x")
    with config.recording() as reads:
        data = config.read_params(path)
        assert data.get("clips", {}).get("length") == 3 and data["train"]["a"]["b"] == 1
        assert data.get("nothing") is None
    assert reads == {"clips.length", "train.a.b"}
    with config.recording() as reads:
        dict(config.read_params(path)["clips"])  # copying a mapping reads all of it
    assert "clips" in reads
    assert log.read_text().splitlines()[:2] == ["x\tclips.length", "x\ttrain.a.b"]


def test_demo_run_reads_only_listed_keys(demo_project):
    """Every stage of the full demo, run by `dvc repro`, read only keys its dvc.yaml entry lists (and each listed
    key was read)."""
    log = demo_project.path / ".luskit" / "params-reads.tsv"
    assert log.is_file(), "the demo_project fixture records params reads to .luskit/params-reads.tsv"
    reads: dict[str, set[str]] = {}
    for line in log.read_text().splitlines():
        stage, key = line.split("\t")
        reads.setdefault(stage, set()).add(key)
    other = reads.pop("?", set())  # reads outside a stage: only `luskit synth`, which the demo runs to fill data/
    assert all(k.startswith("synth.") for k in other), f"params read outside any stage: {sorted(other)}"
    assert set(reads) == set(ENTRIES), f"stages that recorded reads: {sorted(reads)}"
    for stage, keys in reads.items():
        check(stage, keys, complete=True)
