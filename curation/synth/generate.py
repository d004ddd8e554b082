"""`luskit synth`: write the synthetic study into data/ (raw files, truth, annotation snapshot).

I/O edge of the synth package: plans with study.py, renders with phantom.py, encodes with
dicom_files.py / recordings.py, simulates readers with annotators.py. Output is byte-identical for
the same params (one seed per video, one thread per encoder, no wall-clock anything).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from luskit import paths
from luskit.atomic import write_bytes_new
from luskit.pseudonym import DEMO_KEY, patient_pseudonym, video_pseudonym
from luskit.schema import PATTERNS
from curation.synth import dicom_files, recordings, screen
from curation.synth.annotators import TaskTruth, build_export
from curation.synth.params import SynthParams
from curation.synth.phantom import FanGeometry, VideoSpec, render_video
from curation.synth.study import HOSPITAL, INSTITUTION_ADDRESS, PatientPlan, VideoPlan, plan_study, synthetic_uid

GEOMETRY = FanGeometry()


@dataclass(frozen=True)
class Written:
    """One file the generator wrote (relative path under data/raw) and what it stands for."""

    relpath: str
    video_id: str | None  # None for files that are not usable videos (oddities)
    sha256: str


def burned_text(patient: PatientPlan, video: VideoPlan) -> screen.BurnedText:
    return screen.BurnedText(
        name=patient.name.replace("^", " "), patient_id=patient.mrn,
        birth_date=patient.birth_date.isoformat(), timestamp=video.acquired.strftime("%Y-%m-%d %H:%M:%S"),
        hospital=HOSPITAL,
    )


def identity(plan_seed: int, p_idx: int, patient: PatientPlan, video: VideoPlan) -> dicom_files.Identity:
    return dicom_files.Identity(
        name=patient.name, mrn=patient.mrn, birth_date=patient.birth_date, sex=patient.sex,
        accession=patient.accession, physician=patient.physician, hospital=HOSPITAL, address=INSTITUTION_ADDRESS,
        study_uid=synthetic_uid(plan_seed, "study", p_idx), series_uid=synthetic_uid(plan_seed, "series", p_idx),
        sop_uid=video.sop_uid, frame_of_reference_uid=synthetic_uid(plan_seed, "for", p_idx),
        device_serial=f"SN-{plan_seed % 9973:04d}-{p_idx:03d}", acquired=video.acquired,
    )


def active_masks(video: VideoPlan) -> dict[str, np.ndarray]:
    """1-based inclusive intervals -> (n_frames,) bool per pattern."""
    masks = {}
    for pattern in PATTERNS:
        mask = np.zeros(video.n_frames, dtype=bool)
        for start, end in video.intervals[pattern]:
            mask[start - 1:end] = True
        masks[pattern] = mask
    return masks


def render_region(video: VideoPlan) -> np.ndarray:
    """(T,h,w) uint8 ultrasound region frames for a planned video."""
    spec = VideoSpec(n_frames=video.n_frames, fps=video.fps, active=active_masks(video), seed=video.seed,
                     geometry=GEOMETRY, gain=video.gain)
    return render_video(spec)


def encode_video(plan_seed: int, p_idx: int, patient: PatientPlan, video: VideoPlan) -> bytes:
    """The file bytes of one planned video (DICOM or screen-recording MP4)."""
    region = render_region(video)
    text = burned_text(patient, video)
    box = screen.region_box(*region.shape[1:])
    apex = (screen.REGION_X0 + GEOMETRY.apex_x, screen.REGION_Y0 + GEOMETRY.apex_y)
    if video.kind == "screen_mp4":
        title = f"US Capture - {text.name} ({patient.mrn})"
        frames = np.stack([recordings.capture_frame(screen.compose(f, text, rgb=False), title) for f in region])
        return recordings.encode_mp4(frames, video.fps)
    rgb = video.kind == "dicom_jpeg"
    frames = np.stack([screen.compose(f, text, rgb=rgb) for f in region])
    return dicom_files.build_dicom(frames, identity(plan_seed, p_idx, patient, video), video.fps, box, apex, jpeg=rgb)


def video_relpath(patient: PatientPlan, video: VideoPlan) -> str:
    folder = f"{patient.mrn}/{patient.study_date:%Y%m%d}"
    if video.kind == "screen_mp4":
        return f"{folder}/screen_{video.index:02d}.mp4"
    # Some exports carry no file extension (DICOMDIR-style names): ingest must sniff the preamble.
    return f"{folder}/IM{video.index:05d}" if video.index % 5 == 0 else f"{folder}/US_{video.index:04d}.dcm"


def _write_one(job: tuple[int, int, int, PatientPlan, VideoPlan, str]) -> Written:
    plan_seed, p_idx, _, patient, video, raw = job
    data = encode_video(plan_seed, p_idx, patient, video)
    relpath = video_relpath(patient, video)
    write_bytes_new(Path(raw) / relpath, data)
    pid = patient_pseudonym(DEMO_KEY, patient.mrn)
    key = f"sha256:{hashlib.sha256(data).hexdigest()}" if video.kind == "screen_mp4" else video.sop_uid
    return Written(relpath, video_pseudonym(DEMO_KEY, pid, key), hashlib.sha256(data).hexdigest())


def write_oddities(params: SynthParams, patients: tuple[PatientPlan, ...], raw: Path, written: list[Written]) -> list[str]:
    """Files a real export folder contains besides good cines; returns their relative paths."""
    from dataclasses import replace

    first, second = patients[0], patients[min(1, len(patients) - 1)]
    base = first.videos[0]
    out = []
    # 1. A single-frame still image (the seed excluded images; so do we).
    still = replace(base, n_frames=1, intervals={p: () for p in PATTERNS}, sop_uid=synthetic_uid(params.seed, "still"))
    region = render_region(still)
    frames = screen.compose(region[0], burned_text(first, still), rgb=False)[None]
    box = screen.region_box(*region.shape[1:])
    apex = (screen.REGION_X0 + GEOMETRY.apex_x, screen.REGION_Y0 + GEOMETRY.apex_y)
    data = dicom_files.build_dicom(frames, identity(params.seed, 0, first, still), still.fps, box, apex, jpeg=False)
    out.append(_put(raw, f"{first.mrn}/{first.study_date:%Y%m%d}/US_STILL.dcm", data))
    # 2. A patient-information screen: multi-frame, but no ultrasound region at all.
    info = replace(second.videos[0], sop_uid=synthetic_uid(params.seed, "info"))
    page = screen.info_screen(burned_text(second, info), ("REASON: DYSPNEA", "WARD: MICU BED 7"))
    data = dicom_files.build_dicom(np.repeat(page[None], 5, axis=0), identity(params.seed, 1, second, info),
                                   30.0, None, (0.0, 0.0), jpeg=False)
    out.append(_put(raw, f"{second.mrn}/{second.study_date:%Y%m%d}/US_INFO.dcm", data))
    # 3. The same instance exported twice (same SOP Instance UID), under another name.
    original = next(w for w in written if w.relpath.startswith(f"{first.mrn}/") and not w.relpath.endswith(".mp4"))
    out.append(_put(raw, f"{first.mrn}/{first.study_date:%Y%m%d}/COPY_{Path(original.relpath).name}",
                    (raw / original.relpath).read_bytes()))
    # 4. A file cut short by an interrupted transfer.
    cut = replace(base, n_frames=24, sop_uid=synthetic_uid(params.seed, "truncated"), kind="dicom_native")
    data = encode_video(params.seed, 0, first, cut)
    out.append(_put(raw, f"{first.mrn}/{first.study_date:%Y%m%d}/US_TRUNC.dcm", data[: int(len(data) * 0.6)]))
    return out


def _put(raw: Path, relpath: str, data: bytes) -> str:
    write_bytes_new(raw / relpath, data)
    return relpath


def planted_phi(patients: tuple[PatientPlan, ...]) -> dict[str, list[str]]:
    """Every PHI string the generator planted, by kind; de-identification tests search for these."""
    strings: dict[str, set[str]] = {"names": set(), "ids": set(), "dates": set(), "institution": {HOSPITAL}}
    for patient in patients:
        last, first = patient.name.split("^")
        strings["names"].update({patient.name, last, first, f"{last} {first}"})
        strings["ids"].update({patient.mrn, patient.accession, f"NHI{patient.mrn[::-1]}"})
        strings["dates"].update({patient.birth_date.isoformat(), patient.birth_date.strftime("%Y%m%d"),
                                 patient.study_date.strftime("%Y%m%d"), patient.study_date.isoformat()})
    return {k: sorted(v) for k, v in strings.items()}


def generate(params: SynthParams, data_root: Path = paths.DATA, progress: bool = True) -> dict:
    """Write the whole synthetic study under `data_root`; returns a summary dict."""
    data_root = Path(data_root)
    raw = data_root / paths.RAW.relative_to(paths.DATA)
    if raw.exists() and any(raw.iterdir()):
        raise FileExistsError(f"{raw} is not empty: luskit synth only writes into an empty data folder")
    plan = plan_study(params)
    jobs = [(params.seed, p_idx, v_idx, patient, video, str(raw))
            for p_idx, patient in enumerate(plan.patients) for v_idx, video in enumerate(patient.videos)]
    with ProcessPoolExecutor(max_workers=params.workers) as pool:
        written = list(tqdm(pool.map(_write_one, jobs), total=len(jobs), desc="synth videos",
                            unit="video", disable=not progress))
    odd = write_oddities(params, plan.patients, raw, written) if params.oddities else []
    truths = _truths(plan, written, jobs)
    _write_reference(data_root, truths)
    export = build_export(truths, params.readers, params.senior, params.seed + 1, params.export_time)
    stamp = params.export_time.replace(":", "").replace("-", "")
    ann = data_root / paths.ANNOTATIONS.relative_to(paths.DATA) / f"{stamp}.json"
    write_bytes_new(ann, json.dumps(export, indent=1, sort_keys=True).encode())
    write_bytes_new(data_root / paths.PLANTED_PHI.relative_to(paths.DATA),
                    json.dumps(planted_phi(plan.patients), indent=1).encode())
    (data_root / paths.REVIEWS.relative_to(paths.DATA)).mkdir(parents=True, exist_ok=True)
    (data_root / paths.REVIEWS.relative_to(paths.DATA) / ".keep").touch()
    # deidentify depends on this folder (releases of withheld videos): DVC needs it to exist, git/DVC keep no empty one
    (data_root / paths.DEID_REVIEWS.relative_to(paths.DATA)).mkdir(parents=True, exist_ok=True)
    (data_root / paths.DEID_REVIEWS.relative_to(paths.DATA) / ".keep").touch()
    size = sum(f.stat().st_size for f in data_root.rglob("*") if f.is_file())
    return {"patients": len(plan.patients), "videos": len(written), "oddities": len(odd),
            "frames": sum(j[4].n_frames for j in jobs), "bytes": size, "annotation_snapshot": str(ann)}


def _truths(plan, written: list[Written], jobs) -> list[TaskTruth]:
    return [TaskTruth(video_id=w.video_id, patient_id=patient_pseudonym(DEMO_KEY, patient.mrn), fps=video.fps,
                      n_frames=video.n_frames, intervals=video.intervals, quality=video.quality, period=patient.period)
            for w, (_, _, _, patient, video, _) in zip(written, jobs)]


def _write_reference(data_root: Path, truths: list[TaskTruth]) -> None:
    """truth.parquet: one row per true range; videos.parquet: one row per video (pseudonymous ids only)."""
    ref = data_root / paths.REFERENCE.relative_to(paths.DATA)
    rows = [{"video_id": t.video_id, "patient_id": t.patient_id, "pattern": p, "start": s, "end": e}
            for t in truths for p in PATTERNS for s, e in t.intervals[p]]
    truth = pd.DataFrame(rows, columns=["video_id", "patient_id", "pattern", "start", "end"])
    videos = pd.DataFrame([{"video_id": t.video_id, "patient_id": t.patient_id, "period": t.period, "fps": t.fps,
                            "n_frames": t.n_frames, "quality": t.quality} for t in truths])
    for name, frame in (("truth.parquet", truth), ("videos.parquet", videos)):
        write_bytes_new(ref / name, _parquet_bytes(frame))


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    # No pandas metadata timestamps exist in Parquet, but row-group stats/writer version are pinned.
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
