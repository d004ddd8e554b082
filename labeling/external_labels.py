"""Per-video 0/1 labels of an external dataset -> one annotator's snapshot in data/annotations/.

Datasets such as POCUS label a whole video per pattern (present / absent / unknown), not frame
ranges. Here such labels become a sheet in the seed's format (labeling/sheets.py): a present
pattern is the range 1_<n_frames> (every frame of the video), an absent one an empty cell. The
sheet is written once under data/ (its bytes are a pure function of the labels and video ids) and
imported with `sheets.import_sheet`, so the labels stage reads it like any Label Studio pull and a
re-run imports nothing new.

Unknown labels: a snapshot rates every pattern of a video at once (an empty cell means absent), so
it cannot say "A-lines: not assessed". A video with any unknown pattern is therefore left out of
the sheet: it keeps its clips and its patient's role in the split, with no label for any pattern
(consensus <NA>, excluded from training and evaluation). Label noise is not repaired here: the
labels are the dataset curators', imported as they are.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labeling.sheets import import_sheet
from luskit.atomic import write_bytes_new
from luskit.schema import PATTERNS


def whole_video_sheet(labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sheet, left_out) from per-video labels.

    labels: video_id (str), n_frames (int), one column per pattern (Int8 1/0/<NA>).
    sheet: video_id and one column per pattern holding "1_<n_frames>" (present) or "" (absent),
    sorted by video_id. left_out: video_id and `unknown` ("; "-joined patterns without a label).
    """
    missing = [c for c in ("video_id", "n_frames", *PATTERNS) if c not in labels.columns]
    if missing:
        raise ValueError(f"per-video labels lack column(s) {missing}")
    values = labels[list(PATTERNS)]
    unknown = values.isna()
    keep = ~unknown.any(axis=1)
    missing_names = ["; ".join(p for p in PATTERNS if row[p]) for _, row in unknown[~keep].iterrows()]
    left_out = pd.DataFrame({"video_id": labels.loc[~keep, "video_id"].astype(str).to_numpy(),
                             "unknown": missing_names}, columns=["video_id", "unknown"])
    kept = labels[keep].sort_values("video_id", kind="stable")
    sheet = pd.DataFrame({"video_id": kept["video_id"].astype(str).to_numpy()})
    for pattern in PATTERNS:
        ends = kept["n_frames"].astype("int64").to_numpy()
        sheet[pattern] = [f"1_{n}" if v == 1 else "" for v, n in zip(kept[pattern].to_numpy(), ends)]
    return sheet, left_out


def sheet_bytes(sheet: pd.DataFrame) -> bytes:
    """The sheet as CSV bytes, deterministic for equal tables (written once, compared on re-runs)."""
    return sheet.to_csv(index=False, lineterminator="\n").encode()


def import_whole_video_labels(labels: pd.DataFrame, videos: pd.DataFrame, sheet_path: Path, annotator: str,
                              annotations_dir: Path) -> dict:
    """Write the sheet (once) and import it as `annotator`'s snapshot; returns what happened.

    videos: video_id, patient_id, fps, n_frames of the ingest index (sheets.import_sheet checks the
    ranges against them). Raises FileExistsError when sheet_path holds other labels (other video ids:
    another pseudonym key or manifest): data/ is never overwritten.
    """
    sheet, left_out = whole_video_sheet(labels)
    if sheet.empty:
        raise ValueError("no video has a known label for every pattern: nothing to import")
    sheet_written = write_bytes_new(Path(sheet_path), sheet_bytes(sheet))
    snapshot, written = import_sheet(Path(sheet_path), annotator, videos, Path(annotations_dir))
    positives = {p: int((sheet[p] != "").sum()) for p in PATTERNS}
    return {"sheet": str(sheet_path), "sheet_written": sheet_written, "snapshot": str(snapshot),
            "snapshot_written": written, "videos_labelled": int(len(sheet)), "positive_videos": positives,
            "left_out": left_out}
