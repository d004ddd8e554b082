"""Releasing a withheld video: the append-only sign-off file and `luskit deid withheld|release` (real CLI, real files).

The stage's report is written here by hand in the shape the deidentify stage writes (`withheld`: entries
with video_id, reason, output_sha256); the real stage and `luskit deid show` on a real DICOM are tested in
test_deid_real_dicom.py.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.deid import release
from luskit import paths
from luskit.cli import app

SHA_A, SHA_B = "a" * 64, "b" * 64
VID = "P0123abcd_V89abcdef"


def _append_many(path: str, worker: int, n: int, start) -> None:
    start.wait()  # both writers append at the same time
    for k in range(n):
        release.append_release(Path(path), f"P{worker}_V{k:04d}", f"{worker:x}" * 64, f"reviewer {worker}",
                               note="x" * 300)  # long lines: a torn write would show


def test_missing_file_means_nothing_released(tmp_path):
    assert release.load_releases(tmp_path / "none.jsonl") == {}
    assert not release.released({}, VID, SHA_A)


def test_sign_off_is_bound_to_the_output_hash(tmp_path):
    path = tmp_path / "deid" / "releases.jsonl"
    record = release.append_release(path, VID, SHA_A, "  Dr  Who ", note="checked\nall frames")
    assert record["reviewer"] == "Dr Who" and record["note"] == "checked all frames" and record["utc"].endswith("Z")
    releases = release.load_releases(path)
    assert release.released(releases, VID, SHA_A)
    assert not release.released(releases, VID, SHA_B), "a changed output needs a new sign-off"
    assert not release.released(releases, "P0_V0", SHA_A)
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) == set(release.FIELDS)


def test_appends_never_rewrite_and_never_interleave(tmp_path):
    path = tmp_path / "releases.jsonl"
    release.append_release(path, VID, SHA_A, "first")
    before, inode = path.read_bytes(), path.stat().st_ino
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    writers = [ctx.Process(target=_append_many, args=(str(path), w, 150, start)) for w in (1, 2)]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    data = path.read_bytes()
    assert data.startswith(before) and path.stat().st_ino == inode, "an append rewrote earlier entries"
    lines = data.decode().splitlines()
    assert len(lines) == 301 and all(json.loads(line)["video_id"] for line in lines)
    assert len(release.load_releases(path)) == 301


def test_a_torn_last_line_gets_its_own_line_and_a_hand_edit_stops(tmp_path):
    path = tmp_path / "releases.jsonl"
    path.write_text(json.dumps({"video_id": VID, "output_sha256": SHA_A}))  # no final newline
    release.append_release(path, "P1_V1", SHA_B, "r")
    assert [json.loads(line)["video_id"] for line in path.read_text().splitlines()] == [VID, "P1_V1"]
    path.write_text('{"video_id": "P1_V1", "output_sha256": "not-a-hash"}\n')
    with pytest.raises(release.ReleaseError, match="line 1"):
        release.load_releases(path)
    path.write_text("garbage\n")
    with pytest.raises(release.ReleaseError, match="line 1.*dvc checkout"):
        release.load_releases(path)


def test_sign_off_refuses_bad_ids_hashes_and_empty_reviewers():
    for bad in ("../x", "a b", "", "P1/V2"):
        with pytest.raises(release.ReleaseError):
            release.sign_off(bad, SHA_A, "r")
    with pytest.raises(release.ReleaseError, match="64"):
        release.sign_off(VID, "ABC", "r")
    with pytest.raises(release.ReleaseError, match="reviewer"):
        release.sign_off(VID, SHA_A, "  ")


# ------------------------------------------------------------------------------------------- the CLI

@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder whose deidentify report withholds two videos; cwd is set to it."""
    report = {"videos": 1, "withheld": [
        {"video_id": VID, "reason": "text_in_image", "output_sha256": SHA_A},
        {"video_id": "P0123abcd_V00000001", "reason": "text_outside_fan", "output_sha256": SHA_B}]}
    (tmp_path / paths.DEID).mkdir(parents=True)
    (tmp_path / paths.DEID_REPORT).write_text(json.dumps(report))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _cli(*args: str):
    return CliRunner().invoke(app, ["deid", *args])


def test_release_binds_the_reports_hash_and_says_what_to_run(project):
    res = _cli("release", VID, "--reviewer", "Senior Reader", "--note", "only depth digits")
    assert res.exit_code == 0, res.output
    assert "dvc add data/reviews && dvc repro" in res.output
    lines = (project / paths.DEID_RELEASES).read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["video_id"], entry["output_sha256"], entry["reviewer"], entry["note"]) == (
        VID, SHA_A, "Senior Reader", "only depth digits")
    again = _cli("release", VID, "--reviewer", "Senior Reader")
    assert again.exit_code == 0 and "already released" in again.output
    assert len((project / paths.DEID_RELEASES).read_text().splitlines()) == 1
    listing = _cli("withheld")
    assert listing.exit_code == 0
    assert f"{VID}  text_in_image  released" in listing.output
    assert "P0123abcd_V00000001  text_outside_fan  withheld" in listing.output


def test_a_changed_output_needs_a_new_sign_off(project):
    assert _cli("release", VID, "--reviewer", "r1").exit_code == 0
    report = json.loads((project / paths.DEID_REPORT).read_text())
    report["withheld"][0]["output_sha256"] = "c" * 64  # the stage made a different output since
    (project / paths.DEID_REPORT).write_text(json.dumps(report))
    assert f"{VID}  text_in_image  withheld" in _cli("withheld").output
    assert _cli("release", VID, "--reviewer", "r2").exit_code == 0
    shas = [json.loads(line)["output_sha256"] for line in (project / paths.DEID_RELEASES).read_text().splitlines()]
    assert shas == [SHA_A, "c" * 64]


def test_release_refuses_unknown_ids_and_a_missing_report(project):
    res = _cli("release", "P9_V9", "--reviewer", "r")
    assert res.exit_code == 2 and "not withheld" in res.output and VID in res.output
    assert not (project / paths.DEID_RELEASES).exists()
    assert _cli("release", VID).exit_code != 0  # --reviewer is required
    (project / paths.DEID_REPORT).unlink()
    res = _cli("release", VID, "--reviewer", "r")
    assert res.exit_code == 2 and "dvc repro deidentify" in res.output


def test_show_refuses_to_write_into_the_project_or_over_a_file(project):
    for target in ("artifacts/videos/x.mp4", "data/x.mp4"):
        res = _cli("show", VID, "--out", target)
        assert res.exit_code == 2 and "outside" in res.output, res.output
    (project / "seen.mp4").write_bytes(b"")
    res = _cli("show", VID, "--out", "seen.mp4")
    assert res.exit_code == 2 and "exists" in res.output
    assert not (project / paths.VIDEOS).exists()
