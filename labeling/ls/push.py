"""`luskit label push`: de-identified videos -> Label Studio tasks, never duplicated.

Tasks come from artifacts/deid/videos.parquet (one row per de-identified video); task data is
{video, video_id, patient_id, fps} (pseudonymous ids only). Development videos go to the round's
development project, temporal ones to the senior's temporal project, and gold videos (see
labeling/ls/projects.py) get overlap = all readers plus a copy in the temporal project.

Crash safety: the existing tasks' video_ids are read first and only missing videos are imported,
in small batches; Label Studio commits one import request (tasks and their predictions) in one
transaction. A push killed at any point (even the server killed -9) and run again ends with every
video exactly once. Per-task overlap and predictions for tasks that already existed are then
brought to the wanted state, which is idempotent too.

Predictions (pre-annotations) come from a Parquet table, one row per predicted range or frame:
    video_id: str, pattern: str (one of luskit.schema.PATTERNS), start: int, end: int
    (1-based inclusive frames; start == end for per-frame rows), score: float in [0, 1],
    model_version: str
Adjacent or overlapping rows of one pattern merge into one timeline region. `--blind` withholds
predictions (first reads must not be anchored by the model) and hides any already on the server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from luskit.schema import LS_PATTERNS, LS_VIDEO, PATTERNS, PERIODS, ls_video_url
from labeling.ls.projects import ADJUDICATION, DEVELOPMENT, TEMPORAL

BATCH_SIZE = 10
VIDEO_COLUMNS = ("video_id", "patient_id", "period", "fps")
PREDICTION_COLUMNS = ("video_id", "pattern", "start", "end", "score", "model_version")
CLIP_COLUMNS = ("video_id", "start", "end")


class PushError(ValueError):
    """Bad input for push; the message names the file and the fix."""


@dataclass
class PlannedTask:
    """One task a project should hold: its key (video_id or clip_id), the import payload, its overlap."""

    key: str
    video_id: str
    payload: dict
    overlap: int | None = None  # None: the project's maximum_annotations


@dataclass
class PushSummary:
    project_id: int
    wanted: int = 0
    created: int = 0
    already_there: int = 0
    overlap_set: int = 0
    predictions_added: int = 0
    gold: int = 0
    batches: list[int] = field(default_factory=list)

    def line(self, role: str) -> str:
        return (f"{role}: {self.wanted} tasks wanted, {self.created} created, {self.already_there} already there, "
                f"{self.gold} gold, {self.predictions_added} predictions added, overlap set on {self.overlap_set}")


# ---------------------------------------------------------------- inputs


def read_videos(path: Path) -> pd.DataFrame:
    """artifacts/deid/videos.parquet, checked: the columns push needs, known periods, positive fps."""
    path = Path(path)
    if not path.exists():
        raise PushError(f"{path} not found: run `dvc repro deidentify` first")
    df = pd.read_parquet(path)
    missing = [c for c in VIDEO_COLUMNS if c not in df.columns]
    if missing:
        raise PushError(f"{path} lacks column(s) {missing}: regenerate it with `dvc repro deidentify`")
    bad = df.loc[~df["period"].isin(PERIODS), "video_id"].tolist()
    if bad:
        raise PushError(f"{path}: period must be one of {PERIODS} (video {bad[0]})")
    if (df["fps"].isna() | (df["fps"] <= 0)).any():
        raise PushError(f"{path}: fps missing or not positive for {df.loc[df['fps'].fillna(0) <= 0, 'video_id'].iloc[0]}")
    if df["video_id"].duplicated().any():
        raise PushError(f"{path}: video_id {df.loc[df['video_id'].duplicated(), 'video_id'].iloc[0]} appears twice")
    return df.sort_values("video_id").reset_index(drop=True)


def only(videos: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """The rows of `wanted` video ids (e.g. `luskit label select`'s list); PushError naming an unknown one."""
    unknown = sorted(set(wanted) - set(videos["video_id"]))
    if unknown:
        raise PushError(f"{len(unknown)} listed video(s) are not among the de-identified videos, e.g. {unknown[0]}: "
                        "pass --artifacts of the folder they were predicted in")
    return videos[videos["video_id"].isin(set(wanted))].reset_index(drop=True)


def check_media(videos: pd.DataFrame, videos_dir: Path) -> None:
    """Every video must exist as artifacts/videos/<video_id>.mp4 (the URL the task will point at)."""
    missing = [v for v in videos["video_id"] if not (Path(videos_dir) / f"{v}.mp4").exists()]
    if missing:
        raise PushError(f"{len(missing)} video(s) missing under {videos_dir}, e.g. {missing[0]}.mp4: "
                        "run `dvc repro deidentify`")


def read_predictions(path: Path, videos: pd.DataFrame) -> pd.DataFrame:
    """The predictions table (see the module docstring), validated against the videos."""
    df = pd.read_parquet(path)
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise PushError(f"{path} lacks column(s) {missing}; expected {PREDICTION_COLUMNS}")
    unknown = sorted(set(df["pattern"]) - set(PATTERNS))
    if unknown:
        raise PushError(f"{path}: unknown pattern(s) {unknown}; use {PATTERNS}")
    if ((df["start"] < 1) | (df["end"] < df["start"])).any():
        raise PushError(f"{path}: frames are 1-based with start <= end")
    if "n_frames" in videos.columns:
        n = df["video_id"].map(videos.set_index("video_id")["n_frames"])
        beyond = df[n.notna() & (df["end"] > n)]
        if len(beyond):
            raise PushError(f"{path}: range ends after the last frame of {beyond['video_id'].iloc[0]}")
    return df


def _hash01(*parts: str) -> float:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:12], 16) / 16**12


