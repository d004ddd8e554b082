"""The synthetic demo source: determinism, valid DICOM/MP4, visible truth, planted PHI, LS export.

One small study is generated per test session (a few seconds) and inspected from every side.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml

from curation.synth import screen
from curation.synth.generate import GEOMETRY, active_masks, generate, video_relpath
from curation.synth.params import SynthParams
from curation.synth.phantom import VideoSpec, pattern_statistics
from curation.synth.study import plan_study
from luskit.pseudonym import DEMO_KEY, patient_pseudonym
from luskit.schema import LS_PATTERNS, LS_QUALITY, LS_VIDEO, PATTERNS

REPO = Path(__file__).resolve().parents[2]
SMALL = SynthParams(n_patients_development=4, n_patients_temporal=2, videos_per_patient=(2, 3),
                    duration_s=(1.5, 3.0), screen_recordings=1, dark_videos=1, seed=7)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    summary = generate(SMALL, root, progress=False)
    return root, summary


def test_byte_identical_for_same_seed(study, tmp_path):
    root, _ = study
    again = tmp_path / "data"
    generate(SMALL, again, progress=False)
    assert tree_digest(root) == tree_digest(again)
    other = tmp_path / "other"
    generate(SynthParams(**{**SMALL.__dict__, "seed": 8}), other, progress=False)
    assert tree_digest(other) != tree_digest(root)


def test_layout_and_sizes(study):
    root, summary = study
    plan = plan_study(SMALL)
    assert summary["patients"] == 6 and summary["videos"] == sum(len(p.videos) for p in plan.patients)
    for patient in plan.patients:
        assert 2 <= len(patient.videos) <= 3
        for video in patient.videos:
            assert (root / "raw" / video_relpath(patient, video)).is_file()
            assert 1.5 * video.fps - 1 <= video.n_frames <= 3.0 * video.fps + 1 or video.kind == "screen_mp4"
    kinds = {v.kind for p in plan.patients for v in p.videos}
    assert kinds == {"dicom_native", "dicom_jpeg", "screen_mp4"}
    periods = pd.read_parquet(root / "reference" / "videos.parquet").groupby("period").size()
    assert set(periods.index) == {"development", "temporal"}


def _dicom_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "raw").rglob("*") if p.is_file() and p.suffix != ".mp4"
                  and p.name != "planted_phi.json")


def test_every_dicom_is_valid_and_as_declared(study):
    root, _ = study
    videos = pd.read_parquet(root / "reference" / "videos.parquet")
    plan = plan_study(SMALL)
    declared = {v.sop_uid: v for p in plan.patients for v in p.videos}
    seen = 0
    for path in _dicom_files(root):
        if path.name == "US_TRUNC.dcm":
            continue
        ds = pydicom.dcmread(path)
        assert ds.Modality == "US"
        frames = ds.pixel_array
        if path.name in ("US_STILL.dcm",):
            assert "NumberOfFrames" not in ds and frames.shape == (screen.SCREEN_H, screen.SCREEN_W)
            continue
        if path.name == "US_INFO.dcm":
            assert "SequenceOfUltrasoundRegions" not in ds
            continue
        video = declared[ds.SOPInstanceUID]
        assert int(ds.NumberOfFrames) == video.n_frames == frames.shape[0]
        assert abs(1000.0 / float(ds.FrameTime) - video.fps) < 0.01 and int(ds.CineRate) == round(video.fps)
        region = ds.SequenceOfUltrasoundRegions[0]
        box = (region.RegionLocationMinX0, region.RegionLocationMinY0, region.RegionLocationMaxX1,
               region.RegionLocationMaxY1)
        assert box == screen.region_box(GEOMETRY.height, GEOMETRY.width) and region.RegionDataType == 1
        if video.kind == "dicom_jpeg":
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
            assert ds.PhotometricInterpretation == "YBR_FULL_422" and frames.shape[-1] == 3
        else:
            assert ds.PhotometricInterpretation == "MONOCHROME2" and frames.ndim == 3
        seen += 1
    n_screen = sum(v.kind == "screen_mp4" for p in plan.patients for v in p.videos)
    assert seen == len(videos) - n_screen + 1  # every DICOM video, plus the duplicate export


def test_oddities(study):
    root, _ = study
    names = {p.name for p in _dicom_files(root)}
    assert {"US_STILL.dcm", "US_INFO.dcm", "US_TRUNC.dcm"} <= names
    copies = [p for p in _dicom_files(root) if p.name.startswith("COPY_")]
    assert len(copies) == 1
    original = copies[0].with_name(copies[0].name.removeprefix("COPY_"))
    assert pydicom.dcmread(copies[0]).SOPInstanceUID == pydicom.dcmread(original).SOPInstanceUID
    truncated = next(p for p in _dicom_files(root) if p.name == "US_TRUNC.dcm")
    with pytest.raises(Exception):
        pydicom.dcmread(truncated).pixel_array

    # Every fifth DICOM export carries no extension (DICOMDIR-style names); ingest must sniff the preamble.
    from dataclasses import replace

    patient = plan_study(SMALL).patients[0]
    video = next(v for v in patient.videos if v.kind != "screen_mp4")
    assert Path(video_relpath(patient, replace(video, index=5))).suffix == ""
    assert Path(video_relpath(patient, replace(video, index=4))).suffix == ".dcm"


def _decoded_region(root: Path, patient, video) -> np.ndarray:
    """(T,h,w) uint8 region frames decoded back from the written file."""
    path = root / "raw" / video_relpath(patient, video)
    x0, y0, x1, y1 = screen.region_box(GEOMETRY.height, GEOMETRY.width)
    if video.kind == "screen_mp4":
        from curation.synth.recordings import _OFF_X, _OFF_Y

        with av.open(str(path)) as container:
            frames = np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])
        return frames[:, _OFF_Y + y0:_OFF_Y + y1 + 1, _OFF_X + x0:_OFF_X + x1 + 1]
    frames = pydicom.dcmread(path).pixel_array
    frames = frames[..., 0] if frames.ndim == 4 else frames
    return frames[:, y0:y1 + 1, x0:x1 + 1]


def test_patterns_visible_where_truth_says(study):
    """Each pattern's image statistic, measured on the decoded files, separates its true frames."""
    root, _ = study
    plan = plan_study(SMALL)
    truth = pd.read_parquet(root / "reference" / "truth.parquet")
    assert set(truth["pattern"]) <= set(PATTERNS)
    checked = {p: 0 for p in PATTERNS}
    for patient in plan.patients:
        for video in patient.videos:
            if video.gain < 1:
                continue  # the dark video: readers exclude it
            frames = _decoded_region(root, patient, video)
            masks = active_masks(video)
            spec = VideoSpec(n_frames=video.n_frames, fps=video.fps, active=masks, seed=video.seed,
                             geometry=GEOMETRY, gain=video.gain)
            stats = pattern_statistics(frames, spec)
            for pattern in PATTERNS:
                on, off = stats[pattern][masks[pattern]], stats[pattern][~masks[pattern]]
                if len(on) and len(off):
                    assert on.min() > off.max(), (pattern, video.kind, on.min(), off.max())
                    checked[pattern] += 1
    assert all(n >= 1 for n in checked.values()), checked


