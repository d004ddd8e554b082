"""Label Studio full-JSON export snapshots -> long tables (one row per range, one row per annotation).

A snapshot is what `luskit label pull` (or `luskit synth`, or `labeling.sheets.import_sheet`) wrote
into data/annotations/: a JSON list of tasks (README, "Annotation snapshot format"). Two tables come
out of it:

- records: one row per (video, annotator) annotation kept: video_id, patient_id, fps, annotator,
  quality, snapshot, task_id, annotation_id, updated_at. A record with no range still says "this
  reader saw the video and found nothing", which is a rating, not a missing one.
- ranges: one row per labelled range: video_id, patient_id, annotator, pattern, start, end
  (1-based inclusive frames, int64), snapshot.

Which annotation counts: cancelled (skipped) annotations are ignored; per video and annotator the
latest wins, ordered by snapshot (file names begin with their UTC timestamp, so name order is time
order), then `updated_at`, then the annotation id. A reader who corrected a label keeps only the
correction.

Which snapshots are read (`labels.snapshots`): ``all`` reads every file; ``newest`` reads the newest
file of each *source*. A Label Studio pull is cumulative (it holds every annotation of its project
at that time), so older pulls of the same project add nothing; but a spreadsheet import is a
separate source that a later pull does not contain, and must not be hidden by it. The source of a
snapshot is the `luskit_import` marker that sheets.py writes into task meta, else the Label Studio
project id(s) of its tasks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from luskit.schema import LS_PATTERNS, LS_QUALITY, PATTERNS, QUALITY_EXCLUDE, QUALITY_USABLE

RECORD_COLUMNS = ("video_id", "patient_id", "fps", "annotator", "quality", "snapshot", "task_id",
                  "annotation_id", "updated_at")
RANGE_COLUMNS = ("video_id", "patient_id", "annotator", "pattern", "start", "end", "snapshot")
IMPORT_MARKER = "luskit_import"  # key in task["meta"] that sheets.py writes


class SnapshotError(ValueError):
    """A snapshot that cannot be parsed (the message names the file, the task and the fix)."""


def annotator_name(completed_by: object) -> str:
    """The annotator's identity: the e-mail of an expanded user, else ``user<id>`` for a bare id.

    Exports made without user expansion carry `completed_by` as an int; the e-mail is what stays
    stable across Label Studio instances, so it is preferred whenever present.
    """
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if email:
            return str(email).strip().lower()
        completed_by = completed_by.get("id")
    if isinstance(completed_by, (int, np.integer)) and not isinstance(completed_by, bool):
        return f"user{int(completed_by)}"
    if isinstance(completed_by, str) and completed_by.strip().isdigit():
        return f"user{int(completed_by)}"
    raise ValueError(f"completed_by={completed_by!r} is neither a user object nor a user id")


def snapshot_source(tasks: list[dict]) -> str:
    """Where a snapshot comes from: ``sheet:<sha256 prefix>:<annotator>`` or ``label-studio:<project ids>``."""
    for task in tasks:
        marker = (task.get("meta") or {}).get(IMPORT_MARKER)
        if isinstance(marker, dict):
            return f"sheet:{str(marker.get('sheet_sha256', ''))[:16]}:{marker.get('annotator', '')}"
    projects = set()
    for task in tasks:
        projects.add(task.get("project"))
        projects.update(a.get("project") for a in task.get("annotations") or [])
    projects.discard(None)
    return "label-studio:" + ",".join(str(p) for p in sorted(projects, key=str))


def select_snapshots(sources: dict[str, str], mode: str) -> list[str]:
    """Snapshot names to read, oldest first. `sources` maps snapshot name -> snapshot_source()."""
    names = sorted(sources)
    if mode == "all":
        return names
    if mode != "newest":
        raise ValueError(f"snapshots={mode!r}: use newest or all")
    newest = {sources[name]: name for name in names}  # later names overwrite: the newest per source
    return sorted(newest.values())


def _frame(value: object, where: str) -> int:
    """A 1-based frame number from JSON (ints, or floats holding an integer)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise SnapshotError(f"{where}: frame {value!r} is not a whole number; fix the range in Label Studio "
                            "and pull again")
    if int(value) < 1:
        raise SnapshotError(f"{where}: frame {value} < 1 (ranges are 1-based); fix the range and pull again")
    return int(value)


