"""Stage `deidentify` end to end on a tiny raw folder: real ingest, real readers, real OCR.

Raw set: two DICOM cines (native grey and native RGB) with a burned-in banner holding a fake name, ID
and dates plus a tissue region; one headerless MP4 screen capture (title bar with the name again, no
region); one still capture in which no fan can be found.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage

from curation import ingest
from curation.deid import stage
from curation.deid.encode import write_mp4
from tests.curation.test_deid_masking import REGION, synthetic_screen

REPO = Path(__file__).resolve().parents[2]
NAME, MRN, BIRTH, STUDY = "DOE^JANE", "31415926", "19500102", "20230614"
NAME2, MRN2 = "ROE^RICHARD", "27182818"
PLANTED = {"names": [NAME, "DOE JANE", "DOE", "JANE", NAME2, "ROE RICHARD", "RICHARD"],
           "ids": [MRN, MRN2], "dates": ["1950-01-02", BIRTH, STUDY, "2023-06-14", "2024-07-10"],
           "institution": ["ST EXAMPLE HOSPITAL"]}
BANNER = ("DOE JANE   ID 31415926", "DOB 1950-01-02", "2023-06-14 10:11:12")
CAPTURE = (368, 480)


def _dicom(frames: np.ndarray, box, rgb: bool, uid: str) -> bytes:
    """A US Multi-frame DICOM (native pixels) with PHI in the header and a tissue region `box`."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, MRN, BIRTH
    ds.InstitutionName, ds.Modality = "ST EXAMPLE HOSPITAL", "US"
    ds.StudyDate = ds.AcquisitionDate = ds.ContentDate = STUDY
    ds.Manufacturer, ds.ManufacturerModelName = "TestSonics", "TS-1"
    ds.Rows, ds.Columns, ds.NumberOfFrames = frames.shape[1], frames.shape[2], frames.shape[0]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime, ds.BurnedInAnnotation = 40.0, "YES"
    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
    region.RegionLocationMinX0, region.RegionLocationMinY0, region.RegionLocationMaxX1, region.RegionLocationMaxY1 = box
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    if rgb:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = np.ascontiguousarray(frames[..., 0]).tobytes()
    ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _label(lines, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 white text on black, as a sonographer's annotation box."""
    img = Image.new("L", (size[1], size[0]), 0)
    for k, line in enumerate(lines):
        ImageDraw.Draw(img).text((4, 3 + 20 * k), line, fill=255, font=ImageFont.load_default(size=17))
    return np.repeat(np.asarray(img)[..., None], 3, axis=2)


def _capture(screens: np.ndarray) -> np.ndarray:
    """Screen frames inside a grey desktop with a window title naming the patient: (T, 368, 480, 3) uint8."""
    bar = Image.new("RGB", (CAPTURE[1], 30), (52, 58, 70))
    ImageDraw.Draw(bar).text((8, 6), "US Capture - ROE RICHARD (27182818)", fill=(240, 240, 240),
                             font=ImageFont.load_default(size=14))
    out = np.full((len(screens), *CAPTURE, 3), 24, np.uint8)
    out[:, 48:48 + screens.shape[1], 72:72 + screens.shape[2]] = screens
    out[:, :30] = np.asarray(bar)
    return out


def build_raw(raw: Path, lying_region: bool = False) -> None:
    """Write the raw folder (<MRN>/<YYYYMMDD>/<file>) and planted_phi.json."""
    dicom_dir, video_dir = raw / MRN / STUDY, raw / MRN2 / "20240710"
    dicom_dir.mkdir(parents=True)
    video_dir.mkdir(parents=True)
    grey, _, _ = synthetic_screen(n=20, seed=1, lines=BANNER)
    box = (0, 0, grey.shape[2] - 1, grey.shape[1] - 1) if lying_region else REGION
    if lying_region:  # the name typed over the moving image too: the tissue mask keeps it
        grey[:, 140:206, 112:228] = _label(("DOE JANE", MRN, "1950-01-02"), (206 - 140, 228 - 112))
    (dicom_dir / "US_0001.dcm").write_bytes(_dicom(grey, box, rgb=False, uid="1.2.826.0.1.3680043.8.498.1"))
    (raw / "planted_phi.json").write_text(json.dumps(PLANTED))
    if lying_region:
        return
    colour, _, _ = synthetic_screen(n=16, seed=2, lines=BANNER)
    colour[:, 60:70, 300:310] = (255, 140, 0)  # an orange marker: genuinely RGB
    (dicom_dir / "IM00002").write_bytes(_dicom(colour, REGION, rgb=True, uid="1.2.826.0.1.3680043.8.498.2"))
    screens, _, _ = synthetic_screen(n=24, seed=3, lines=("ROE RICHARD  ID 27182818", "DOB 1961-05-05", "2024-07-10"))
    write_mp4(video_dir / "screen_01.mp4", _capture(screens), 25.0, crf=20, gop=250)
    write_mp4(video_dir / "still.mp4", _capture(np.repeat(screens[:1], 12, axis=0)), 25.0, crf=20, gop=250)


def _params(path: Path, **deid) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["deidentify"].update({"workers": 1, **deid})
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A raw folder and its index (real ingest)."""
    root = tmp_path_factory.mktemp("deid")
    build_raw(root / "raw")
    mp = pytest.MonkeyPatch()
    mp.setenv("LUSKIT_PSEUDONYM_KEY", "deid-test-key-0123456789")
    assert ingest.main(_params(root / "params.yaml"), root / "raw", root / "index") == 0
    mp.undo()
    return root


def _run(study: Path, out: Path, **deid) -> tuple[int, dict]:
    rc = stage.main(_params(out / "params.yaml", **deid), study / "index", study / "raw", out / "videos", out / "deid")
    return rc, json.loads((out / "deid" / "report.json").read_text())


def _phi_strings() -> list[bytes]:
    return [s.encode() for strings in PLANTED.values() for s in strings if len(s) >= 5] + [MRN.encode()]


def test_end_to_end(study, tmp_path, capsys):
    rc, report = _run(study, tmp_path)
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert report["videos"] == 3 and report["failed"] == 1
    assert report["actions"] == {"region-cropped": 2, "auto-masked": 1, "manual-region": 0, "failed": 1}
    assert [f["reason"] for f in report["failures"]] == ["no_fan_found"]
    assert "manual_regions['480x368']" in report["failures"][0]["message"]
    for key in ("planted_phi_found", "header_fields_outside_allowlist", "dicom_outputs", "ocr_tokens_outside_fan"):
        assert report[key] == 0, (key, report)
    assert report["ocr_frames"] == 60 and report["min_text_coverage"] == 1.0 and report["planted_phi_checked"] == 1
    assert 0.5 < report["median_kept_fraction"] < 1.0  # the banner was removed, the fan kept
    index = pd.read_parquet(study / "index" / "videos.parquet").set_index("video_id")
    table = pd.read_parquet(tmp_path / "deid" / "videos.parquet")
    assert set(table.columns) >= {"video_id", "patient_id", "period", "n_frames", "fps", "height", "width",
                                  "action", "kept_fraction", "crop_x0", "crop_y0", "crop_x1", "crop_y1"}
    for row in table.itertuples():
        with av.open(str(tmp_path / "videos" / f"{row.video_id}.mp4")) as c:
            n = sum(1 for _ in c.decode(video=0))
            size = (c.streams.video[0].height, c.streams.video[0].width)
        assert n == row.n_frames == index.loc[row.video_id, "n_frames"]
        assert size == (row.height, row.width) and row.height % 2 == 0 and row.width % 2 == 0
        if row.action == "region-cropped":  # the tissue inside the region box (here the fan fills its width)
            x0, y0, x1, y1 = REGION
            assert x0 <= row.crop_x0 and y0 <= row.crop_y0 and row.crop_x1 <= x1 and row.crop_y1 <= y1
        else:  # the capture's fan lies 48 px lower and 72 px further right than on the screen
            assert row.crop_y0 > 48 + 45 and row.crop_x0 > 72 + 40
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == sorted(f"{v}.mp4" for v in table.video_id)
    assert list((tmp_path / "deid" / "qc").glob("contact_sheet_*.png"))
    # no PHI anywhere in what the stage wrote or printed
    for path in [*tmp_path.joinpath("videos").iterdir(), *tmp_path.joinpath("deid").rglob("*.*")]:
        data = path.read_bytes()
        assert not [s for s in _phi_strings() if s in data], path
    assert not [s for s in _phi_strings() if s.decode() in printed.out + printed.err]


def test_manual_region_rescues_the_still_and_pool_runs(study, tmp_path):
    rc, report = _run(study, tmp_path, workers=2,
                      manual_regions={"480x368": [120, 98, 359, 313]})
    assert rc == 0
    assert report["actions"] == {"region-cropped": 2, "auto-masked": 1, "manual-region": 1, "failed": 0}
    table = pd.read_parquet(tmp_path / "deid" / "videos.parquet").set_index("action")
    assert tuple(table.loc["manual-region", ["crop_x0", "crop_y0", "crop_x1", "crop_y1"]]) == (120, 98, 359, 313)
    assert report["planted_phi_found"] == 0


def test_missing_source_is_recorded_and_the_rest_continue(study, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(study / "raw", raw)
    edited = raw / MRN / STUDY / "IM00002"
    edited.write_bytes(edited.read_bytes() + b"\x00")  # changed after ingest: its sha256 no longer matches
    stale = tmp_path / "videos" / "P0_Vdeadbeef.mp4"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    rc = stage.main(_params(tmp_path / "params.yaml"), study / "index", raw,
                    tmp_path / "videos", tmp_path / "deid")
    report = json.loads((tmp_path / "deid" / "report.json").read_text())
    assert rc == 0 and report["videos"] == 2
    assert sorted(f["reason"] for f in report["failures"]) == ["no_fan_found", "source_missing"]
    assert not stale.exists()  # outputs of videos no longer produced are removed


def test_a_worker_that_dies_fails_its_video_only(study, tmp_path, monkeypatch):
    """A worker killed mid-video (here it kills itself on one video: a stand-in for the kernel's OOM killer,
    which no test input can provoke on purpose) fails that video as worker_died; the pool's other videos are
    published and the stage ends normally (it used to die of BrokenProcessPool)."""
    index = pd.read_parquet(study / "index" / "videos.parquet")
    victim = sorted(index.video_id)[0]
    parent, real_prepare = os.getpid(), stage._prepare

    def dying_prepare(job, tmp):
        if job.video_id == victim and os.getpid() != parent:
            os._exit(9)  # forked workers inherit this patch; the parent never runs it
        return real_prepare(job, tmp)

    monkeypatch.setattr(stage, "_prepare", dying_prepare)
    rc, report = _run(study, tmp_path, workers=2, manual_regions={"480x368": [120, 98, 359, 313]})
    assert rc == 0
    reasons = {f["video_id"]: f["reason"] for f in report["failures"]}
    assert reasons == {victim: "worker_died"}
    assert report["videos"] == len(index) - 1
    assert report["pseudonym_key"] == "demo"  # the study carries planted_phi.json: the synthetic-demo key


def test_a_batch_proves_each_video_as_alone(study, tmp_path):
    """process_videos (one tesseract process for a batch) gives every video the result it gets alone: a
    failure in the middle of the batch stays with its video, outputs are byte-identical."""
    import dataclasses

    from curation.deid import proof

    cfg = stage.DeidParams()
    planted = proof.PlantedPhi.from_mapping(PLANTED)
    sources = ingest.locate_sources(study / "raw", ())
    jobs = sorted(stage.make_jobs(stage.read_index(study / "index"), sources, cfg, tmp_path, planted),
                  key=lambda j: j.video_id)
    jobs.insert(1, dataclasses.replace(jobs[0], video_id="P0_Vmissing", source=None))
    results = {}
    for mode in ("batch", "alone"):
        (tmp_path / mode).mkdir()
        moved = [dataclasses.replace(j, videos_dir=str(tmp_path / mode)) for j in jobs]
        results[mode] = stage.process_videos(moved) if mode == "batch" else [stage.process_video(j) for j in moved]
    keys = ("video_id", "action", "failure", "ocr_frames", "ocr_tokens_outside_fan", "ocr_tokens_inside_fan",
            "ocr_phi_kinds", "mp4", "kept_fraction", "crop")
    assert [[r.get(k) for k in keys] for r in results["batch"]] == [[r.get(k) for k in keys] for r in results["alone"]]
    reasons = [r["failure"]["reason"] if r["failure"] else None for r in results["batch"]]
    assert reasons.count("source_missing") == 1 and reasons[1] == "source_missing" and reasons.count(None) == 3
    written = sorted(p.name for p in (tmp_path / "batch").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "alone").iterdir()) and len(written) == 3
    for name in written:
        assert (tmp_path / "batch" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()


def test_contact_sheet_pages_are_written_and_read_for_planted_phi(tmp_path):
    from curation.deid import proof

    img = Image.new("RGB", (150, 112), (0, 0, 0))
    ImageDraw.Draw(img).text((4, 40), "DOE JANE", fill=(255, 255, 255), font=ImageFont.load_default(size=26))
    text, blank = np.asarray(img).copy(), np.zeros((112, 150, 3), np.uint8)
    for leaked, kinds in ((True, {"names"}), (False, set())):
        qc = stage.ContactSheets(tmp_path / str(leaked), proof.PlantedPhi.from_mapping(PLANTED), per_page=2)
        for k in range(3):  # page 1 is written by add(), page 2 (holding the text) by the final flush
            after = [text if leaked and k == 2 else blank] * 3
            result = qc.add({"video_id": f"P0_V{k}", "failure": None, "action": "region-cropped",
                             "kept_fraction": 0.9, "before": [blank] * 3, "after": after})
            assert "after" not in result
        qc.flush()
        assert qc.names == ["contact_sheet_001.png", "contact_sheet_002.png"] and qc.kinds == kinds
        assert sorted(p.name for p in (tmp_path / str(leaked)).iterdir()) == qc.names


def test_batches_cover_every_job_in_order():
    jobs = list(range(77))
    for workers in (1, 2, 8):
        groups = stage.batches(jobs, workers)
        assert [j for g in groups for j in g] == jobs
        assert max(map(len, groups)) <= stage.OCR_BATCH and groups[-1] == [76]  # small groups last
        assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)
    assert len(stage.batches(jobs, 2)) < 77 / 2  # most videos share a tesseract start-up
    assert stage.batches([], 2) == [] and stage.batches([1], 2) == [[1]]


def test_planted_phi_that_survives_fails_the_stage(tmp_path, monkeypatch, capsys):
    """A DICOM whose 'tissue region' is the whole screen and a name typed over the fan: the tissue mask
    removes the banner, but the label over the image survives and must be caught."""
    build_raw(tmp_path / "raw", lying_region=True)
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", "deid-test-key-0123456789")
    params = _params(tmp_path / "params.yaml")
    assert ingest.main(params, tmp_path / "raw", tmp_path / "index") == 0
    rc = stage.main(params, tmp_path / "index", tmp_path / "raw", tmp_path / "videos", tmp_path / "deid")
    printed = capsys.readouterr()
    report = json.loads((tmp_path / "deid" / "report.json").read_text())
    assert rc == 1 and "PLANTED PHI SURVIVED" in printed.err
    assert report["videos"] == 0 and report["failures"][0]["reason"] == "planted_phi_in_output"
    assert {f["kind"] for f in report["phi_findings"]} >= {"names", "ids", "dates"}
    assert not list((tmp_path / "videos").glob("*.mp4"))  # withheld
    text = (tmp_path / "deid" / "report.json").read_text() + printed.out + printed.err
    assert not [s for s in _phi_strings() if s.decode() in text]
    # with fail_on_planted_phi off the stage reports but exits 0
    quiet = _params(tmp_path / "p2.yaml", fail_on_planted_phi=False)
    assert stage.main(quiet, tmp_path / "index", tmp_path / "raw", tmp_path / "videos", tmp_path / "deid") == 0


def test_params_are_checked(tmp_path):
    from luskit.config import ConfigError, load_section

    cfg = load_section(REPO / "params.yaml", "deidentify", stage.DeidParams)
    assert cfg.gop == 15 and cfg.manual_regions == {}
    with pytest.raises(ConfigError, match="manual_regions"):
        load_section(_params(tmp_path / "p.yaml", manual_regions={"x": [5, 5, 1, 1]}), "deidentify", stage.DeidParams)
    with pytest.raises(FileNotFoundError, match="luskit ingest"):
        stage.main(_params(tmp_path / "p.yaml"), tmp_path / "none", tmp_path / "raw", tmp_path / "v", tmp_path / "d")


@pytest.mark.external
@pytest.mark.slow
def test_real_recordings_through_the_stage(external_dir, tmp_path, monkeypatch):
    """Cropped POCUS clips come through nearly untouched; the real screen recording loses its UI text."""
    from tests.curation.test_deid_masking import POCUS_SAMPLE

    raw = tmp_path / "raw"
    sources = [external_dir / "pocus" / "videos" / name for name in POCUS_SAMPLE]
    sources.append(external_dir / "raw_ui" / "image_93029618565613.mp4")
    for k, src in enumerate(sources):
        (raw / f"patient{k:02d}" / "20230101").mkdir(parents=True)
        shutil.copy(src, raw / f"patient{k:02d}" / "20230101" / f"clip{src.suffix}")
    monkeypatch.setenv("LUSKIT_PSEUDONYM_KEY", "deid-test-key-0123456789")
    params = _params(tmp_path / "params.yaml", workers=2)
    assert ingest.main(params, raw, tmp_path / "index") == 0
    assert stage.main(params, tmp_path / "index", raw, tmp_path / "videos", tmp_path / "deid") == 0
    report = json.loads((tmp_path / "deid" / "report.json").read_text())
    index = pd.read_parquet(tmp_path / "index" / "videos.parquet").set_index("video_id")
    rows = {row["video_id"]: row for row in report["per_video"]}
    assert report["failed"] == 0 and report["videos"] == len(sources)
    screen = index.index[index["width"] == 1280][0]
    pocus = [rows[v]["kept_fraction"] for v in rows if v != screen]
    assert np.median(pocus) >= 0.95 and min(pocus) >= 0.85, pocus
    assert rows[screen]["action"] == "auto-masked" and rows[screen]["ocr_tokens_outside_fan"] == 0
    x0, y0, x1, y1 = rows[screen]["crop"]
    assert 500 < x0 < 580 and 700 < x1 < 740 and y0 > 40  # the image in the middle, below the ID/date line
    assert report["ocr_tokens_outside_fan"] == 0 and report["header_fields_outside_allowlist"] == 0
