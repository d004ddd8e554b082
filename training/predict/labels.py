"""Labels of new videos for an external validation: a Label Studio snapshot or a sheet -> clip and video labels.

Sources, keyed by the pseudonymous video_ids `luskit predict` wrote to OUT/deid/videos.parquet (e.g. after
pushing OUT to Label Studio and pulling the readers' work), or for sheets by a `file` column (the file's path
under predict's --input, mapped to its video_id through the file's hash; the names never leave memory):
- a Label Studio full-JSON snapshot (`luskit label pull`), one file or a folder of them (labeling/annotations.py);
- a sheet (.csv/.xlsx) in the seed's format: per-pattern cells of 1-based frame intervals `24_32, 40_55`
  (labeling/sheets.py) -- level "frames";
- a sheet whose pattern cells say yes/no per video (yes, no, y, n, true, false, present, absent, 1, 0; empty =
  unknown) -- level "video".

Frame ranges become clip labels exactly as in the labels stage (labeling/clip_labels.py, the consensus method of
params `labels:`), and a video is then positive if any clip is (training/evaluation/tables.pool_videos).
Video-level labels give video labels only: they are scored at video level, never spread over clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from labeling import annotations, clip_labels, consensus, sheets
from labeling.labels_stage import LabelsParams
from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.data.table import wide_labels

LEVELS = ("auto", "frames", "video")
YES = {"yes", "y", "true", "present", "positive", "1"}
NO = {"no", "n", "false", "absent", "negative", "0"}
LABEL_COLUMNS = [f"label_{s}" for s in PATTERN_SLUGS]


class LabelError(ValueError):
    """Labels that cannot be used; the message names the file (as given) and the fix."""


@dataclass
class ExternalLabels:
    level: str  # "frames" or "video"
    clips: pd.DataFrame | None  # clip_id + label_<slug> Int8 (frames only)
    videos: pd.DataFrame  # video_id + label_<slug> Int8 (video level only; frames: derived later from clips)
    source: str  # the file name (no folders: they may name a hospital)
    excluded: list[str]  # videos the readers excluded (quality)


def _sheet_cells(frame: pd.DataFrame) -> tuple[str, dict[str, str]]:
    cols = [str(c) for c in frame.columns]
    id_col = next((c for c in cols if c.strip().lower().replace("_", " ") == "video id"), None)
    if id_col is None:
        raise LabelError("the sheet has no video_id column: key it by the video ids in OUT/deid/videos.parquet")
    mapping = sheets.pattern_columns(cols)
    if not mapping:
        raise LabelError(f"the sheet has no pattern column; name them {list(PATTERNS)}")
    return id_col, mapping


def sheet_level(frame: pd.DataFrame) -> str:
    """"video" when every filled pattern cell is a yes/no word, else "frames"."""
    _, mapping = _sheet_cells(frame)
    cells = pd.concat([frame[c].dropna().astype(str).str.strip().str.lower() for c in mapping])
    cells = cells[cells != ""]
    return "video" if len(cells) and cells.isin(YES | NO).all() and not cells.isin({"1", "0"}).all() else "frames"


def video_sheet(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Yes/no sheet -> video_id + label_<slug> (Int8, NA when empty); several columns of one pattern: any yes."""
    id_col, mapping = _sheet_cells(frame)
    out = pd.DataFrame({"video_id": frame[id_col].astype(str).str.strip()})
    errors = []
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        values = pd.Series(np.nan, index=frame.index)
        for col in (c for c, p in mapping.items() if p == pattern):
            cells = frame[col].astype("string").str.strip().str.lower()
            bad = cells.notna() & (cells != "") & ~cells.isin(YES | NO)
            errors += [f"row {i + 2}, column {col!r}: {cells[i]!r} is not yes/no" for i in np.flatnonzero(bad)]
            v = cells.map(lambda c: 1.0 if c in YES else (0.0 if c in NO else np.nan)).astype(float)
            values = np.fmax(values, v)  # any yes wins; NaN only where every column is empty
        out[f"label_{slug}"] = pd.array(values.to_numpy(), dtype="Float32").astype("Int8")
    if errors:
        raise LabelError(f"{name}: " + "; ".join(errors[:10]))
    if out["video_id"].duplicated().any():
        raise LabelError(f"{name}: video {out.loc[out['video_id'].duplicated(), 'video_id'].iloc[0]} appears twice")
    return out


def files_to_ids(frame: pd.DataFrame, input_dir: Path | None, index: pd.DataFrame | None, name: str) -> pd.DataFrame:
    """A sheet keyed by a `file` column (path relative to predict's --input, as the site names its files) ->
    the same sheet keyed by video_id: each file is hashed and found in the ingest index by source_sha256.
    The file names stay in memory (they can hold PHI): errors name sheet rows, never files."""
    from curation.ingest import file_sha256

    if "video_id" in [str(c).strip().lower() for c in frame.columns] or "file" not in frame.columns:
        return frame
    if input_dir is None or index is None:
        raise LabelError(f"{name} is keyed by `file`: pass --input (the folder predict read) to map files to videos")
    by_sha = dict(zip(index["source_sha256"], index["video_id"]))
    ids, errors = [], []
    for row, rel in enumerate(frame["file"].astype(str), start=2):
        path = Path(input_dir) / rel.strip()
        sha = file_sha256(path) if path.is_file() else None
        if sha not in by_sha:
            errors.append(row)
        ids.append(by_sha.get(sha))
    if errors:
        raise LabelError(f"{name}: the file of sheet row(s) {errors[:10]} is not under --input or was not ingested "
                         "(quarantined): fix those rows")
    return frame.drop(columns=["file"]).assign(video_id=ids)