def _ranges_of(result: list[dict], where: str) -> Iterable[tuple[str, int, int]]:
    for region in result:
        if region.get("type") != "timelinelabels" or region.get("from_name") != LS_PATTERNS:
            continue
        value = region.get("value") or {}
        for pattern in value.get("timelinelabels") or []:
            if pattern not in PATTERNS:
                raise SnapshotError(f"{where}: unknown pattern {pattern!r}; the labels must be {list(PATTERNS)} "
                                    "(labeling/ls/configs/timeline.xml)")
            for rng in value.get("ranges") or []:
                start, end = _frame(rng.get("start"), where), _frame(rng.get("end"), where)
                if end < start:
                    raise SnapshotError(f"{where}: range {start}..{end} ends before it starts; fix it and pull again")
                yield pattern, start, end


def _quality_of(result: list[dict], where: str) -> str | None:
    """The quality choice, or None when the annotator left it empty (read as usable downstream)."""
    for region in result:
        if region.get("type") == "choices" and region.get("from_name") == LS_QUALITY:
            choices = (region.get("value") or {}).get("choices") or []
            if not choices:
                return None
            choice = str(choices[0])
            if choice != QUALITY_USABLE and choice not in QUALITY_EXCLUDE:
                raise SnapshotError(f"{where}: quality {choice!r} is not one of "
                                    f"{[QUALITY_USABLE, *QUALITY_EXCLUDE]}")
            return choice
    return None


def kept_annotations(tasks: list[dict], snapshot: str, key: str, missing: str
                     ) -> Iterable[tuple[object, dict, dict, str, str]]:
    """(task id, task data, annotation, annotator, where) of every non-cancelled annotation of one export.

    Every task must carry data.video_id and data[`key`] (else SnapshotError with `missing` as the fix);
    `where` names the snapshot, task, key and annotation for error messages.
    """
    if not isinstance(tasks, list):
        raise SnapshotError(f"{snapshot}: expected a JSON list of tasks (Label Studio full JSON export)")
    unit = key.removesuffix("_id")
    for k, task in enumerate(tasks):
        data, task_id = task.get("data") or {}, task.get("id", k)
        for field in dict.fromkeys((key, "video_id")):
            if not data.get(field):
                raise SnapshotError(f"{snapshot}: task {task_id} has no data.{field}; {missing}")
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled"):
                continue
            where = f"{snapshot}: task {task_id} ({unit} {data[key]}), annotation {ann.get('id')}"
            try:
                annotator = annotator_name(ann.get("completed_by"))
            except ValueError as err:
                raise SnapshotError(f"{where}: {err}") from None
            yield task_id, data, ann, annotator, where