def gold_videos(videos: pd.DataFrame, reference_ids: set[str], fraction: float, round_name: str) -> set[str]:
    """The development videos with reference labels chosen as gold: a fixed hash of (round, video_id).

    The same videos on every run of a round (so re-runs are idempotent) and a fresh choice for a
    new round.
    """
    dev = videos.loc[videos["period"] == "development", "video_id"]
    return {v for v in dev if v in reference_ids and _hash01(round_name, v) < fraction}


# ---------------------------------------------------------------- tasks and predictions


def video_task(row, round_name: str, gold: bool) -> dict:
    """The import payload of one video (README "Annotation snapshot format")."""
    return {"data": {"video": ls_video_url(row.video_id), "video_id": row.video_id,
                     "patient_id": row.patient_id, "fps": float(row.fps)},
            "meta": {"luskit": {"round": round_name, "period": row.period, "gold": gold}}}


def _merge(rows: pd.DataFrame) -> list[tuple[int, int, float]]:
    """Sorted (start, end, mean score) regions: adjacent or overlapping ranges merge."""
    merged: list[list] = []
    for r in rows.sort_values(["start", "end"]).itertuples(index=False):
        if merged and r.start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], int(r.end))
            merged[-1][2].append(float(r.score))
        else:
            merged.append([int(r.start), int(r.end), [float(r.score)]])
    return [(s, e, sum(sc) / len(sc)) for s, e, sc in merged]


def prediction_payloads(preds: pd.DataFrame) -> dict[str, list[dict]]:
    """{video_id: [prediction dicts (one per model_version)]} in Label Studio's format."""
    out: dict[str, list[dict]] = {}
    for (video_id, version), rows in preds.groupby(["video_id", "model_version"], sort=True):
        result, scores = [], []
        for pattern in PATTERNS:
            for k, (s, e, score) in enumerate(_merge(rows[rows["pattern"] == pattern])):
                rid = hashlib.sha1(f"{video_id}|{version}|{pattern}|{k}".encode()).hexdigest()[:10]
                result.append({"id": rid, "type": "timelinelabels", "from_name": LS_PATTERNS, "to_name": LS_VIDEO,
                               "score": round(score, 6),
                               "value": {"ranges": [{"start": s, "end": e}], "timelinelabels": [pattern]}})
                scores.append(score)
        out.setdefault(video_id, []).append({"model_version": str(version), "result": result,
                                             "score": round(sum(scores) / len(scores), 6) if scores else None})
    return out


def plan_timeline(videos: pd.DataFrame, round_name: str, gold: set[str], readers: int) -> dict[str, list[PlannedTask]]:
    """{development: [...], temporal: [...]}: what each project of the round should hold."""
    plans: dict[str, list[PlannedTask]] = {DEVELOPMENT: [], TEMPORAL: []}
    for row in videos.itertuples(index=False):
        is_gold = row.video_id in gold
        task = video_task(row, round_name, is_gold)
        if row.period == "development":
            plans[DEVELOPMENT].append(PlannedTask(row.video_id, row.video_id, task, readers if is_gold else None))
            if is_gold:  # the senior reader reads gold too: a copy in the temporal project
                plans[TEMPORAL].append(PlannedTask(row.video_id, row.video_id, task))
        else:
            plans[TEMPORAL].append(PlannedTask(row.video_id, row.video_id, task))
    return plans


