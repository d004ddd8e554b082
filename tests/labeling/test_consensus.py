"""Consensus methods (the seed's AND/OR of intervals, majority with ties) and reviewer overrides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labeling.clip_labels import clip_ratings, frame_ratings, video_lengths
from labeling.consensus import apply_reviews, base_consensus, combine_frames, consensus_frames, consensus_ratings
from tests.labeling.factory import manifest

R1, R2, R3 = "r1@x.invalid", "r2@x.invalid", "r3@x.invalid"
NAN = np.nan


def _study(rows, raters=(R1, R2), n_frames=40, length=30, overlap=6):
    man = manifest([("V1", "P1", n_frames)], length=length, overlap=overlap)
    pairs = pd.DataFrame({"video_id": "V1", "annotator": list(raters)})
    ranges = pd.DataFrame(rows, columns=["video_id", "annotator", "pattern", "start", "end"])
    frames = frame_ratings(pairs, ranges, video_lengths(man), pd.Series({"V1": "P1"}))
    return man, frames, clip_ratings(frames, man)


def test_combine_frames_truth_table():
    v = np.array([[1, 1], [1, 0], [0, 0], [1, NAN], [NAN, NAN]], dtype=np.float32)[:, :, None]
    assert combine_frames(v, "and")[:, 0].tolist()[:4] == [1, 0, 0, 1]
    assert combine_frames(v, "or")[:, 0].tolist()[:4] == [1, 1, 0, 1]
    assert combine_frames(v, "majority", "positive")[:, 0].tolist()[:4] == [1, 1, 0, 1]
    assert combine_frames(v, "majority", "negative")[:, 0].tolist()[:4] == [1, 0, 0, 1]
    tie_missing = combine_frames(v, "majority", "missing")[:, 0]
    assert np.isnan(tie_missing[1]) and tie_missing[0] == 1
    assert all(np.isnan(combine_frames(v, m)[4, 0]) for m in ("and", "or", "majority"))  # nobody rated
    with pytest.raises(ValueError, match="adjudicated needs a base"):
        combine_frames(v, "adjudicated")


def test_seed_versions_are_intersection_and_union_of_intervals():
    # The seed's example video: B-line 24_32 in version 1 (AND) and 15_33 in version 2 (OR).
    _, frames, _ = _study([("V1", R1, "B-lines", 15, 32), ("V1", R2, "B-lines", 24, 33)])
    anded = consensus_frames(frames, "and").pattern("B-lines")[:, 0]
    ored = consensus_frames(frames, "or").pattern("B-lines")[:, 0]
    assert (np.flatnonzero(anded) + 1).tolist() == list(range(24, 33))
    assert (np.flatnonzero(ored) + 1).tolist() == list(range(15, 34))


def test_and_works_on_frames_not_on_clip_labels():
    # Both readers mark B-lines in clip 0 (frames 1-30), but on disjoint frames: the intersection is empty.
    man, frames, clips = _study([("V1", R1, "B-lines", 2, 8), ("V1", R2, "B-lines", 12, 20)])
    table = base_consensus(frames, clips, man, "and")
    b = table[table["pattern"] == "B-lines"].set_index("clip_id")
    assert b.loc["V1_c000", "label"] == 0 and b.loc["V1_c000", "n_positive"] == 2
    ored = base_consensus(frames, clips, man, "or")
    assert ored.set_index(["clip_id", "pattern"]).loc[("V1_c000", "B-lines"), "label"] == 1


def test_majority_ties_and_provenance():
    man, frames, clips = _study([("V1", R1, "Consolidation", 1, 40)])
    for ties, want in (("positive", 1), ("negative", 0)):
        t = base_consensus(frames, clips, man, "majority", ties).set_index(["clip_id", "pattern"])
        assert t.loc[("V1_c000", "Consolidation"), "label"] == want
        assert t.loc[("V1_c000", "Consolidation"), "provenance"] == f"majority; tie -> {ties}"
        assert t.loc[("V1_c000", "A-lines"), "provenance"] == "majority"  # both said absent: no tie involved
    missing = base_consensus(frames, clips, man, "majority", "missing").set_index(["clip_id", "pattern"])
    assert pd.isna(missing.loc[("V1_c000", "Consolidation"), "label"])
    assert missing.loc[("V1_c000", "A-lines"), "label"] == 0


def test_three_readers_majority_needs_two():
    rows = [("V1", R1, "A-lines", 1, 10), ("V1", R2, "A-lines", 5, 12), ("V1", R3, "Pleural effusion", 1, 5)]
    man, frames, clips = _study(rows, raters=(R1, R2, R3))
    t = base_consensus(frames, clips, man, "majority", "missing").set_index(["clip_id", "pattern"])
    assert t.loc[("V1_c000", "A-lines"), "label"] == 1 and t.loc[("V1_c000", "Pleural effusion"), "label"] == 0
    assert t.loc[("V1_c000", "A-lines"), "n_annotators"] == 3 and t.loc[("V1_c000", "A-lines"), "n_positive"] == 2


def test_reviews_override_with_provenance_and_ties_keep_the_base():
    man, frames, clips = _study([("V1", R1, "B-lines", 1, 40)])
    base = base_consensus(frames, clips, man, "majority", "positive")
    resolved = pd.DataFrame({"clip_id": ["V1_c000", "V1_c001", "V9_c000"], "pattern": ["B-lines"] * 3,
                             "label": pd.array([0, pd.NA, 1], dtype="Int8"),
                             "provenance": ["review (absent: boss@x)", "reviewers undecided (...) -> base",
                                            "review (present: boss@x)"]})
    adj = apply_reviews(base, resolved).set_index(["clip_id", "pattern"])
    assert set(adj["method"]) == {"adjudicated"}
    assert adj.loc[("V1_c000", "B-lines"), "label"] == 0
    assert adj.loc[("V1_c000", "B-lines"), "provenance"] == "review (absent: boss@x)"
    assert adj.loc[("V1_c001", "B-lines"), "label"] == 1
    assert adj.loc[("V1_c001", "B-lines"), "provenance"].startswith("majority; tie -> positive; reviewers undecided")
    assert len(adj) == len(base)  # the unknown clip is ignored


def test_consensus_ratings_round_trip():
    man, frames, clips = _study([("V1", R1, "B-lines", 1, 40), ("V1", R2, "B-lines", 1, 3)])
    table = base_consensus(frames, clips, man, "and")
    r = consensus_ratings(table, clips)
    assert r.values.shape == (len(clips.units), 1, 4) and r.pattern("B-lines")[:, 0].tolist() == [1, 0]
