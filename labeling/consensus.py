"""Consensus clip labels from several annotators, and reviewer overrides. Pure functions, no I/O.

The base methods combine the annotators' *frame* masks and then apply the clip rule
(clip_labels.clip_values), because that is what the seed did: its version 1 is the intersection of
the two readers' intervals (`and`), version 2 their union (`or`), and only then a clip became
positive when it overlapped a merged interval. (For `or` with min_overlap_frames=1 this equals the
OR of the readers' clip labels; `and` can differ when two readers mark disjoint frames in one clip.)

- ``and``: a frame is positive when every annotator of the video marked it.
- ``or``: when any annotator marked it.
- ``majority``: when more than half marked it; a tie (e.g. one of two readers) is decided by
  `ties`: ``positive`` (then, with two readers, this is `or`), ``negative`` (`and`) or ``missing``
  (the frame is undecided; a clip whose label depends on undecided frames gets no label, NaN, and
  goes to review). Provenance says when a tie decided a clip.
- ``adjudicated``: one of the above as base, then every clip/pattern with a reviewer resolution
  (reviews.resolve_reviewers: present or absent) takes the reviewer's label, with the reviewers as
  provenance. Reviewer ties and cannot_tell keep the base label.

A video rated by one annotator (the temporal set's senior reader) gets that reader's labels from
every method; `n_annotators` says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labeling.clip_labels import CLIP_KEYS, Ratings, clip_frame_offsets, clip_values

BASE_METHODS = ("and", "or", "majority")
METHODS = (*BASE_METHODS, "adjudicated")
TIES = ("positive", "negative", "missing")
CONSENSUS_COLUMNS = (*CLIP_KEYS, "pattern", "label", "method", "provenance", "n_annotators", "n_positive",
                     "reader_label", "blind_label", "n_assisted")


def combine_frames(values: np.ndarray, method: str, ties: str = "positive") -> np.ndarray:
    """(U, R, P) float {0, 1, NaN} ratings -> (U, P) float32 {0, 1, NaN} consensus per frame.

    NaN where nobody rated the unit, or (majority, ties="missing") where the vote is tied.
    """
    if method not in BASE_METHODS:
        raise ValueError(f"method={method!r}: use one of {BASE_METHODS} (adjudicated needs a base method)")
    if ties not in TIES:
        raise ValueError(f"ties={ties!r}: use one of {TIES}")
    pos = np.sum(values == 1, axis=1)
    neg = np.sum(values == 0, axis=1)
    rated = (pos + neg) > 0
    if method == "and":
        out = (neg == 0).astype(np.float32)
    elif method == "or":
        out = (pos > 0).astype(np.float32)
    else:
        tie_value = {"positive": 1.0, "negative": 0.0, "missing": np.nan}[ties]
        out = np.where(pos > neg, 1.0, np.where(neg > pos, 0.0, tie_value)).astype(np.float32)
    return np.where(rated, out, np.nan).astype(np.float32)


def consensus_frames(frames: Ratings, method: str, ties: str = "positive") -> Ratings:
    """Frame-level consensus as a one-rater Ratings (rater name = method)."""
    combined = combine_frames(frames.values, method, ties)
    return Ratings(frames.units, (method,), combined[:, None, :], frames.patterns)


def _long(units: pd.DataFrame, patterns: tuple[str, ...], labels: np.ndarray, **columns: np.ndarray) -> pd.DataFrame:
    """(C, P) arrays -> one row per clip and pattern, clip-major (C*P rows)."""
    n_clips, n_pat = labels.shape
    out = units.loc[units.index.repeat(n_pat)].reset_index(drop=True)
    out["pattern"] = np.tile(np.asarray(patterns, dtype=object), n_clips).astype(str)
    out["label"] = pd.array(np.where(np.isnan(labels), np.nan, labels).reshape(-1), dtype="Float32").astype("Int8")
    for name, arr in columns.items():
        out[name] = np.asarray(arr).reshape(-1)
    return out


def base_consensus(frames: Ratings, clips: Ratings, manifest: pd.DataFrame, method: str, ties: str = "positive",
                   min_overlap_frames: int = 1) -> pd.DataFrame:
    """Consensus per clip and pattern (CONSENSUS_COLUMNS) by a base method.

    frames: per-annotator frame Ratings; clips: the same annotators' clip Ratings (clip_ratings of
    `frames`, same manifest); manifest: the clip manifest. label is Int8 with <NA> when undecided.
    """
    kept, offset = clip_frame_offsets(frames, manifest.sort_values(["video_id", "start"], kind="stable"))
    if not kept["clip_id"].equals(clips.units["clip_id"]):
        raise ValueError("clip Ratings and manifest disagree on the clips: build both from the same manifest")

    def at_clips(tie: str) -> np.ndarray:
        return clip_values(combine_frames(frames.values, method, tie), offset, kept, min_overlap_frames)

    labels = at_clips(ties)
    provenance = np.full(labels.shape, method, dtype=object)
    if method == "majority":
        decided_by_tie = ~(at_clips("positive") == at_clips("negative"))  # also True where NaN
        provenance[decided_by_tie] = f"majority; tie -> {ties}"
    n_ann = np.sum(~np.isnan(clips.values), axis=1)
    n_pos = np.sum(clips.values == 1, axis=1)
    return _long(clips.units[list(CLIP_KEYS)], frames.patterns, labels,
                 method=np.full(labels.shape, method, dtype=object), provenance=provenance,
                 n_annotators=n_ann.astype(np.int64), n_positive=n_pos.astype(np.int64))


def apply_reviews(base: pd.DataFrame, resolved: pd.DataFrame) -> pd.DataFrame:
    """Adjudicated consensus: `base` (CONSENSUS_COLUMNS) with reviewer resolutions applied.

    resolved: clip_id, pattern, label (Int8: 1 present, 0 absent, <NA> = reviewers undecided),
    provenance (reviews.resolve_reviewers). Undecided resolutions keep the base label and append
    their provenance. Resolutions for clips not in `base` (excluded videos, stale clip ids) are
    ignored; the stage reports them.
    """
    out = base.copy()
    out["method"] = "adjudicated"
    key = ["clip_id", "pattern"]
    merged = out[key].merge(resolved[[*key, "label", "provenance"]], on=key, how="left", validate="one_to_one")
    has = merged["provenance"].notna().to_numpy()
    decided = has & merged["label"].notna().to_numpy()
    out.loc[decided, "label"] = merged.loc[decided, "label"].to_numpy()
    out.loc[decided, "provenance"] = merged.loc[decided, "provenance"].to_numpy()
    tied = has & ~decided
    out.loc[tied, "provenance"] = out.loc[tied, "provenance"] + "; " + merged.loc[tied, "provenance"].to_numpy()
    return out


def with_label_views(chosen: pd.DataFrame, base: pd.DataFrame, blind: pd.DataFrame,
                     latest: pd.DataFrame) -> pd.DataFrame:
    """`chosen` plus the label views that protect test labels from the model (one row per clip and pattern):

    - reader_label: the base consensus of the readers alone, no reviewer decision at all: the labels as
      they stood before any model existed (a model can only be trained after the readers' labels);
    - blind_label: the base consensus with only the reviewer decisions made WITHOUT any model output on
      screen (decisions.model_shown == 0: the app's blind test clips, Label Studio adjudication);
      evaluation scores internal_test and temporal clips on this one, so a model-assisted decision
      never reaches a test label, whatever role the clip has;
    - n_assisted: reviewers whose latest decision here was made with the model shown and casts a vote
      (what the blind view leaves out).
    base, blind: tables of CONSENSUS_COLUMNS' first columns on the same clips (base_consensus, apply_reviews
    of the blind resolutions); latest: every reviewer's latest decision (reviews.COLUMNS).
    """
    key = ["clip_id", "pattern"]
    out = chosen.copy()
    views = base[key].assign(reader_label=base["label"].to_numpy(), blind_label=blind["label"].to_numpy())
    if not (base[key].to_numpy() == blind[key].to_numpy()).all():
        raise ValueError("base and blind consensus tables are not aligned: build both from the same base")
    out = out.merge(views, on=key, how="left", validate="one_to_one")
    voting = latest[(latest["model_shown"].astype(int) == 1) & (latest["decision"] != "cannot_tell")]
    counts = voting.groupby(key).size().rename("n_assisted").reset_index()
    out = out.merge(counts, on=key, how="left")
    out["n_assisted"] = out["n_assisted"].fillna(0).astype("int64")
    for column in ("reader_label", "blind_label"):
        out[column] = out[column].astype("Int8")
    return out


def consensus_ratings(table: pd.DataFrame, clips: Ratings) -> Ratings:
    """A consensus table (one row per clip and pattern) as a one-rater clip Ratings aligned with `clips`."""
    wide = table.pivot(index="clip_id", columns="pattern", values="label")
    wide = wide.reindex(index=clips.units["clip_id"], columns=list(clips.patterns))
    values = wide.astype("Float32").to_numpy(dtype=np.float32, na_value=np.nan)
    return Ratings(clips.units, ("consensus",), values[:, None, :], clips.patterns)
