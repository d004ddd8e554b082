"""Plan a synthetic ICU study: patients, videos, pattern intervals and real-world oddities.

Pure and seeded: `plan_study(params)` draws everything from one generator so the same params give
the same plan. Rendering and file writing happen elsewhere (render.py, dicom_files.py, ...).
Intervals are 1-based inclusive frame ranges, the seed's and Label Studio's annotation unit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from luskit.schema import PATTERNS
from curation.synth.params import SynthParams

Interval = tuple[int, int]  # (start, end), 1-based, inclusive

_FIRST = ("MINJI", "JIHOON", "SEOYEON", "DOYUN", "HAEUN", "JUWON", "YUNA", "SIWOO", "CHAERIN", "MINSEO",
          "GEONWOO", "JIAN", "HAYUN", "EUNWOO", "SUA", "TAEYANG", "DAHYE", "JUNHO", "YERIN", "HYUNWOO")
_LAST = ("KIMBERLEY", "PARKINSON", "LEEWARD", "CHOIRMAN", "JUNGFRAU", "KANGAROO", "YOONSTONE", "JANGLER",
         "LIMBURG", "HANOVER", "SHINWELL", "OHLSSON", "SEOLHAVEN", "KWONDALE", "SONGBIRD", "BAEKERT")
HOSPITAL = "SEOUL DEMO GENERAL HOSPITAL"
INSTITUTION_ADDRESS = "101 DAEHAK-RO JONGNO-GU SEOUL"
PHYSICIANS = ("DR^HWANG^SOOJIN", "DR^MOON^JAEHYUN", "DR^YOO^BORA")


@dataclass(frozen=True)
class VideoPlan:
    index: int  # 1-based within the patient
    kind: str  # "dicom_native" | "dicom_jpeg" | "screen_mp4"
    fps: float
    n_frames: int
    intervals: dict[str, tuple[Interval, ...]]  # pattern -> true ranges (empty tuple when absent)
    gain: float  # 1.0 normally; low for a dark, unusable video
    quality: str  # what a reader should choose: "usable" or "exclude: dark"
    seed: int
    sop_uid: str  # unique per DICOM; for screen recordings it only seeds the render
    acquired: datetime


@dataclass(frozen=True)
class PatientPlan:
    mrn: str  # hospital number (PHI)
    name: str  # DICOM PN, FAMILY^GIVEN (PHI)
    birth_date: date
    sex: str
    period: str  # "development" | "temporal"
    study_date: date
    accession: str
    physician: str
    videos: tuple[VideoPlan, ...]


@dataclass(frozen=True)
class StudyPlan:
    patients: tuple[PatientPlan, ...]


def synthetic_uid(seed: int, *parts: object) -> str:
    """A deterministic, valid DICOM UID under the 2.25 (UUID-derived) root."""
    digest = hashlib.sha256("|".join(map(str, (seed, *parts))).encode()).digest()[:16]
    return "2.25." + str(int.from_bytes(digest, "big"))


def _draw_intervals(rng: np.random.Generator, n_frames: int) -> tuple[Interval, ...]:
    """One or two ranges covering 20-100 % of the video: patterns come and go as the probe moves."""
    if rng.random() < 0.7 or n_frames < 60:
        length = int(rng.uniform(0.2, 1.0) * n_frames)
        length = max(length, min(12, n_frames))
        start = int(rng.integers(1, n_frames - length + 2))
        return ((start, start + length - 1),)
    cut = int(rng.integers(n_frames // 3, 2 * n_frames // 3))
    first = _draw_intervals(rng, cut)[0]
    second = _draw_intervals(rng, n_frames - cut - 5)[0]
    return (first, (second[0] + cut + 5, second[1] + cut + 5))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


def _video_patterns(rng, base: dict[str, float], offsets: np.ndarray, n_frames: int) -> dict[str, tuple[Interval, ...]]:
    present = {}
    for k, pattern in enumerate(PATTERNS):
        logit = _logit(base[pattern]) + offsets[k]
        if pattern == "A-lines" and present.get("B-lines"):
            logit -= 0.8  # many B-lines wipe out A-lines: the two are anti-correlated in practice
        p = 1.0 / (1.0 + np.exp(-logit))
        present[pattern] = _draw_intervals(rng, n_frames) if rng.random() < p else ()
    return present


def _date_in(rng, span: tuple[str, str]) -> date:
    start, end = (date.fromisoformat(d) for d in span)
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def plan_study(params: SynthParams) -> StudyPlan:
    """Draw the whole study. Kinds, dark videos and screen recordings are spread over development patients."""
    rng = np.random.default_rng(params.seed)
    periods = ["development"] * params.n_patients_development + ["temporal"] * params.n_patients_temporal
    fps_p = np.asarray(params.fps_weights, float) / sum(params.fps_weights)
    patients = []
    for p_idx, period in enumerate(periods):
        study_date = _date_in(rng, params.development_dates if period == "development" else params.temporal_dates)
        offsets = rng.normal(0.0, params.patient_heterogeneity, len(PATTERNS))
        n_videos = int(rng.integers(params.videos_per_patient[0], params.videos_per_patient[1] + 1))
        clock = datetime.combine(study_date, datetime.min.time()) + timedelta(hours=int(rng.integers(7, 20)))
        videos = []
        for v_idx in range(1, n_videos + 1):
            fps = float(rng.choice(params.fps_choices, p=fps_p))
            n_frames = int(round(rng.uniform(*params.duration_s) * fps))
            kind = "dicom_jpeg" if rng.random() < params.jpeg_fraction else "dicom_native"
            clock += timedelta(seconds=int(rng.integers(20, 90)))
            videos.append(VideoPlan(
                index=v_idx, kind=kind, fps=fps, n_frames=n_frames,
                intervals=_video_patterns(rng, params.prevalence[period], offsets, n_frames),
                gain=1.0, quality="usable", seed=int(rng.integers(0, 2**31 - 1)),
                sop_uid=synthetic_uid(params.seed, "sop", p_idx, v_idx), acquired=clock,
            ))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        patients.append(PatientPlan(
            mrn=f"{int(rng.integers(10**7, 10**8 - 1))}", name=f"{last}^{first}",
            birth_date=date(int(rng.integers(1935, 2000)), int(rng.integers(1, 13)), int(rng.integers(1, 29))),
            sex=str(rng.choice(["M", "F"])), period=period, study_date=study_date,
            accession=f"ACC{int(rng.integers(10**6, 10**7 - 1))}",
            physician=str(rng.choice(PHYSICIANS)), videos=tuple(videos),
        ))
    patients = _assign_special_videos(rng, patients, params)
    return StudyPlan(patients=tuple(patients))


def _assign_special_videos(rng, patients: list[PatientPlan], params: SynthParams) -> list[PatientPlan]:
    """Turn some development videos into screen recordings and some into dark (unusable) videos."""
    from dataclasses import replace

    slots = [(i, j) for i, p in enumerate(patients) if p.period == "development" for j in range(len(p.videos))]
    wanted = params.screen_recordings + params.dark_videos
    if wanted > len(slots):
        raise ValueError(
            f"synth: {wanted} screen recordings + dark videos requested but only {len(slots)} development "
            "videos exist; lower screen_recordings/dark_videos or add patients"
        )
    chosen = [slots[k] for k in rng.choice(len(slots), size=wanted, replace=False)]
    new = [list(p.videos) for p in patients]
    for n, (i, j) in enumerate(chosen):
        v = new[i][j]
        if n < params.screen_recordings:
            new[i][j] = replace(v, kind="screen_mp4", fps=30.0, n_frames=int(round(v.n_frames * 30.0 / v.fps)),
                                intervals={k: tuple((round((s - 1) * 30.0 / v.fps) + 1, round(e * 30.0 / v.fps)) for s, e in r)
                                           for k, r in v.intervals.items()})
        else:
            new[i][j] = replace(v, gain=0.22, quality="exclude: dark")
    return [replace(p, videos=tuple(vs)) for p, vs in zip(patients, new)]