def test_planted_phi_is_present_in_raw(study):
    root, _ = study
    phi = json.loads((root / "raw" / "planted_phi.json").read_text())
    plan = plan_study(SMALL)
    patient = plan.patients[0]
    video = next(v for v in patient.videos if v.kind != "screen_mp4")
    path = root / "raw" / video_relpath(patient, video)
    raw = path.read_bytes()
    for needle in (patient.name, patient.mrn, patient.birth_date.strftime("%Y%m%d"), patient.accession):
        assert needle.encode() in raw
    ds = pydicom.dcmread(path)
    assert ds.OtherPatientIDsSequence[0].PatientID in phi["ids"]
    assert ds.RequestAttributesSequence[0].AccessionNumber == patient.accession
    private = ds.private_block(0x0009, "LUSKIT DEMO VENDOR 1.0")
    assert private[0x10].value == patient.name
    assert patient.mrn in private[0x12].value[0].private_block(0x0011, "LUSKIT DEMO VENDOR 1.0")[0x01].value
    for key in ("InstitutionName", "ReferringPhysicianName", "DeviceSerialNumber", "StudyDate", "StudyInstanceUID"):
        assert str(ds.data_element(key).value)
    assert patient.mrn in phi["ids"] and patient.name in phi["names"]


def test_burned_in_text_is_readable_by_ocr(study):
    pytesseract = pytest.importorskip("pytesseract")
    import shutil

    if not shutil.which("tesseract"):
        pytest.skip("tesseract-ocr not installed (make test installs it)")
    root, _ = study
    plan = plan_study(SMALL)
    patient = plan.patients[0]
    video = next(v for v in patient.videos if v.kind != "screen_mp4")
    frame = pydicom.dcmread(root / "raw" / video_relpath(patient, video)).pixel_array[0]
    gray = frame[..., 0] if frame.ndim == 3 else frame
    banner = np.kron(gray[:50], np.ones((3, 3), dtype=np.uint8))  # OCR likes ~3x larger glyphs
    text = pytesseract.image_to_string(255 - banner)
    assert patient.mrn in text.replace(" ", "")


