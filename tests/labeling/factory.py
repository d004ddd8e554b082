"""Hand-made Label Studio full-JSON exports and clip manifests for the labeling tests (pseudonymous ids only)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from curation.clips import ClipParams, build_manifest
from luskit.schema import LS_PATTERNS, LS_QUALITY, LS_VIDEO, ls_video_url


def user(email: str, uid: int = 2) -> dict:
    return {"id": uid, "email": email, "first_name": "", "last_name": ""}


def _quality(ann_id: int, quality: str | None) -> list[dict]:
    """The quality Choices region (none when `quality` is None: the annotator left it empty)."""
    return [] if quality is None else [{"type": "choices", "from_name": LS_QUALITY, "to_name": LS_VIDEO,
                                        "id": f"q{ann_id}", "value": {"choices": [quality]}, "origin": "manual"}]


def annotation(ann_id: int, who, ranges: dict[str, list[tuple[int, int]]] | None = None, quality: str | None = "usable",
               updated_at: str = "2024-11-30T12:00:00Z", cancelled: bool = False) -> dict:
    """One annotation; `who` is an e-mail (expanded user) or an int (bare id, as without expansion)."""
    result = [{"type": "timelinelabels", "from_name": LS_PATTERNS, "to_name": LS_VIDEO, "id": f"r{ann_id}{p}{k}",
               "value": {"ranges": [{"start": s, "end": e}], "timelinelabels": [p]}, "origin": "manual"}
              for p, rs in (ranges or {}).items() for k, (s, e) in enumerate(rs)]
    result += _quality(ann_id, quality)
    return {"id": ann_id, "completed_by": user(who) if isinstance(who, str) else who, "result": result,
            "was_cancelled": cancelled, "ground_truth": False, "created_at": updated_at, "updated_at": updated_at,
            "task": 0, "project": 1}


def task(task_id: int, video_id: str, patient_id: str, annotations: list[dict], fps: float = 30.0,
         project: int = 1) -> dict:
    return {"id": task_id, "data": {"video": ls_video_url(video_id), "video_id": video_id, "patient_id": patient_id,
                                    "fps": fps}, "annotations": annotations, "predictions": [], "project": project}


def write_snapshot(folder: Path, name: str, tasks: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(tasks))
    return path


def manifest(videos: list[tuple[str, str, int]], length: int = 10, overlap: int = 2, period: str = "development"
             ) -> pd.DataFrame:
    """Clip manifest for (video_id, patient_id, n_frames) videos, the clips stage's own function."""
    table = pd.DataFrame([{"video_id": v, "patient_id": p, "period": period, "n_frames": n, "fps": 30.0}
                          for v, p, n in videos])
    return build_manifest(table, ClipParams(length=length, overlap=overlap))


def adjudication(ann_id: int, who, ticked: list[str], quality: str | None = "usable",
                 updated_at: str = "2024-12-01T12:00:00Z", cancelled: bool = False) -> dict:
    """One annotation of the clip-level Choices project (labeling/ls/configs/clip_choices.xml)."""
    result = [{"type": "choices", "from_name": LS_PATTERNS, "to_name": LS_VIDEO, "id": f"p{ann_id}",
               "value": {"choices": ticked}, "origin": "manual"}] if ticked else []
    result += _quality(ann_id, quality)
    return {"id": ann_id, "completed_by": user(who) if isinstance(who, str) else who, "result": result,
            "was_cancelled": cancelled, "created_at": updated_at, "updated_at": updated_at, "project": 9}


def clip_task(task_id: int, clip_id: str, video_id: str, annotations: list[dict], project: int = 9) -> dict:
    return {"id": task_id, "data": {"video": ls_video_url(video_id), "video_id": video_id, "clip_id": clip_id,
                                    "start": 1, "end": 10}, "annotations": annotations, "project": project}