def read_source(path: Path, videos: pd.DataFrame, level: str = "auto", input_dir: Path | None = None,
                index: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(records, ranges, video_level_or_None) from a snapshot file/folder or a sheet (a 1/0 sheet is read as
    frame 1 unless level is "video": the seed's sheets use a bare 1 for frame 1)."""
    path = Path(path)
    if path.is_dir():
        records, ranges, _ = annotations.read_annotations(path, "newest")
        return records, ranges, None
    if path.suffix.lower() == ".json":
        return (*annotations.parse_export(annotations.load_snapshot(path), path.name), None)
    frame = files_to_ids(sheets.read_sheet(path), input_dir, index, path.name)
    if level == "video" or (level == "auto" and sheet_level(frame) == "video"):
        return pd.DataFrame(), pd.DataFrame(), video_sheet(frame, path.name)
    parsed = sheets.parse_sheet(frame, path.name)
    tasks = sheets.build_export(parsed, videos, "external-sheet", "external", "1970-01-01T00:00:00Z")
    return (*annotations.parse_export(tasks, path.name), None)


def clip_level(records: pd.DataFrame, ranges: pd.DataFrame, manifest: pd.DataFrame, cfg: LabelsParams) -> pd.DataFrame:
    """Readers' frame ranges -> clip_id + label_<slug> by the labels stage's rule and consensus method."""
    lengths = clip_labels.video_lengths(manifest)
    patients = manifest.drop_duplicates("video_id").set_index("video_id")["patient_id"]
    frames = clip_labels.frame_ratings(records[["video_id", "annotator"]], ranges, lengths, patients)
    clips = clip_labels.clip_ratings(frames, manifest, cfg.min_overlap_frames)
    long = consensus.base_consensus(frames, clips, manifest, cfg.base_method, cfg.majority_ties,
                                    cfg.min_overlap_frames)
    return wide_labels(long[["clip_id", "pattern", "label"]])


def video_level_from_ranges(records: pd.DataFrame, ranges: pd.DataFrame, cfg: LabelsParams) -> pd.DataFrame:
    """Per video: a reader says "present" when they marked any range of the pattern; readers combined by the
    consensus method (consensus.combine_frames on one unit per video)."""
    vids = sorted(records["video_id"].unique())
    raters = sorted(records["annotator"].unique())
    values = np.full((len(vids), len(raters), len(PATTERNS)), np.nan, dtype=np.float32)
    vi, ri = {v: i for i, v in enumerate(vids)}, {r: i for i, r in enumerate(raters)}
    for v, r in records[["video_id", "annotator"]].itertuples(index=False):
        values[vi[v], ri[r], :] = 0.0
    for v, r, p in ranges[["video_id", "annotator", "pattern"]].itertuples(index=False):
        values[vi[v], ri[r], PATTERNS.index(p)] = 1.0
    combined = consensus.combine_frames(values, cfg.base_method, cfg.majority_ties)
    out = pd.DataFrame({"video_id": vids})
    for k, slug in enumerate(PATTERN_SLUGS):
        out[f"label_{slug}"] = pd.array(combined[:, k], dtype="Float32").astype("Int8")
    return out


def load_labels(path: Path, level: str, manifest: pd.DataFrame, videos: pd.DataFrame, cfg: LabelsParams,
                exclude_rule: str = "any", input_dir: Path | None = None,
                index: pd.DataFrame | None = None) -> ExternalLabels:
    """The external labels at `level` (auto: frames for snapshots and interval sheets, video for yes/no sheets).

    manifest: OUT's clip manifest; videos: OUT/deid/videos.parquet (video_id, patient_id, fps, n_frames); input_dir
    and index (OUT/index/videos.parquet): for sheets keyed by `file` instead of video_id (files_to_ids).
    Raises LabelError when the labels name videos that were not predicted (other ids: another key or folder).
    """
    if level not in LEVELS:
        raise LabelError(f"--label-level {level!r}: use one of {LEVELS}")
    path = Path(path)
    if not path.exists():
        raise LabelError(f"labels {path.name} not found")
    records, ranges, by_video = read_source(path, videos, level, input_dir, index)
    excluded: list[str] = []
    if by_video is None and len(records):
        flags = annotations.video_exclusions(records, exclude_rule)
        excluded = flags.loc[flags["excluded"], "video_id"].tolist()
        records = records[~records["video_id"].isin(excluded)]
        ranges = ranges[~ranges["video_id"].isin(excluded)]
    named = set(by_video["video_id"]) if by_video is not None else set(records["video_id"])
    unknown = sorted(named - set(manifest["video_id"]))
    if unknown:
        raise LabelError(f"{path.name}: {len(unknown)} labelled video(s) were not predicted, e.g. {unknown[0]}: "
                         "label the video_ids of this prediction folder (OUT/deid/videos.parquet), or they were "
                         "withheld / quarantined (OUT/predictions/report.md)")
    if by_video is not None:
        if level == "frames":
            raise LabelError(f"{path.name} holds video-level yes/no labels: use --label-level video (or auto)")
        return ExternalLabels("video", None, by_video, path.name, excluded)
    if level == "video":
        return ExternalLabels("video", None, video_level_from_ranges(records, ranges, cfg), path.name, excluded)
    clips = clip_level(records, ranges, manifest[manifest["video_id"].isin(set(records["video_id"]))], cfg)
    return ExternalLabels("frames", clips, pd.DataFrame(columns=["video_id", *LABEL_COLUMNS]), path.name, excluded)
