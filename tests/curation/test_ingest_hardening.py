"""Ingest and source lookup on hostile raw folders: unreadable and vanishing files, readers that die, labels.

Tests run as root, where chmod 000 does not stop reads. An unreadable file is made for real instead: a
symbolic link to /proc/self/mem, which stat() calls a regular file and whose first read fails with EIO
(address 0 is never mapped). A vanishing file is deleted between listing and reading (the two steps are
public functions, so the test does it in between). The folders are named like real exports, with a name
and an MRN, so every test can check that no path reaches a table, a label or the terminal.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curation import ingest
from curation.ingest import IngestParams, hash_sources, locate_sources, main, scan_all, walk
from tests.curation import corrupt

REPO = Path(__file__).resolve().parents[2]
KEY = "hardening-test-key-0123456789abcdef"
PHI_FOLDER = "SMITH_ANNA_MRN7777/20230101"  # what the review found printed in a traceback
PHI = ("SMITH", "ANNA", "MRN7777", "KIM", "MINJI")


def write_params(folder: Path, **overrides) -> Path:
    section = {**yaml.safe_load((REPO / "params.yaml").read_text())["ingest"], **overrides}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump({"ingest": section}))
    return path


def put(raw: Path, relpath: str, data: bytes) -> Path:
    path = raw / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def unreadable(raw: Path, relpath: str) -> Path:
    """A regular file by stat() whose read fails with EIO (see the module docstring)."""
    path = raw / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to("/proc/self/mem")
    assert path.is_file()
    with pytest.raises(OSError):
        path.read_bytes()
    return path


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", KEY)
    monkeypatch.delenv("LUSKIT_PSEUDONYM_KEY_FILE", raising=False)


def _no_phi(text: str, raw: Path) -> None:
    assert str(raw) not in text
    for word in PHI:
        assert word not in text, word


def test_unreadable_file_is_quarantined_with_a_hashed_label(tmp_path, capfd):
    raw = tmp_path / "raw"
    put(raw, f"{PHI_FOLDER}/good.dcm", corrupt.make_dicom(1, patient_id="MRN7777"))
    unreadable(raw, f"{PHI_FOLDER}/KIM.MINJI")
    unreadable(raw, f"{PHI_FOLDER}/IM00002.dcm")
    assert main(write_params(tmp_path, workers=2), raw, tmp_path / "index") == 0
    printed = "".join(capfd.readouterr())
    videos = pd.read_parquet(tmp_path / "index" / "videos.parquet")
    quarantine = pd.read_parquet(tmp_path / "index" / "quarantine.parquet")
    assert len(videos) == 1
    assert list(quarantine.reason) == ["unreadable", "unreadable"]
    labels = sorted(quarantine.file_label)
    assert labels[0].startswith("dcm:unread-") and labels[1].startswith("other:unread-")
    assert len({label.split("-")[1] for label in labels}) == 2  # two files, two labels
    assert all("--show-paths" in m and "OSError" in m for m in quarantine.message)
    _no_phi(printed + quarantine.to_csv() + videos.to_csv(), raw)
    # The label is a keyed hash of the path: stable for one key, unrelated under another.
    assert main(write_params(tmp_path, workers=1), raw, tmp_path / "again") == 0
    assert sorted(pd.read_parquet(tmp_path / "again" / "quarantine.parquet").file_label) == labels


def test_locate_sources_skips_an_unreadable_file_and_names_it_by_label(tmp_path, capfd):
    raw = tmp_path / "raw"
    good = put(raw, f"{PHI_FOLDER}/good.dcm", corrupt.make_dicom(2, patient_id="MRN7777"))
    unreadable(raw, f"{PHI_FOLDER}/KIM.MINJI")
    found = locate_sources(raw, IngestParams().ignore)
    assert found == {ingest.file_sha256(good): good}
    err = capfd.readouterr().err
    assert "skipped other:unread-" in err and "--show-paths" in err
    _no_phi(err, raw)


def test_a_file_that_vanishes_between_listing_and_reading(tmp_path):
    raw = tmp_path / "raw"
    keep = put(raw, f"{PHI_FOLDER}/a.dcm", corrupt.make_dicom(3, patient_id="MRN7777"))
    gone = put(raw, f"{PHI_FOLDER}/b.dcm", corrupt.make_dicom(4, patient_id="MRN7777"))
    files = walk(raw, IngestParams().ignore)
    gone.unlink()
    found, skipped = hash_sources(files)
    assert set(found.values()) == {keep} and skipped == [(f"{PHI_FOLDER}/b.dcm", "FileNotFoundError")]
    scans = scan_all(files, IngestParams(workers=1))
    assert [s.reason for s in scans] == [None, "unreadable"]
    _no_phi(scans[1].message, raw)


def test_deidentify_goes_on_when_a_raw_file_is_unreadable(tmp_path, capfd):
    """The stage-level case of the review: one indexed source became unreadable, one stray file is too."""
    from curation.deid import stage

    raw = tmp_path / "raw"
    put(raw, f"{PHI_FOLDER}/a.dcm", corrupt.make_dicom(5, patient_id="MRN7777"))
    victim = put(raw, f"{PHI_FOLDER}/b.dcm", corrupt.make_dicom(6, patient_id="MRN7777"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["workers"] = params["deidentify"]["workers"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(tmp_path / "params.yaml", raw, tmp_path / "index") == 0
    victim.unlink()
    unreadable(raw, f"{PHI_FOLDER}/b.dcm")  # same name, now unreadable
    unreadable(raw, f"{PHI_FOLDER}/KIM.MINJI")
    capfd.readouterr()
    stage.main(tmp_path / "params.yaml", tmp_path / "index", raw, tmp_path / "videos", tmp_path / "deid")
    printed = "".join(capfd.readouterr())
    report = (tmp_path / "deid" / "report.json").read_text()
    assert "source_missing" in report and printed.count("skipped ") == 2
    _no_phi(printed + report, raw)


def _die_on_marked_files(path, **kwargs):
    """Stands in for readers.probe in the forked workers: SIGKILL on files named *KILLME* (as the kernel's
    out-of-memory killer would), the real probe otherwise. A mock, because no input kills a worker on
    purpose once the readers guard against it (the size checks stop the oversized decodes first)."""
    if "KILLME" in Path(path).name:
        os.kill(os.getpid(), signal.SIGKILL)
    return _REAL_PROBE(path, **kwargs)


_REAL_PROBE = ingest.probe


@pytest.mark.parametrize("workers", [1, 2])
def test_a_reader_killed_on_one_file_quarantines_that_file_only(tmp_path, monkeypatch, capfd, workers):
    raw = tmp_path / "raw"
    for k in range(5):
        put(raw, f"{PHI_FOLDER}/good_{k}.dcm", corrupt.make_dicom(10 + k, patient_id="MRN7777"))
    put(raw, f"{PHI_FOLDER}/b_KILLME.dcm", corrupt.make_dicom(20, patient_id="MRN7777"))
    put(raw, f"{PHI_FOLDER}/d_KILLME.mp4", corrupt.make_video(21))
    monkeypatch.setattr(ingest, "probe", _die_on_marked_files)  # inherited by the forked workers
    assert main(write_params(tmp_path, workers=workers), raw, tmp_path / "index") == 0
    videos = pd.read_parquet(tmp_path / "index" / "videos.parquet")
    quarantine = pd.read_parquet(tmp_path / "index" / "quarantine.parquet")
    assert len(videos) == 5 and list(quarantine.reason) == ["worker_died"] * 2
    assert sorted(label.split(":")[0] for label in quarantine.file_label) == ["dcm", "mp4"]
    assert "killed for memory" in quarantine.message.iloc[0]
    _no_phi("".join(capfd.readouterr()) + quarantine.to_csv(), raw)


def test_the_pool_that_breaks_before_any_item_starts_is_an_error_not_a_loop(monkeypatch):
    from curation import safe_pool

    def die_at_start(started):
        os._exit(3)

    monkeypatch.setattr(safe_pool, "_init", die_at_start)
    with pytest.raises(RuntimeError, match="could not start"):
        safe_pool.map_surviving_deaths(abs, [1, -2], 2, lambda job: None)


def test_file_labels_keep_only_media_extensions():
    sha, key = "ab" * 32, b"k" * 32
    assert ingest.file_label("P/x/KIM.MINJI", sha) == "other:abababababab"
    assert ingest.file_label("P/x/DOE.20230101", sha) == "other:abababababab"
    assert ingest.file_label("P/x/.hidden", sha) == "noext:abababababab"
    assert ingest.file_label("P/x/clip.Mov", sha) == "mov:abababababab"
    unread = ingest.file_label("KIM_MINJI/20230101/KIM.MINJI", "", key)
    assert unread.startswith("other:unread-") and "minji" not in unread.lower()
    assert unread != ingest.file_label("KIM_MINJI/20230101/KIM.MINJI", "", b"o" * 32)
    assert json.dumps(unread).count(":") == 1
