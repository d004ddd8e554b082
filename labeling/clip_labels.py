"""Frame ranges -> per-frame ratings -> clip labels. Pure functions on tables and arrays, no I/O.

Ratings are held as a `Ratings` cube: one row per unit (a frame or a clip), one column per rater
(annotator, or "gold"), one slice per pattern, with three values: 1.0 present, 0.0 absent and NaN
for "no rating" (the rater never saw that video, or a consensus could not decide).

The clip rule is the seed's (`check_labels_for_avi`, LUV-Net): a clip is positive for a pattern when
annotated frames of that pattern overlap the clip's *real* frames (padding repeats a frame and adds
no evidence) by at least `min_overlap_frames`; the default 1 is the seed's "any overlap". The
threshold is capped at the clip's real frame count, so a short tail clip whose every real frame
shows the pattern is positive. NaN frames are three-valued: a clip is 1 when its certain positive
frames reach the threshold, 0 when even counting every undecided frame as positive they do not, and
NaN otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from luskit.schema import PATTERNS

CLIP_UNIT_COLUMNS = ("clip_id", "video_id", "patient_id", "period", "start", "end", "n_real_frames")
CLIP_KEYS = CLIP_UNIT_COLUMNS[:4]  # what output tables carry; the manifest (joined on clip_id) has the rest


@dataclass(frozen=True)
class Ratings:
    """Ratings of R raters on U units for P patterns.

    units: DataFrame (U rows) with video_id, patient_id and, for frames, `frame` (0-based int64);
           for clips the CLIP_UNIT_COLUMNS of the clip manifest.
    raters: (R,) rater names, sorted.
    values: (U, R, P) float32 in {0, 1, NaN}; P follows `patterns` (luskit.schema.PATTERNS order).
    """

    units: pd.DataFrame
    raters: tuple[str, ...]
    values: np.ndarray
    patterns: tuple[str, ...] = PATTERNS

    def pattern(self, name: str) -> np.ndarray:
        """(U, R) float32 ratings of one pattern."""
        return self.values[:, :, self.patterns.index(name)]


def video_lengths(manifest: pd.DataFrame) -> pd.Series:
    """Frames per video that clips cover (max clip end, int64), indexed by video_id.

    Under the default `pad` tail every frame is covered; under `drop` the uncovered tail frames
    carry no clip label, so frame-level agreement leaves them out too.
    """
    return manifest.groupby("video_id", sort=True)["end"].max().astype("int64")


def frame_units(lengths: pd.Series, patients: pd.Series) -> pd.DataFrame:
    """One row per frame: video_id, patient_id, frame (0-based), in video_id then frame order."""
    lengths = lengths.sort_index()
    vids = np.repeat(lengths.index.to_numpy(dtype=object), lengths.to_numpy())
    frames = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths.to_numpy()]) if len(lengths) else \
        np.zeros(0, dtype=np.int64)
    return pd.DataFrame({"video_id": vids.astype(str), "patient_id": patients.reindex(vids).to_numpy(dtype=str),
                         "frame": frames})


def _offsets(lengths: pd.Series) -> dict[str, int]:
    lengths = lengths.sort_index()
    starts = np.concatenate([[0], np.cumsum(lengths.to_numpy())[:-1]]) if len(lengths) else []
    return dict(zip(lengths.index, (int(s) for s in starts)))


def frame_ratings(pairs: pd.DataFrame, ranges: pd.DataFrame, lengths: pd.Series, patients: pd.Series,
                  patterns: tuple[str, ...] = PATTERNS) -> Ratings:
    """Per-frame ratings from 1-based inclusive ranges.

    pairs: who rated which video (video_id, annotator), including readers who marked nothing;
    ranges: video_id, annotator, pattern, start, end (1-based inclusive); frames past the video's
    covered length are cut off (see `ranges_outside`). lengths: frames per video (video_lengths);
    patients: patient_id indexed by video_id. Videos not in `lengths` are ignored.
    """
    lengths = lengths.sort_index()
    units = frame_units(lengths, patients)
    raters = tuple(sorted(pairs["annotator"].unique()))
    col = {r: i for i, r in enumerate(raters)}
    pat = {p: i for i, p in enumerate(patterns)}
    offset = _offsets(lengths)
    values = np.full((len(units), len(raters), len(patterns)), np.nan, dtype=np.float32)
    for vid, rater in pairs[["video_id", "annotator"]].itertuples(index=False):
        if vid in offset:  # a rated video counts as all-absent until its ranges say otherwise
            values[offset[vid]:offset[vid] + lengths[vid], col[rater], :] = 0.0
    for vid, rater, pattern, start, end in ranges[["video_id", "annotator", "pattern", "start", "end"]].itertuples(
            index=False):
        if vid in offset and rater in col:
            n = int(lengths[vid])
            lo, hi = min(int(start) - 1, n), min(int(end), n)  # 1-based inclusive -> 0-based [lo, hi)
            values[offset[vid] + lo:offset[vid] + hi, col[rater], pat[pattern]] = 1.0
    return Ratings(units, raters, values, patterns)


def ranges_outside(ranges: pd.DataFrame, lengths: pd.Series) -> pd.DataFrame:
    """Ranges reaching past their video's covered frames (Label Studio frame drift, #6493), with `n_frames`."""
    n = ranges["video_id"].map(lengths)
    return ranges.assign(n_frames=n)[n.notna() & (ranges["end"] > n)]


