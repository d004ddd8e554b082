"""Which pseudonymisation key ingest uses: a real one on real data, the public one only for the synthetic
demo (detected) or on explicit request, and a record of the kind (never the key) in artifacts/index."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curation.ingest import main
from curation.ingest_key import DEMO_MARKER, KEY_RECORD, read_key_kind
from luskit.pseudonym import DEMO_KEY, DemoKeyWarning, PseudonymKeyError, patient_pseudonym
from tests.curation import corrupt

REPO = Path(__file__).resolve().parents[2]
KEY = "key-test-secret-0123456789abcdef"
HOW_TO = ("openssl rand -hex 32 > ~/.luskit/key", "chmod 600 ~/.luskit/key",
          "export LUSKIT_PSEUDONYM_KEY_FILE=~/.luskit/key")


def write_params(folder: Path, **overrides) -> Path:
    section = {**yaml.safe_load((REPO / "params.yaml").read_text())["ingest"], "workers": 1, **overrides}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump({"ingest": section}))
    return path


def real_raw(raw: Path, patient: str = "MRN-REAL-123") -> Path:
    path = raw / patient / "20230101" / "cine.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(corrupt.make_dicom(1, patient_id=patient))
    return raw


def mark_as_demo(raw: Path, ids: list[str]) -> None:
    (raw / DEMO_MARKER).write_text(json.dumps({"ids": ids, "names": ["X"]}))


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("LUSKIT_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("LUSKIT_PSEUDONYM_KEY_FILE", raising=False)


def record(out: Path) -> dict:
    return json.loads((out / KEY_RECORD).read_text())


def test_real_data_without_a_key_stops_before_reading_anything(tmp_path):
    raw = real_raw(tmp_path / "raw")
    with pytest.raises(PseudonymKeyError) as err:
        main(write_params(tmp_path), raw, tmp_path / "index")
    assert all(step in str(err.value) for step in HOW_TO)
    assert not (tmp_path / "index").exists()


def test_cli_without_a_key_prints_the_fix_not_a_traceback(tmp_path):
    real_raw(tmp_path / "data" / "raw")
    write_params(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "luskit.cli", "ingest"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert all(step in run.stderr for step in HOW_TO)
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("source", ["env", "file"])
def test_a_real_key_is_used_and_only_its_kind_recorded(tmp_path, monkeypatch, source):
    raw = real_raw(tmp_path / "raw")
    if source == "env":
        monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", KEY)
    else:
        (tmp_path / "key").write_text(KEY + "\n")
        monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY_FILE", str(tmp_path / "key"))
    assert main(write_params(tmp_path), raw, tmp_path / "index") == 0
    videos = pd.read_parquet(tmp_path / "index" / "videos.parquet")
    assert videos.patient_id.tolist() == [patient_pseudonym(KEY.encode(), "MRN-REAL-123")]
    assert record(tmp_path / "index")["kind"] == source and read_key_kind(tmp_path / "index") == source
    for path in (tmp_path / "index").iterdir():
        assert KEY.encode() not in path.read_bytes() and KEY[:16].encode() not in path.read_bytes(), path


def test_a_short_environment_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", "short-key")
    with pytest.raises(PseudonymKeyError, match="shorter than 16"):
        main(write_params(tmp_path), real_raw(tmp_path / "raw"), tmp_path / "index")


def test_the_demo_key_on_request_only(tmp_path):
    raw = real_raw(tmp_path / "raw")
    with pytest.warns(DemoKeyWarning):
        assert main(write_params(tmp_path, demo_key=True), raw, tmp_path / "a") == 0
    assert record(tmp_path / "a") == {"kind": "demo", "why": "ingest.demo_key"}
    with pytest.warns(DemoKeyWarning):
        assert main(write_params(tmp_path), raw, tmp_path / "b", demo_key=True) == 0
    assert record(tmp_path / "b") == {"kind": "demo", "why": "--demo-key"}
    videos = pd.read_parquet(tmp_path / "b" / "videos.parquet")
    assert videos.patient_id.tolist() == [patient_pseudonym(DEMO_KEY, "MRN-REAL-123")]


def test_a_demo_marker_does_not_make_real_data_the_demo(tmp_path, monkeypatch):
    raw = real_raw(tmp_path / "raw")
    mark_as_demo(raw, ["SYNTH-0001", "SYNTH-0002"])  # the real patient is not among the generator's
    with pytest.raises(PseudonymKeyError, match=DEMO_MARKER) as err:
        main(write_params(tmp_path), raw, tmp_path / "index")
    assert "MRN-REAL-123" not in str(err.value) and "1 of 1 files" in str(err.value)
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", KEY)
    assert main(write_params(tmp_path), raw, tmp_path / "index") == 0
    assert record(tmp_path / "index")["kind"] == "env"


def test_the_synthetic_demo_gets_the_demo_key_whatever_the_environment(tmp_path, monkeypatch):
    """`luskit synth` output (the demo's data/): detected, so ingest's ids match the generator's reference."""
    from curation.synth.generate import generate
    from curation.synth.params import SynthParams

    data = tmp_path / "data"
    generate(SynthParams(n_patients_development=2, n_patients_temporal=1, videos_per_patient=(1, 1),
                         duration_s=(1.0, 1.0), screen_recordings=1, dark_videos=0, seed=3), data, progress=False)
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", KEY)  # a developer's own key must not break the demo
    with warnings.catch_warnings():
        warnings.simplefilter("error", DemoKeyWarning)  # detected, not requested: no warning
        assert main(write_params(tmp_path, workers=2), data / "raw", tmp_path / "index") == 0
    assert record(tmp_path / "index") == {"kind": "demo", "why": "synthetic demo data"}
    reference = pd.read_parquet(data / "reference" / "videos.parquet")
    videos = pd.read_parquet(tmp_path / "index" / "videos.parquet")
    assert set(reference.video_id) == set(videos.video_id)
