"""Spreadsheet labels in the seed's format -> a Label Studio full-JSON snapshot in data/annotations/.

Teams coming from the LUV-Net workflow keep labels in a sheet: one row per video, one column per
pattern, each cell a comma-separated list of 1-based inclusive frame intervals (`24_32, 40_55`) or
single frames (`17`); an empty cell means absent. `import_sheet` turns such a sheet into a snapshot
of exactly the shape `luskit label pull` writes, attributed to one annotator, so the labels stage
reads it like any other.

- Rows are keyed by a `video_id` column: the pseudonymous id of artifacts/index/videos.parquet.
  The seed's sheets were keyed by hospital number (PatientID); map those to video ids first and
  drop the hospital numbers: nothing here reads any other column, and nothing else is copied.
- Pattern columns, matched ignoring case and spacing: ours (A-lines, B-lines, Consolidation,
  Pleural effusion) or the seed's (A-line, B-line, Confluent B-line, Consolidation, Pleural effusion).
  Confluent B-lines are merged into B-lines, as the seed's total-B-line label (B OR confluent B).
  Other columns (Lung sliding, LUS score, ...) are ignored.
- An optional `quality` column: `usable` (the default when empty) or one of the exclude choices.
- xlsx/xlsm need openpyxl; CSV always works (save the sheet as CSV where openpyxl is missing).
Every bad cell is reported at once, by spreadsheet row (header = row 1) and column, with the fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from labeling.annotations import IMPORT_MARKER, load_snapshot
from luskit import paths
from luskit.atomic import write_bytes_new
from luskit.schema import LS_PATTERNS, LS_QUALITY, LS_VIDEO, PATTERNS, QUALITY_EXCLUDE, QUALITY_USABLE, ls_video_url

SEED_COLUMNS = ("A-line", "B-line", "Confluent B-line", "Consolidation", "Pleural effusion")
# Normalised column name (lower case, "-"/"_" as spaces) -> pattern.
ALIASES = {"a line": "A-lines", "a lines": "A-lines", "b line": "B-lines", "b lines": "B-lines",
           "confluent b line": "B-lines", "confluent b lines": "B-lines", "consolidation": "Consolidation",
           "pleural effusion": "Pleural effusion"}
_INTERVAL = re.compile(r"^(\d+)(?:\s*[_-]\s*(\d+))?$")
MAX_ERRORS_SHOWN = 20


class SheetError(ValueError):
    """A sheet that cannot be imported; the message lists every bad cell and the fix."""


def _norm(name: object) -> str:
    return " ".join(re.sub(r"[-_]", " ", str(name).strip().lower()).split())


def pattern_columns(columns: list[str]) -> dict[str, str]:
    """Sheet column -> pattern for the columns that hold labels (module doc for the names)."""
    return {col: ALIASES[_norm(col)] for col in columns if _norm(col) in ALIASES}


def parse_cell(value: object) -> list[tuple[int, int]]:
    """One cell -> [(start, end), ...] 1-based inclusive. Empty/NaN -> []. Raises ValueError with the fix."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == "":
        return []
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # Excel stores "17" as a number
        if float(value) != int(value):
            raise ValueError(f"{value!r} is not a frame number: write whole frames like 17 or 24_32")
        value = str(int(value))
    out = []
    for piece in re.split(r"[,;]", str(value)):
        piece = piece.strip()
        if not piece:
            continue  # tolerate "24_32," (a trailing comma)
        match = _INTERVAL.match(piece)
        if not match:
            raise ValueError(f"{piece!r} is not an interval: write 1-based frames as 24_32 (from 24 to 32) or 17")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else start
        if start < 1 or end < start:
            raise ValueError(f"{piece!r}: frames are 1-based and the end must not come before the start")
        out.append((start, end))
    return out


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of 1-based inclusive intervals, sorted; touching intervals (10_20, 21_30) are joined."""
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _row_quality(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == "":
        return QUALITY_USABLE
    text = str(value).strip()
    if text != QUALITY_USABLE and text not in QUALITY_EXCLUDE:
        raise ValueError(f"{text!r} is not a quality: use {QUALITY_USABLE!r} or one of {list(QUALITY_EXCLUDE)}")
    return text


def parse_sheet(frame: pd.DataFrame, name: str = "sheet") -> pd.DataFrame:
    """Sheet table -> video_id, quality, and one column per pattern holding merged interval lists.

    `name` is only used in messages. Raises SheetError listing every problem.
    """
    cols = {str(c): c for c in frame.columns}
    id_col = next((cols[c] for c in cols if _norm(c) == "video id"), None)
    if id_col is None:
        raise SheetError(f"{name}: no video_id column; add one holding the pseudonymous video ids of "
                         "artifacts/index/videos.parquet (never hospital numbers)")
    mapping = pattern_columns(list(cols))
    if not mapping:
        raise SheetError(f"{name}: no pattern column; name them {list(PATTERNS)} or the seed's "
                         f"{list(SEED_COLUMNS)}")
    quality_col = next((cols[c] for c in cols if _norm(c) == "quality"), None)
    errors, rows = [], []
    for i, row in enumerate(frame.to_dict("records")):
        where = f"row {i + 2}"  # spreadsheet numbering: the header is row 1
        vid = row[id_col]
        if vid is None or (isinstance(vid, float) and pd.isna(vid)) or not str(vid).strip():
            errors.append(f"{where}, column {id_col!r}: empty video_id; fill it or delete the row")
            continue
        record = {"video_id": str(vid).strip(), "row": i + 2, **{p: [] for p in PATTERNS}}
        for col, pattern in mapping.items():
            try:
                record[pattern] += parse_cell(row[cols[col]])
            except ValueError as err:
                errors.append(f"{where} (video {record['video_id']}), column {col!r}: {err}")
        try:
            record["quality"] = _row_quality(row[quality_col]) if quality_col is not None else QUALITY_USABLE
        except ValueError as err:
            errors.append(f"{where}, column {quality_col!r}: {err}")
        rows.append(record)
    out = pd.DataFrame(rows, columns=["video_id", "row", "quality", *PATTERNS])
    dup = out[out["video_id"].duplicated(keep=False)]
    for vid, grp in dup.groupby("video_id"):
        errors.append(f"rows {grp['row'].tolist()}: video {vid} appears more than once; keep one row per video")
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN] + ([f"... and {len(errors) - MAX_ERRORS_SHOWN} more"]
                                             if len(errors) > MAX_ERRORS_SHOWN else [])
        raise SheetError(f"{name}: {len(errors)} problem(s):\n  " + "\n  ".join(shown))
    for pattern in PATTERNS:
        out[pattern] = out[pattern].map(merge_intervals)
    return out


def check_against_videos(parsed: pd.DataFrame, videos: pd.DataFrame, name: str = "sheet") -> None:
    """Every video exists and every interval ends within the video. videos: video_id, n_frames."""
    n_frames = videos.set_index("video_id")["n_frames"]
    errors = []
    for rec in parsed.to_dict("records"):
        if rec["video_id"] not in n_frames.index:
            errors.append(f"row {rec['row']}: video {rec['video_id']} is not in the video index; check the id "
                          "(artifacts/index/videos.parquet) or run `luskit ingest` first")
            continue
        n = int(n_frames[rec["video_id"]])
        for pattern in PATTERNS:
            for start, end in rec[pattern]:
                if end > n:
                    errors.append(f"row {rec['row']} (video {rec['video_id']}), {pattern}: {start}_{end} ends "
                                  f"after the last frame {n}; fix the cell")
    if errors:
        raise SheetError(f"{name}: {len(errors)} problem(s):\n  " + "\n  ".join(errors[:MAX_ERRORS_SHOWN]))


def _user(annotator: str) -> dict:
    # id 0: not a Label Studio user (their ids start at 1); the e-mail is the identity parsed downstream.
    return {"id": 0, "email": annotator, "first_name": "", "last_name": ""}


def build_export(parsed: pd.DataFrame, videos: pd.DataFrame, annotator: str, sheet_sha256: str,
                 created_at: str) -> list[dict]:
    """A full-JSON export (list of tasks) holding the sheet's labels, one annotation per video.

    parsed: parse_sheet(); videos: video_id, patient_id, fps (pseudonymous, from the video index);
    created_at: UTC ISO time stamped on tasks and annotations. Task meta carries the import marker
    (sheet hash, annotator) that makes the sheet its own source (annotations.snapshot_source).
    """
    meta = videos.set_index("video_id")
    marker = {"sheet_sha256": sheet_sha256, "annotator": annotator, "format": "luv-net sheet"}
    tasks = []
    for k, rec in enumerate(parsed.sort_values("video_id").to_dict("records"), start=1):
        vid = rec["video_id"]
        result = []
        for pattern in PATTERNS:
            for j, (start, end) in enumerate(rec[pattern]):
                result.append({"value": {"ranges": [{"start": int(start), "end": int(end)}],
                                         "timelinelabels": [pattern]},
                               "id": hashlib.sha1(f"{sheet_sha256}|{vid}|{pattern}|{j}".encode()).hexdigest()[:10],
                               "from_name": LS_PATTERNS, "to_name": LS_VIDEO, "type": "timelinelabels",
                               "origin": "manual"})
        result.append({"value": {"choices": [rec["quality"]]}, "id": hashlib.sha1(f"{vid}|q".encode()).hexdigest()[:10],
                       "from_name": LS_QUALITY, "to_name": LS_VIDEO, "type": "choices", "origin": "manual"})
        annotation = {"id": k, "completed_by": _user(annotator), "result": result, "was_cancelled": False,
                      "ground_truth": False, "created_at": created_at, "updated_at": created_at, "task": k,
                      "project": None}
        tasks.append({"id": k, "data": {"video": ls_video_url(vid), "video_id": vid,
                                        "patient_id": str(meta.at[vid, "patient_id"]),
                                        "fps": float(meta.at[vid, "fps"])},
                      "annotations": [annotation], "predictions": [], "meta": {IMPORT_MARKER: marker},
                      "created_at": created_at, "updated_at": created_at, "project": None})
    return tasks


def read_sheet(path: Path) -> pd.DataFrame:
    """Read an xlsx/xlsm (first worksheet; needs openpyxl) or CSV sheet as text cells."""
    path = Path(path)
    if not path.exists():
        raise SheetError(f"{path} not found")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            import openpyxl  # noqa: F401  (pandas' xlsx engine)
        except ImportError:
            raise SheetError(f"{path}: reading xlsx needs openpyxl, which is not installed; save the sheet as "
                             "CSV (File > Save as > CSV) and import that, or install openpyxl") from None
        return pd.read_excel(path, dtype=object, engine="openpyxl")
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path, dtype=str, keep_default_na=True)
    raise SheetError(f"{path}: unknown sheet type {suffix!r}; use .xlsx or .csv")


def load_videos(root: Path = Path(".")) -> pd.DataFrame:
    """video_id, patient_id, fps, n_frames of the de-identified videos (else of the ingest index)."""
    for table in (paths.DEID_VIDEOS, paths.INDEX_VIDEOS):
        if (Path(root) / table).exists():
            return pd.read_parquet(Path(root) / table, columns=["video_id", "patient_id", "fps", "n_frames"])
    raise FileNotFoundError(f"no video index under {Path(root) / paths.ARTIFACTS}: run `luskit ingest` first")


def _already_imported(folder: Path, sha: str, annotator: str) -> Path | None:
    for path in sorted(folder.glob("*.json")):
        tasks = load_snapshot(path)
        marker = ((tasks[0].get("meta") or {}).get(IMPORT_MARKER) if tasks else None) or {}
        if marker.get("sheet_sha256") == sha and marker.get("annotator") == annotator:
            return path
    return None


def import_sheet(sheet: Path, annotator: str, videos: pd.DataFrame, annotations_dir: Path = paths.ANNOTATIONS,
                 now: datetime | None = None) -> tuple[Path, bool]:
    """Convert `sheet` into a new snapshot `<UTC stamp>_sheet-<hash>.json` in `annotations_dir`.

    annotator: the reader's e-mail (the identity agreement is computed over); videos: load_videos().
    Returns (path, written): importing the same sheet for the same annotator again writes nothing
    and returns the earlier snapshot. The file is written atomically and never overwrites.
    """
    annotator = str(annotator).strip().lower()
    if not annotator or any(ch.isspace() for ch in annotator):
        raise SheetError(f"annotator {annotator!r}: pass the reader's e-mail, e.g. reader1@hospital.example")
    sheet = Path(sheet)
    sha = hashlib.sha256(sheet.read_bytes()).hexdigest()
    folder = Path(annotations_dir)
    earlier = _already_imported(folder, sha, annotator) if folder.is_dir() else None
    if earlier is not None:
        return earlier, False
    parsed = parse_sheet(read_sheet(sheet), name=sheet.name)
    check_against_videos(parsed, videos, name=sheet.name)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    export = build_export(parsed, videos, annotator, sha, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    key = hashlib.sha256(f"{sha}|{annotator}".encode()).hexdigest()[:10]  # one file per sheet and reader
    path = folder / f"{now.strftime('%Y%m%dT%H%M%SZ')}_sheet-{key}.json"
    write_bytes_new(path, json.dumps(export, indent=1, sort_keys=True).encode())
    return path, True