def clip_values(frame_values: np.ndarray, frame_offset: np.ndarray, clips: pd.DataFrame,
                min_overlap_frames: int) -> np.ndarray:
    """Three-valued clip labels from three-valued frame labels.

    frame_values: (F, ...) float in {0, 1, NaN}; frame_offset: (C,) int64 index in frame_values of
    each clip's video's frame 0; clips: start, end (0-based, exclusive), n_real_frames (C rows).
    Returns (C, ...) float32 in {0, 1, NaN} (module doc for the rule).
    """
    if min_overlap_frames < 1:
        raise ValueError(f"min_overlap_frames={min_overlap_frames}: use 1 (the seed's any-overlap rule) or more")
    zero = np.zeros((1, *frame_values.shape[1:]))
    sure = np.concatenate([zero, np.cumsum(frame_values == 1, axis=0)])
    maybe = np.concatenate([zero, np.cumsum(frame_values != 0, axis=0)])  # NaN != 0 is True: undecided
    lo = frame_offset + clips["start"].to_numpy(dtype=np.int64)
    hi = frame_offset + clips["end"].to_numpy(dtype=np.int64)
    need = np.minimum(min_overlap_frames, clips["n_real_frames"].to_numpy(dtype=np.int64))
    need = need.reshape(-1, *([1] * (frame_values.ndim - 1)))
    sure_n, maybe_n = sure[hi] - sure[lo], maybe[hi] - maybe[lo]
    out = np.where(sure_n >= need, 1.0, np.where(maybe_n < need, 0.0, np.nan))
    return out.astype(np.float32)


def clip_frame_offsets(frames: Ratings, clips: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The clips whose video has frame units, and each one's frame offset into `frames.units`."""
    first = frames.units.reset_index(drop=True).groupby("video_id", sort=False).head(1)
    offset = pd.Series(first.index.to_numpy(dtype=np.int64), index=first["video_id"].to_numpy())
    kept = clips[clips["video_id"].isin(offset.index)].reset_index(drop=True)
    return kept, offset.reindex(kept["video_id"]).to_numpy(dtype=np.int64)


def clip_ratings(frames: Ratings, manifest: pd.DataFrame, min_overlap_frames: int = 1) -> Ratings:
    """Clip-level Ratings from frame-level ones, for the manifest's clips of the videos in `frames`.

    manifest: the clip manifest (CLIP_UNIT_COLUMNS at least). Units come out in manifest order
    (video_id, clip_index).
    """
    clips, offset = clip_frame_offsets(frames, manifest.sort_values(["video_id", "start"], kind="stable"))
    values = clip_values(frames.values, offset, clips, min_overlap_frames)
    units = clips[list(CLIP_UNIT_COLUMNS)].reset_index(drop=True)
    return Ratings(units, frames.raters, values, frames.patterns)


def ratings_table(ratings: Ratings, rater_column: str = "annotator") -> pd.DataFrame:
    """Long table: one row per (unit, rater) that was rated, unit columns + rater + one int8 column per pattern.

    A (unit, rater) is rated when any pattern is non-NaN; undecided patterns stay <NA> (Int8).
    """
    u, r = np.nonzero(~np.all(np.isnan(ratings.values), axis=2))
    out = ratings.units.iloc[u].reset_index(drop=True)
    out[rater_column] = np.asarray(ratings.raters, dtype=object)[r].astype(str)
    for k, pattern in enumerate(ratings.patterns):
        out[pattern] = pd.array(np.where(np.isnan(ratings.values[u, r, k]), np.nan, ratings.values[u, r, k]),
                                dtype="Float32").astype("Int8")
    return out
