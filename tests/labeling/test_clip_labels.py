"""Frame ranges -> per-frame ratings -> clip labels (the seed's overlap rule and its generalisation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.clip_labels import (clip_ratings, clip_values, frame_ratings, ranges_outside, ratings_table,
                                  video_lengths)
from tests.labeling.factory import manifest

R1, R2 = "r1@x.invalid", "r2@x.invalid"


def _ranges(rows):
    return pd.DataFrame(rows, columns=["video_id", "annotator", "pattern", "start", "end"])


def _ratings(videos, pairs, rows, min_overlap=1, length=30, overlap=6):
    man = manifest(videos, length=length, overlap=overlap)
    lengths = video_lengths(man)
    patients = man.drop_duplicates("video_id").set_index("video_id")["patient_id"]
    frames = frame_ratings(pd.DataFrame(pairs, columns=["video_id", "annotator"]), _ranges(rows), lengths, patients)
    return man, frames, clip_ratings(frames, man, min_overlap)


def test_one_based_inclusive_ranges_become_zero_based_frames():
    _, frames, _ = _ratings([("V1", "P1", 10)], [("V1", R1)], [("V1", R1, "B-lines", 3, 5)], length=10, overlap=2)
    assert np.flatnonzero(frames.pattern("B-lines")[:, 0] == 1).tolist() == [2, 3, 4]
    assert np.all(frames.pattern("A-lines")[:, 0] == 0)  # rated, nothing marked: absent, not missing


def test_seed_example_152_frames_bline_24_32():
    # The seed's 152-frame video gives clips 1-30, 25-54, ..., 145-152; B-line 24_32 touches the first two.
    man, _, clips = _ratings([("V1", "P1", 152)], [("V1", R1)], [("V1", R1, "B-lines", 24, 32)])
    assert len(man) == 7 and man["end_frame_1based"].tolist()[-1] == 152
    assert clips.pattern("B-lines")[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0]


def test_min_overlap_counts_real_frames_and_caps_at_short_tails():
    # 20 frames, L=10, overlap 2: clips [0,10) [8,18) [16,20) (the last has 4 real frames + 6 repeats).
    rows = [("V1", R1, "B-lines", 5, 9),  # frames 4-8: 5 frames in clip 0, 1 frame in clip 1
            ("V1", R1, "Consolidation", 17, 20)]  # frames 16-19: 2 frames of clip 1, all 4 real frames of clip 2
    _, _, three = _ratings([("V1", "P1", 20)], [("V1", R1)], rows, min_overlap=3, length=10, overlap=2)
    assert three.pattern("B-lines")[:, 0].tolist() == [1, 0, 0]
    assert three.pattern("Consolidation")[:, 0].tolist() == [0, 0, 1]
    # 5 frames needed, but the tail clip has only 4 real ones, all positive: the threshold is capped
    _, _, five = _ratings([("V1", "P1", 20)], [("V1", R1)], rows, min_overlap=5, length=10, overlap=2)
    assert five.pattern("Consolidation")[:, 0].tolist() == [0, 0, 1]
    assert five.pattern("B-lines")[:, 0].tolist() == [1, 0, 0]
    _, _, one = _ratings([("V1", "P1", 20)], [("V1", R1)], rows, min_overlap=1, length=10, overlap=2)
    assert one.pattern("B-lines")[:, 0].tolist() == [1, 1, 0]
    assert one.pattern("Consolidation")[:, 0].tolist() == [0, 1, 1]


def test_ranges_past_the_end_are_cut_and_reported():
    man, frames, clips = _ratings([("V1", "P1", 12)], [("V1", R1)], [("V1", R1, "A-lines", 11, 40),
                                                                     ("V1", R1, "B-lines", 50, 60)],
                                  length=10, overlap=2)
    assert frames.pattern("A-lines")[:, 0].sum() == 2 and frames.pattern("B-lines")[:, 0].sum() == 0
    out = ranges_outside(_ranges([("V1", R1, "A-lines", 11, 40), ("V1", R1, "B-lines", 5, 6)]), video_lengths(man))
    assert out["end"].tolist() == [40] and out["n_frames"].tolist() == [12]


def test_unrated_videos_are_missing_and_left_out_of_the_table():
    _, _, clips = _ratings([("V1", "P1", 10), ("V2", "P1", 10)], [("V1", R1), ("V1", R2), ("V2", R1)],
                           [("V1", R2, "Pleural effusion", 1, 1)], length=10, overlap=2)
    table = ratings_table(clips)
    assert sorted(zip(table["clip_id"], table["annotator"])) == [
        ("V1_c000", R1), ("V1_c000", R2), ("V1_c001", R1), ("V1_c001", R2), ("V2_c000", R1), ("V2_c001", R1)]
    assert table.set_index(["clip_id", "annotator"]).loc[("V1_c000", R2), "Pleural effusion"] == 1
    assert str(table["A-lines"].dtype) == "Int8"


def test_three_valued_frames_give_three_valued_clips():
    frames = np.array([1, np.nan, np.nan, 0, 0, 0], dtype=np.float32)[:, None]
    clips = pd.DataFrame({"start": [0, 0, 3], "end": [3, 3, 6], "n_real_frames": [3, 3, 3]})
    assert clip_values(frames, np.zeros(3, dtype=np.int64), clips, 1)[:, 0].tolist() == [1, 1, 0]
    out = clip_values(frames, np.zeros(3, dtype=np.int64), clips, 2)[:, 0]
    assert np.isnan(out[0]) and out[2] == 0  # one sure frame, two undecided: cannot tell


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 120), intervals=st.lists(st.tuples(st.integers(1, 130), st.integers(0, 40)), max_size=4),
       tail=st.sampled_from(["pad", "drop", "shift"]))
def test_min_overlap_one_is_the_seeds_any_overlap_rule(n, intervals, tail):
    # The seed's check_labels_for_avi on 1-based inclusive clip [s, e] and interval [a, b].
    from curation.clips import ClipParams, build_manifest
    videos = pd.DataFrame([{"video_id": "V1", "patient_id": "P1", "period": "development", "n_frames": n, "fps": 30.0}])
    man = build_manifest(videos, ClipParams(length=30, overlap=6, tail=tail))
    if man.empty:
        return
    ivs = [(a, min(a + w, n)) for a, w in intervals if a <= n]
    rows = [("V1", R1, "A-lines", a, b) for a, b in ivs]
    lengths = video_lengths(man)
    frames = frame_ratings(pd.DataFrame({"video_id": ["V1"], "annotator": [R1]}), _ranges(rows), lengths,
                           pd.Series({"V1": "P1"}))
    got = clip_ratings(frames, man, 1).pattern("A-lines")[:, 0]
    s, e = man["start_frame_1based"].to_numpy(), man["end_frame_1based"].to_numpy()
    want = [any(a <= si <= b or a <= ei <= b or (si <= a and ei >= b) for a, b in ivs) for si, ei in zip(s, e)]
    assert got.astype(bool).tolist() == want