def parse_export(tasks: list[dict], snapshot: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All non-cancelled annotations of one export: (records, ranges), columns as in the module doc.

    `snapshot` is the snapshot's name (e.g. its file name), carried into both tables.
    """
    records, ranges = [], []
    for task_id, data, ann, annotator, where in kept_annotations(
            tasks, snapshot, "video_id", "push tasks with `luskit label push`, which sets it"):
        video_id, result = str(data["video_id"]), ann.get("result") or []
        records.append((video_id, data.get("patient_id"), data.get("fps"), annotator, _quality_of(result, where),
                        snapshot, task_id, ann.get("id"), ann.get("updated_at") or ann.get("created_at")))
        ranges.extend((video_id, data.get("patient_id"), annotator, p, s, e, snapshot, ann.get("id"))
                      for p, s, e in _ranges_of(result, where))
    rec = pd.DataFrame.from_records(records, columns=list(RECORD_COLUMNS))
    rng = pd.DataFrame.from_records(ranges, columns=[*RANGE_COLUMNS, "annotation_id"])
    return rec, rng


def latest_per_annotator(records: pd.DataFrame, ranges: pd.DataFrame,
                         snapshot_order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep one annotation per (video_id, annotator): the latest (module doc), and only its ranges.

    `snapshot_order` lists snapshot names oldest first. Returns (records, ranges) sorted by
    video_id, annotator (ranges also by pattern, start, end), with ranges' helper column dropped.
    """
    rank = {name: i for i, name in enumerate(snapshot_order)}
    rec = records.assign(_rank=records["snapshot"].map(rank),
                         _time=pd.to_datetime(records["updated_at"], utc=True, errors="coerce", format="ISO8601"),
                         _id=pd.to_numeric(records["annotation_id"], errors="coerce"))
    rec = rec.sort_values(["_rank", "_time", "_id"], na_position="first", kind="stable")
    rec = rec.drop_duplicates(["video_id", "annotator"], keep="last")
    keys = rec[["snapshot", "annotation_id", "video_id", "annotator"]]
    kept = ranges.merge(keys, on=["snapshot", "annotation_id", "video_id", "annotator"], how="inner")
    rec = rec.drop(columns=["_rank", "_time", "_id"]).sort_values(["video_id", "annotator"], kind="stable")
    kept = kept.drop(columns=["annotation_id"]).sort_values(["video_id", "annotator", "pattern", "start", "end"],
                                                           kind="stable")
    kept = kept.astype({"start": "int64", "end": "int64"})
    return rec.reset_index(drop=True), kept.reset_index(drop=True)[list(RANGE_COLUMNS)]


def load_snapshot(path: Path) -> list[dict]:
    """Read one snapshot file (a JSON list of tasks); errors name the file and the fix."""
    path = Path(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SnapshotError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); export again with "
                            "`luskit label pull` or remove the file") from None
    if not isinstance(tasks, list):
        raise SnapshotError(f"{path}: expected a list of tasks; only Label Studio's full JSON export is read "
                            "(not JSON_MIN or CSV)")
    return tasks


def read_annotations(folder: Path, mode: str = "newest") -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Parse the snapshots in `folder` chosen by `mode`: (records, ranges, snapshot names read)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no annotation snapshot (*.json) in {folder}: pull one with `luskit label pull` "
                                "(or `luskit synth` for the demo)")
    loaded = {p.name: load_snapshot(p) for p in files}
    chosen = select_snapshots({name: snapshot_source(tasks) for name, tasks in loaded.items()}, mode)
    parsed = [parse_export(loaded[name], name) for name in chosen]
    records = pd.concat([r for r, _ in parsed], ignore_index=True)
    ranges = pd.concat([g for _, g in parsed], ignore_index=True)
    records, ranges = latest_per_annotator(records, ranges, chosen)
    return records, ranges, chosen


def video_exclusions(records: pd.DataFrame, rule: str = "any") -> pd.DataFrame:
    """Which videos the annotators' quality choices exclude: video_id, excluded (bool), reason (str).

    rule: ``any`` (one reader's "exclude" is enough: a video a clinician calls dark or not-lung
    should not teach a model), ``majority`` (more than half of its readers) or ``all``. An empty
    quality choice counts as usable. reason lists the exclude choices with their counts, e.g.
    "exclude: dark (2 of 2)"; "" for kept videos.
    """
    if rule not in ("any", "majority", "all"):
        raise ValueError(f"exclude_rule={rule!r}: use any, majority or all")
    rows = []
    for vid, grp in records.groupby("video_id", sort=True):
        quality = grp["quality"].fillna(QUALITY_USABLE).astype(str)
        votes = quality[quality.str.startswith("exclude")]
        n, k = len(quality), len(votes)
        excluded = k > 0 if rule == "any" else (2 * k > n if rule == "majority" else k == n)
        reason = "; ".join(f"{q} ({c} of {n})" for q, c in votes.value_counts().sort_index().items())
        rows.append((vid, bool(excluded), reason if excluded else ""))
    return pd.DataFrame.from_records(rows, columns=["video_id", "excluded", "reason"])
