"""curation.ingest: the stage end to end on a corrupt corpus, identity, duplicates, periods and PHI hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pydicom
import pytest
import yaml

from curation import ingest
from curation.ingest import IngestParams, QUARANTINE_COLUMNS, VIDEO_COLUMNS, locate_sources, main
from curation.readers import ALLOWED_HEADER_FIELDS, REASONS
from luskit.config import ConfigError, load_section
from luskit.pseudonym import patient_pseudonym, video_pseudonym
from tests.curation import corrupt

REPO = Path(__file__).resolve().parents[2]
KEY = "test-key-0123456789abcdef"


def write_params(folder: Path, **overrides) -> Path:
    """A params.yaml holding the repository's ingest section with `overrides`."""
    section = {**yaml.safe_load((REPO / "params.yaml").read_text())["ingest"], **overrides}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump({"ingest": section}))
    return path


def run(tmp: Path, raw: Path, capfd=None, **kwargs) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    out = tmp / "index"
    params = write_params(tmp, workers=kwargs.pop("workers", 1), **kwargs.pop("params", {}))
    code = main(params, raw, out, **kwargs)
    return code, pd.read_parquet(out / "videos.parquet"), pd.read_parquet(out / "quarantine.parquet")


def put(raw: Path, relpath: str, data: bytes) -> Path:
    path = raw / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", KEY)


# ---------------------------------------------------------------- params

def test_params_match_params_yaml():
    params = load_section(REPO / "params.yaml", "ingest", IngestParams)
    assert params.cutoff.isoformat() == "2024-01-01" and params.workers >= 1 and "DICOMDIR" in params.ignore
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]
    assert set(raw) == set(IngestParams.__dataclass_fields__)


@pytest.mark.parametrize("bad", [{"temporal_cutoff": "2024-13-01"}, {"path_pattern": r"^(?P<who>.+)$"},
                                 {"path_pattern": "(unclosed"}, {"workers": 0}, {"default_fps": 0.0},
                                 {"max_side": 4}, {"unknown_key": 1}])
def test_bad_params_are_refused(tmp_path, bad):
    with pytest.raises(ConfigError):
        load_section(write_params(tmp_path, **bad), "ingest", IngestParams)


# ---------------------------------------------------------------- the corrupt corpus

