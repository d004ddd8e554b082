"""Simulated annotators and the Label Studio full-JSON export they "produce".

Each reader is the truth seen through a noisy eye: boundaries jitter, some ranges are missed and a
few spurious ranges appear. Two readers label every development video, the senior reader labels the
temporal ones. The output has exactly the shape of Label Studio's full JSON export
(`luskit label pull`), with `completed_by` expanded to the user object, so downstream code cannot
tell a simulated snapshot from a real one. See docs in README ("Annotation snapshot format").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from luskit.schema import LS_PATTERNS, LS_QUALITY, LS_VIDEO, PATTERNS, ls_video_url
from curation.synth.params import ReaderProfile
from curation.synth.study import Interval

PROJECT_ID = 1
FIRST_USER_ID = 2  # user 1 is the Label Studio admin who created the project


@dataclass(frozen=True)
class TaskTruth:
    """What the simulation knows about one video when it builds that video's task."""

    video_id: str
    patient_id: str
    fps: float
    n_frames: int
    intervals: dict[str, tuple[Interval, ...]]
    quality: str
    period: str


def read_like(rng: np.random.Generator, truth: TaskTruth, reader: ReaderProfile) -> dict[str, list[Interval]]:
    """One reader's ranges per pattern (1-based inclusive, clipped to the video)."""
    n = truth.n_frames
    out: dict[str, list[Interval]] = {}
    for pattern in PATTERNS:
        ranges = []
        for start, end in truth.intervals[pattern]:
            if rng.random() < reader.miss_rate:
                continue
            j = reader.jitter_frames
            s = int(np.clip(start + rng.integers(-j, j + 1), 1, n))
            e = int(np.clip(end + rng.integers(-j, j + 1), s, n))
            ranges.append((s, e))
        if rng.random() < reader.false_positive_rate:
            length = int(rng.integers(3, max(4, n // 6)))
            s = int(rng.integers(1, max(2, n - length)))
            ranges.append((s, min(n, s + length - 1)))
        out[pattern] = sorted(ranges)
    return out


def _region_id(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:10]


def _user(reader: ReaderProfile, user_id: int) -> dict:
    # Exactly the fields Label Studio 1.23 writes for `annotations__completed_by: {only_id: False}`.
    return {"id": user_id, "email": reader.email, "first_name": reader.first_name, "last_name": reader.last_name}


def annotation_result(ranges: dict[str, list[Interval]], quality: str, seed: str) -> list[dict]:
    """The `result` list of one annotation: one timeline region per range plus the quality choice."""
    result = []
    for pattern in PATTERNS:
        for k, (s, e) in enumerate(ranges.get(pattern, [])):
            result.append({
                "value": {"ranges": [{"start": s, "end": e}], "timelinelabels": [pattern]},
                "id": _region_id(seed, pattern, k), "from_name": LS_PATTERNS, "to_name": LS_VIDEO,
                "type": "timelinelabels", "origin": "manual",
            })
    result.append({"value": {"choices": [quality]}, "id": _region_id(seed, "quality"), "from_name": LS_QUALITY,
                   "to_name": LS_VIDEO, "type": "choices", "origin": "manual"})
    return result


def build_export(tasks: list[TaskTruth], readers: tuple[ReaderProfile, ...], senior: ReaderProfile,
                 seed: int, export_time: str) -> list[dict]:
    """A Label Studio full JSON export (list of task dicts) for `tasks`, annotated by the simulated readers."""
    rng = np.random.default_rng(seed)
    user_ids = {r.email: FIRST_USER_ID + k for k, r in enumerate((*readers, senior))}
    exported, annotation_id = [], 0
    for task_id, truth in enumerate(tasks, start=1):
        assigned = readers if truth.period == "development" else (senior,)
        annotations = []
        for reader in assigned:
            annotation_id += 1
            excluded = truth.quality != "usable"
            ranges = {} if excluded else read_like(rng, truth, reader)
            annotations.append({
                "id": annotation_id, "completed_by": _user(reader, user_ids[reader.email]),
                "result": annotation_result(ranges, truth.quality, f"{truth.video_id}|{reader.email}"),
                "was_cancelled": False, "ground_truth": False, "created_at": export_time, "updated_at": export_time,
                "draft_created_at": None, "lead_time": float(np.round(rng.uniform(20, 240), 3)), "prediction": {},
                "result_count": 0, "unique_id": _region_id("annotation", annotation_id, seed), "import_id": None,
                "last_action": None, "bulk_created": False, "task": task_id, "project": PROJECT_ID,
                "updated_by": user_ids[reader.email], "parent_prediction": None, "parent_annotation": None,
                "last_created_by": None,
            })
        exported.append({
            "id": task_id, "annotations": annotations, "drafts": [], "predictions": [],
            "data": {"video": ls_video_url(truth.video_id), "video_id": truth.video_id,
                     "patient_id": truth.patient_id, "fps": truth.fps},
            "meta": {}, "created_at": export_time, "updated_at": export_time, "inner_id": task_id,
            "total_annotations": len(annotations), "cancelled_annotations": 0, "total_predictions": 0,
            "comment_count": 0, "unresolved_comment_count": 0, "last_comment_updated_at": None,
            "project": PROJECT_ID, "updated_by": None, "comment_authors": [],
        })
    return exported