def plan_clips(clips: pd.DataFrame, videos: pd.DataFrame, round_name: str) -> list[PlannedTask]:
    """Adjudication tasks from a clip table (video_id, start, end 1-based inclusive, optional clip_id)."""
    missing = [c for c in CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise PushError(f"clip table lacks column(s) {missing}; expected {CLIP_COLUMNS} (+ clip_id)")
    info = videos.set_index("video_id")
    unknown = sorted(set(clips["video_id"]) - set(info.index))
    if unknown:
        raise PushError(f"clip table names video(s) not in the videos table, e.g. {unknown[0]}")
    out = []
    for r in clips.itertuples(index=False):
        clip_id = getattr(r, "clip_id", None) or f"{r.video_id}_{int(r.start):05d}_{int(r.end):05d}"
        v = info.loc[r.video_id]
        payload = {"data": {"video": ls_video_url(r.video_id), "video_id": r.video_id, "clip_id": clip_id,
                            "patient_id": v["patient_id"], "fps": float(v["fps"]),
                            "start": int(r.start), "end": int(r.end)},
                   "meta": {"luskit": {"round": round_name, "period": v["period"], "gold": False}}}
        out.append(PlannedTask(clip_id, r.video_id, payload))
    return out


# ---------------------------------------------------------------- the push itself


def _batches(items: list, size: int) -> Iterator[list]:
    for k in range(0, len(items), size):
        yield items[k:k + size]


def push_project(ls, project_id: int, planned: list[PlannedTask], predictions: dict[str, list[dict]] | None,
                 key: str = "video_id", batch_size: int = BATCH_SIZE, progress: bool = False) -> PushSummary:
    """Bring one project to hold exactly `planned` (adds only; never deletes or duplicates).

    `predictions` None means blind: nothing from the model is sent.
    """
    from tqdm import tqdm

    from labeling.ls import client

    summary = PushSummary(project_id=project_id, wanted=len(planned),
                          gold=sum(p.payload["meta"]["luskit"]["gold"] for p in planned))
    existing = client.tasks_by_key(ls, project_id, key)
    new = [p for p in planned if p.key not in existing]
    summary.already_there = len(planned) - len(new)
    bar = tqdm(total=len(new), desc=f"push project {project_id}", unit="task", disable=not progress)
    for batch in _batches(new, batch_size):
        payloads = [{**p.payload, "predictions": (predictions or {}).get(p.video_id, [])} for p in batch]
        ids = client.import_tasks(ls, project_id, payloads)
        summary.created += len(ids)
        summary.batches.append(len(ids))
        bar.update(len(batch))
    bar.close()
    if any(p.overlap is not None for p in planned) or (predictions and existing):
        existing = client.tasks_by_key(ls, project_id, key)  # new tasks included
    summary.overlap_set = _ensure_overlap(ls, planned, existing)
    if predictions:
        summary.predictions_added = _ensure_predictions(ls, planned, existing, predictions)
    return summary


def _ensure_overlap(ls, planned: list[PlannedTask], existing: dict[str, dict]) -> int:
    from labeling.ls import client

    changed = 0
    for p in planned:
        task = existing.get(p.key)
        if p.overlap is not None and task is not None and task["overlap"] != p.overlap:
            client.set_overlap(ls, task["id"], p.overlap)
            changed += 1
    return changed


def _ensure_predictions(ls, planned: list[PlannedTask], existing: dict[str, dict], predictions) -> int:
    """Add each model_version's prediction to tasks lacking it (tasks pushed earlier, e.g. blind)."""
    from labeling.ls import client

    added = 0
    for p in planned:
        task = existing.get(p.key)
        if task is None:
            continue
        for pred in predictions.get(p.video_id, []):
            if pred["model_version"] not in task["model_versions"]:
                client.create_prediction(ls, task["id"], pred["result"], pred["score"], pred["model_version"])
                task["model_versions"].add(pred["model_version"])
                added += 1
    return added


def push_round(ls, round_name: str, videos: pd.DataFrame, reference_ids: set[str] = frozenset(),
               predictions: pd.DataFrame | None = None, blind: bool = False, gold_fraction: float = 0.1,
               readers: int = 2, batch_size: int = BATCH_SIZE, progress: bool = False) -> dict[str, PushSummary]:
    """Push every video to the round's development/temporal projects (which `init` created)."""
    from labeling.ls.projects import round_projects

    projects = round_projects(ls, round_name, (DEVELOPMENT, TEMPORAL))
    gold = gold_videos(videos, set(reference_ids), gold_fraction, round_name)
    plans = plan_timeline(videos, round_name, gold, readers)
    preds = None if blind or predictions is None else prediction_payloads(predictions)
    out = {}
    for role, planned in plans.items():
        project_id = projects[role].id
        _set_prediction_visibility(ls, project_id, blind, preds is not None)
        out[role] = push_project(ls, project_id, planned, preds, "video_id", batch_size, progress)
    return out


def push_clips(ls, round_name: str, clips: pd.DataFrame, videos: pd.DataFrame,
               batch_size: int = BATCH_SIZE, progress: bool = False) -> PushSummary:
    """Push adjudication clips (no predictions: adjudicators decide unanchored)."""
    from labeling.ls.projects import round_projects

    project = round_projects(ls, round_name, (ADJUDICATION,))[ADJUDICATION]
    _set_prediction_visibility(ls, project.id, True, False)
    return push_project(ls, project.id, plan_clips(clips, videos, round_name), None, "clip_id", batch_size, progress)


def _set_prediction_visibility(ls, project_id: int, blind: bool, have_predictions: bool) -> None:
    """Blind: readers see no pre-annotation, not even ones pushed earlier. With predictions: shown."""
    if blind or have_predictions:
        ls.projects.update(id=project_id, show_collab_predictions=not blind)