@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ingest")
    raw = tmp / "raw"
    cases = corrupt.build_corpus(raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LUSKIT_PSEUDONYM_KEY", KEY)
        code, videos, quarantine = run(tmp, raw, workers=2)
    return raw, cases, code, videos, quarantine, tmp / "index"


def test_corpus_every_file_accounted_for(corpus_run):
    raw, cases, code, videos, quarantine, _ = corpus_run
    assert code == 0 and len(cases) >= 50
    assert len(videos) + len(quarantine) == len(cases)
    kept = set(videos.source_sha256)
    reasons: dict[str, set] = {}
    for sha, reason in zip(quarantine.source_sha256, quarantine.reason):
        reasons.setdefault(sha, set()).add(reason)
    for case in cases:
        sha = ingest.file_sha256(raw / case.relpath)
        if case.good:
            assert sha in kept, case
        elif case.expect is not None:
            assert sha not in kept and reasons[sha] <= case.expect, (case, reasons.get(sha))
        else:
            assert sha in kept or sha in reasons, case
    assert set(quarantine.reason) <= set(REASONS)
    assert quarantine.message.str.len().min() > 0 and quarantine.reason.notna().all()


def test_tables_have_the_documented_columns(corpus_run):
    _, _, _, videos, quarantine, _ = corpus_run
    assert list(videos.columns) == list(VIDEO_COLUMNS) and list(quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert videos.video_id.is_unique and videos.n_frames.min() >= 2 and (videos.fps > 0).all()
    assert set(videos.kind) == {"dicom", "video"} and set(videos.period) == {"development"}
    for technical in videos.technical:
        assert set(json.loads(technical)) <= set(ALLOWED_HEADER_FIELDS)
    dicoms = videos[videos.kind == "dicom"]
    assert (dicoms.region_x0 == 4).all() and (dicoms.manufacturer_model == "ZQX Sonics Corrupt-O-Scan 1").all()
    assert videos[videos.kind == "video"].region_x0.isna().all()  # deidentify finds the fan itself
    assert videos.variable_frame_rate.sum() == 3  # the VFR GIF, MP4 and Frame Time Vector DICOM


def test_no_phi_in_tables(corpus_run):
    raw, _, _, videos, quarantine, out = corpus_run
    blobs = [p.read_bytes() for p in out.glob("*.parquet")]
    text = videos.to_csv() + quarantine.to_csv()
    for phi in corrupt.PLANTED_PHI + (str(raw), corrupt.FOLDER, "good_", "trunc_", "flip_"):
        assert phi not in text, phi
    for phi in corrupt.PLANTED_PHI:
        assert not any(phi.encode() in blob for blob in blobs), phi


def test_no_phi_on_the_terminal_and_paths_only_on_request(tmp_path, capfd):
    raw = tmp_path / "raw"
    cases = corrupt.build_corpus(raw)
    code, _, quarantine = run(tmp_path, raw, workers=2)
    printed = "".join(capfd.readouterr())
    assert code == 0 and "quarantined truncated:" in printed and "--show-paths" in printed
    for phi in corrupt.PLANTED_PHI + (str(raw),):
        assert phi not in printed, phi
    run(tmp_path, raw, show_paths=True)
    shown = capfd.readouterr().out
    bad = [c for c in cases if c.expect is not None and not c.good]
    assert all(str(raw / c.relpath) in shown for c in bad) and len(quarantine) >= len(bad)
    assert str(raw / next(c for c in cases if c.good).relpath) not in shown


def test_strict_exits_non_zero_when_anything_is_quarantined(tmp_path):
    raw = tmp_path / "raw"
    put(raw, f"{corrupt.FOLDER}/empty.dcm", b"")
    assert run(tmp_path, raw, strict=True)[0] == 1
    assert run(tmp_path, raw, params={"strict": True})[0] == 1
    assert run(tmp_path, raw, params={"strict": True}, strict=False)[0] == 0


def test_workers_do_not_change_the_result(corpus_run, tmp_path):
    raw, _, _, videos, quarantine, _ = corpus_run
    _, serial_videos, serial_quarantine = run(tmp_path, raw, workers=1)
    pd.testing.assert_frame_equal(serial_videos, videos)
    pd.testing.assert_frame_equal(serial_quarantine, quarantine)


def test_locate_sources_finds_every_kept_video(corpus_run):
    raw, _, _, videos, _, _ = corpus_run
    found = locate_sources(raw, IngestParams().ignore)
    assert set(videos.source_sha256) <= set(found)
    assert all(ingest.file_sha256(found[sha]) == sha for sha in videos.source_sha256)


# ---------------------------------------------------------------- identity, periods, duplicates

def test_duplicates_are_quarantined_and_kept_on_disk(tmp_path):
    raw = tmp_path / "raw"
    folder = corrupt.FOLDER
    first = put(raw, f"{folder}/a_first.dcm", corrupt.make_dicom(1))
    # Same SOP Instance UID, other pixels (a re-export): duplicate_instance.
    put(raw, f"{folder}/b_reexport.dcm", corrupt.make_dicom(2, uid=f"{corrupt.UID_ROOT}.1"))
    # Other UID, other codec, identical decoded pixels: duplicate_pixels (decoded, not file bytes).
    put(raw, f"{folder}/c_rle_copy.dcm", corrupt.make_dicom(1, codec="rle", uid=f"{corrupt.UID_ROOT}.77"))
    put(raw, f"{folder}/d_copy.mp4", corrupt.make_video(5))
    put(raw, f"{folder}/e_copy.mp4", corrupt.make_video(5))  # byte-identical video: same sha256 identity
    _, videos, quarantine = run(tmp_path, raw)
    assert len(videos) == 2 and all(p.exists() for p in raw.rglob("*.dcm"))
    kept = videos.set_index("source_sha256").video_id
    assert list(quarantine.reason) == ["duplicate_instance", "duplicate_pixels", "duplicate_instance"]
    assert list(quarantine.duplicate_of) == [kept[ingest.file_sha256(first)]] * 2 + [
        videos[videos.kind == "video"].video_id.iloc[0]]


def test_period_cutoff_and_missing_dates(tmp_path):
    raw = tmp_path / "raw"
    put(raw, "P1/x/before.dcm", corrupt.make_dicom(1, patient_id="P1", acquired="20231231"))
    put(raw, "P1/x/on_cutoff.dcm", corrupt.make_dicom(2, patient_id="P1", acquired="20240101"))
    put(raw, "P1/x/undated.dcm", corrupt.make_dicom(3, patient_id="P1", acquired=None))
    put(raw, "P2/20240215/screen.mp4", corrupt.make_video(4))
    put(raw, "P2/20231301/bad_date.mp4", corrupt.make_video(5))  # month 13: no usable date
    _, videos, quarantine = run(tmp_path, raw)
    assert quarantine.empty
    got = sorted(zip(videos.period, videos.date_missing, videos.kind))
    assert got == [("development", False, "dicom"), ("development", True, "dicom"), ("development", True, "video"),
                   ("temporal", False, "dicom"), ("temporal", False, "video")]


def test_identity_from_path_and_pseudonyms(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    video = put(raw, "MRN-4711/20230301/screen_01.mp4", corrupt.make_video(8))
    put(raw, "loose_video.mp4", corrupt.make_video(9))  # not <patient>/<YYYYMMDD>/<file>
    put(raw, "MRN-4711/20230301/cine.dcm", corrupt.make_dicom(10))
    _, videos, quarantine = run(tmp_path, raw)
    assert list(quarantine.reason) == ["missing_identity"] and "path_pattern" in quarantine.message.iloc[0]
    key = KEY.encode()
    screen = videos[videos.kind == "video"].iloc[0]
    assert screen.patient_id == patient_pseudonym(key, "MRN-4711")
    assert screen.video_id == video_pseudonym(key, screen.patient_id, f"sha256:{ingest.file_sha256(video)}")
    dicom = videos[videos.kind == "dicom"].iloc[0]
    assert dicom.video_id == video_pseudonym(key, patient_pseudonym(key, corrupt.PATIENT_ID), f"{corrupt.UID_ROOT}.10")
    _, again, _ = run(tmp_path, raw)
    pd.testing.assert_frame_equal(again, videos)  # stable across runs
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", "another-key-fedcba9876543210")
    _, other, _ = run(tmp_path, raw)
    assert set(other.video_id).isdisjoint(videos.video_id) and set(other.patient_id).isdisjoint(videos.patient_id)
    assert list(other.source_sha256) == list(videos.source_sha256)


def test_sidecars_and_hidden_files_are_ignored(tmp_path):
    raw = tmp_path / "raw"
    put(raw, f"{corrupt.FOLDER}/cine.dcm", corrupt.make_dicom(12))
    for name in ("notes.txt", "meta.json", ".DS_Store", "DICOMDIR", ".cache/x.dcm"):
        put(raw, f"{corrupt.FOLDER}/{name}", b"not media")
    _, videos, quarantine = run(tmp_path, raw)
    assert len(videos) == 1 and quarantine.empty


def test_file_label_never_carries_dates_or_ids():
    sha = "ab" * 32
    assert ingest.file_label("P/20230101/IM0001", sha) == "noext:abababababab"
    assert ingest.file_label("P/x/DOE_JOHN.20230101", sha) == "other:abababababab"
    assert ingest.file_label("P/x/clip.MP4", sha) == "mp4:abababababab"


def test_empty_and_missing_raw_dir(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    code, videos, quarantine = run(tmp_path, raw)
    assert code == 0 and videos.empty and quarantine.empty and list(videos.columns) == list(VIDEO_COLUMNS)
    with pytest.raises(FileNotFoundError, match="put the raw"):
        run(tmp_path, tmp_path / "nowhere")


@pytest.mark.external
def test_ingest_real_dicoms(external_dir, tmp_path):
    raw = tmp_path / "raw" / "site" / "20200101"
    raw.mkdir(parents=True)
    for path in sorted((external_dir / "dicom").glob("*.dcm")):
        (raw / path.name).symlink_to(path)  # read in place: never copied
    _, videos, quarantine = run(tmp_path, tmp_path / "raw")
    assert sorted(videos.n_frames) == [2, 27, 120]
    assert sorted(quarantine.reason) == ["single_frame_image"] * 3
    assert set(videos.period) == {"development"} and not videos.date_missing.any()
    assert set(videos.manufacturer_model) == {"Philips Medical Systems EPIQ 5G", "SonoSite, Inc. Turbo",
                                              "Philips Medical Systems CX50"}
    text = videos.to_csv() + quarantine.to_csv()
    for path in raw.iterdir():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ("PatientName", "PatientID", "StudyDate", "SOPInstanceUID", "StudyInstanceUID",
                        "InstitutionName"):
            value = str(ds.get(keyword, "") or "")
            assert len(value) < 4 or value not in text, keyword


def test_scan_file_never_raises(tmp_path, monkeypatch):
    path = put(tmp_path, "x.dcm", corrupt.make_dicom(13))

    def boom(*args, **kwargs):
        raise RuntimeError(f"library crash mentioning {path}")

    monkeypatch.setattr(ingest, "probe", boom)
    scan = ingest.scan_file(("x.dcm", str(path), 30.0, 100, 1000))
    assert scan.reason == "decode_error" and str(path) not in scan.message and "RuntimeError" in scan.message
