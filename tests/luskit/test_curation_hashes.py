"""The curation stages reproduce the committed dvc.lock byte for byte on this machine, whatever its CPU.

The session's demo run (tests/conftest.py `demo_project`: a fresh copy of the tree, `luskit demo`) regenerates
data/ with `luskit synth` and runs every stage; its dvc.lock then records the hashes this machine produced. The
committed dvc.lock was made on another machine: CI machines differ in CPU (SIMD width, vendor, architecture), so
equal hashes here mean the curation outputs do not depend on the CPU. Training and evaluation are left out:
floating point in torch may differ across CPUs (README "Working as a team").
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CURATION = ("ingest", "deidentify", "clips", "labels", "split")


def out_hashes(lock: dict, stage: str) -> dict[str, str]:
    return {o["path"]: o["md5"] for o in lock["stages"][stage].get("outs", [])}


def data_hashes(lock: dict, stage: str) -> dict[str, str]:
    return {d["path"]: d["md5"] for d in lock["stages"][stage].get("deps", []) if d["path"].startswith("data/")}


def differences(committed: dict, fresh: dict, of) -> list[str]:
    lines = []
    for stage in CURATION:
        want, got = of(committed, stage), of(fresh, stage)
        for path in sorted(set(want) | set(got)):
            if want.get(path) != got.get(path):
                lines.append(f"{stage}: {path}: committed {want.get(path)}, this machine {got.get(path)}")
    return lines


def test_curation_outputs_match_the_committed_lock(demo_project):
    committed = yaml.safe_load((REPO / "dvc.lock").read_text())
    fresh = yaml.safe_load((demo_project.path / "dvc.lock").read_text())
    inputs = differences(committed, fresh, data_hashes)
    assert not inputs, "the regenerated demo inputs differ from the committed lock (synth, not curation):\n" + \
        "\n".join(inputs)
    outs = differences(committed, fresh, out_hashes)
    assert not outs, "curation outputs differ from the committed dvc.lock on this machine:\n" + "\n".join(outs)


def test_a_changed_output_is_named():
    committed = yaml.safe_load((REPO / "dvc.lock").read_text())
    fresh = yaml.safe_load((REPO / "dvc.lock").read_text())
    fresh["stages"]["clips"]["outs"][0]["md5"] = "0" * 32 + ".dir"
    assert differences(committed, committed, out_hashes) == []
    assert differences(committed, fresh, out_hashes) == [
        f"clips: artifacts/clips: committed {out_hashes(committed, 'clips')['artifacts/clips']}, this machine "
        f"{'0' * 32}.dir"]