def test_annotation_snapshot_is_label_studio_full_json(study):
    root, _ = study
    [snapshot] = list((root / "annotations").glob("*.json"))
    tasks = json.loads(snapshot.read_text())
    videos = pd.read_parquet(root / "reference" / "videos.parquet").set_index("video_id")
    config = ET.parse(REPO / "labeling" / "ls" / "configs" / "timeline.xml").getroot()
    timeline = config.find("TimelineLabels")
    assert timeline.get("name") == LS_PATTERNS and timeline.get("toName") == LS_VIDEO
    assert [label.get("value") for label in timeline] == list(PATTERNS)
    assert config.find("Video").get("frameRate") == "$fps"
    quality_choices = {c.get("value") for c in config.find("Choices")}
    assert len(tasks) == len(videos)
    senior = SMALL.senior.email
    readers = {r.email for r in SMALL.readers}
    for task in tasks:
        meta = videos.loc[task["data"]["video_id"]]
        assert task["data"]["fps"] == meta["fps"] and task["data"]["video"].endswith(task["data"]["video_id"] + ".mp4")
        assert task["data"]["patient_id"] == meta["patient_id"]
        emails = {a["completed_by"]["email"] for a in task["annotations"]}
        assert emails == (readers if meta["period"] == "development" else {senior})
        for annotation in task["annotations"]:
            assert annotation["task"] == task["id"] and not annotation["was_cancelled"]
            for region in annotation["result"]:
                assert region["to_name"] == LS_VIDEO
                if region["type"] == "timelinelabels":
                    assert region["from_name"] == LS_PATTERNS
                    [label] = region["value"]["timelinelabels"]
                    assert label in PATTERNS
                    for r in region["value"]["ranges"]:
                        assert 1 <= r["start"] <= r["end"] <= meta["n_frames"]
                else:
                    assert region["from_name"] == LS_QUALITY and region["value"]["choices"][0] in quality_choices
    dark = videos[videos["quality"] != "usable"].index
    assert len(dark) == 1


def test_readers_are_noisy_but_close_to_truth(study):
    root, _ = study
    truth = pd.read_parquet(root / "reference" / "truth.parquet")
    [snapshot] = list((root / "annotations").glob("*.json"))
    starts = []
    for task in json.loads(snapshot.read_text()):
        true = truth[truth["video_id"] == task["data"]["video_id"]]
        for annotation in task["annotations"]:
            for region in annotation["result"]:
                if region["type"] != "timelinelabels":
                    continue
                label, r = region["value"]["timelinelabels"][0], region["value"]["ranges"][0]
                candidates = true[true["pattern"] == label]
                if len(candidates):
                    starts.append(int(np.min(np.abs(candidates["start"].to_numpy() - r["start"]))))
    starts = np.asarray(starts)
    assert np.median(starts) <= 5 and (starts > 0).any()  # jittered, not copied


def test_pseudonyms_match_the_demo_key(study):
    root, _ = study
    plan = plan_study(SMALL)
    videos = pd.read_parquet(root / "reference" / "videos.parquet")
    assert set(videos["patient_id"]) == {patient_pseudonym(DEMO_KEY, p.mrn) for p in plan.patients}
    for column in ("video_id", "patient_id"):
        assert not any(p.mrn in v for p in plan.patients for v in videos[column])


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"n_patients_development": -2}, "n_patients_development must be >= 1"),
        ({"duration_s": [8.0, 2.5]}, "duration_s"),
        ({"videos_per_patient": [0, 3]}, "videos_per_patient"),
        ({"fps_choices": [30, 0], "fps_weights": [1, 1]}, "fps_choices"),
        ({"temporal_dates": ["2023-01-01", "2023-02-01"]}, "temporal period must start after"),
        ({"screen_recordings": 500}, "screen recordings"),
    ],
)
def test_bad_params_are_refused_clearly(tmp_path, override, fragment):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synth"].update(override)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, "-m", "luskit.cli", "synth", "--params", str(path), "--out",
                          str(tmp_path / "data"), "--quiet"], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2, run.stderr
    assert fragment in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "data" / "raw").exists() or "screen recordings" in fragment


def test_refuses_to_write_into_existing_raw(study):
    root, _ = study
    with pytest.raises(FileExistsError, match="not empty"):
        generate(SMALL, root, progress=False)
