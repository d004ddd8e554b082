"""Clip windowing, frame geometry and the manifest table: pure functions, no video."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.clips import (
    MANIFEST_DTYPES,
    ClipParams,
    build_manifest,
    center_crop_box,
    clip_frame_indices,
    clip_windows,
    letterbox_box,
    window_starts,
)
from luskit.config import ConfigError, load_section
from tests.conftest import REPO


def one_based(n: int, tail: str = "pad", length: int = 30, overlap: int = 6) -> list[tuple[int, int, int]]:
    win = clip_windows(n, length, overlap, tail)
    return [(s + 1, e, r) for s, e, r in zip(win["start"], win["end"], win["n_real_frames"])]


# --- the seed's rule (tail=pad) -----------------------------------------------------------------

def test_seed_152_frames_gives_7_clips():
    assert one_based(152) == [(1, 30, 30), (25, 54, 30), (49, 78, 30), (73, 102, 30),
                              (97, 126, 30), (121, 150, 30), (145, 152, 8)]


def test_seed_62_and_39_frames():
    assert one_based(62) == [(1, 30, 30), (25, 54, 30), (49, 62, 14)]
    assert one_based(39) == [(1, 30, 30), (25, 39, 15)]


def test_seed_totals():
    # The seed's v1 clip count: 297 videos of 152 frames, 43 of 62, 1 of 39 -> 2,210 clips.
    assert 297 * len(one_based(152)) + 43 * len(one_based(62)) + len(one_based(39)) == 2210


def test_padded_tail_repeats_last_real_frame():
    idx = clip_frame_indices(144, 152, 30)  # clip 145-152, 0-based [144, 152)
    assert idx.dtype == np.int64 and idx.shape == (30,)
    assert idx[:8].tolist() == list(range(144, 152))
    assert idx[8:].tolist() == [151] * 22


def test_clip_frame_indices_rejects_bad_ranges():
    for start, end, length in ((5, 5, 30), (0, 31, 30), (-1, 3, 30)):
        with pytest.raises(ValueError):
            clip_frame_indices(start, end, length)


# --- drop and shift -----------------------------------------------------------------------------

def test_drop_keeps_full_windows_only():
    assert one_based(152, "drop") == one_based(152)[:6]
    assert one_based(29, "drop") == []
    assert one_based(30, "drop") == [(1, 30, 30)]


def test_shift_adds_one_end_aligned_window():
    assert one_based(152, "shift") == one_based(152)[:6] + [(123, 152, 30)]
    assert one_based(54, "shift") == [(1, 30, 30), (25, 54, 30)]  # last full window reaches the end
    assert one_based(20, "shift") == [(1, 20, 20)]  # shorter than a clip: one padded window
    assert one_based(0, "shift") == [] and one_based(0, "pad") == []


def test_window_table_columns_and_dtypes():
    win = clip_windows(62, 30, 6, "pad")
    assert list(win.columns) == ["clip_index", "start", "end", "n_real_frames"]
    assert all(win[c].dtype == np.int64 for c in win.columns)
    assert win["clip_index"].tolist() == [0, 1, 2]


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 400), length=st.integers(2, 80), data=st.data(),
       tail=st.sampled_from(["pad", "drop", "shift"]))
def test_window_properties(n, length, data, tail):
    overlap = data.draw(st.integers(0, length - 1))
    windows = window_starts(n, length, overlap, tail)
    starts = [s for s, _ in windows]
    assert starts == sorted(set(starts))  # strictly increasing
    for s, e in windows:
        assert 0 <= s < e <= n and e - s <= length
        assert clip_frame_indices(s, e, length).shape == (length,)  # every clip is length long
    if tail == "drop":
        assert all(e - s == length for s, e in windows)  # drop never pads
        assert len(windows) == (0 if n < length else (n - length) // (length - overlap) + 1)
    else:
        covered = np.zeros(n, dtype=bool)
        for s, e in windows:
            covered[s:e] = True
        assert covered.all()  # pad and shift cover every frame 0..n-1
    if tail == "pad":
        assert len(windows) == -(-n // (length - overlap))
        assert all(s % (length - overlap) == 0 for s in starts)
    if tail == "shift":
        assert all(e - s == length for s, e in windows) or (len(windows) == 1 and n < length)


# --- params ----------------------------------------------------------------------------------------

def test_params_yaml_section_matches_dataclass():
    params = load_section(REPO / "params.yaml", "clips", ClipParams)
    assert params == ClipParams()  # the dataclass defaults are the shipped values
    assert params.step == 24


@pytest.mark.parametrize("bad", [{"length": 1}, {"overlap": 30}, {"overlap": -1}, {"size": 8},
                                 {"tail": "wrap"}, {"resize": "stretch"}, {"grayscale": "yes"},
                                 {"colour": True}])
def test_params_rejects_bad_values(tmp_path, bad):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"clips": bad}))
    with pytest.raises(ConfigError):
        load_section(path, "clips", ClipParams)


# --- geometry -------------------------------------------------------------------------------------

def test_letterbox_geometry_matches_seed():
    box = letterbox_box(771, 988, 256)  # the seed's 988x771 crop -> 256x199, rows 28-227
    assert (box.top, box.left, box.height, box.width) == (28, 0, 199, 256)
    tall = letterbox_box(988, 771, 256)
    assert (tall.top, tall.left, tall.height, tall.width) == (0, 28, 256, 199)
    square = letterbox_box(50, 50, 128)
    assert (square.top, square.left, square.height, square.width) == (0, 0, 128, 128)


def test_center_crop_geometry():
    box = center_crop_box(771, 988)
    assert (box.top, box.left, box.height, box.width) == (0, 108, 771, 771)
    tall = center_crop_box(100, 60)
    assert (tall.top, tall.left, tall.height, tall.width) == (20, 0, 60, 60)


# --- manifest -------------------------------------------------------------------------------------

def test_manifest_rows_columns_dtypes():
    videos = pd.DataFrame({"video_id": ["v2", "v1"], "patient_id": ["p2", "p1"],
                           "period": ["temporal", "development"], "n_frames": [39, 152], "fps": [25.0, 30.0]})
    man = build_manifest(videos, ClipParams())
    assert list(man.columns) == list(MANIFEST_DTYPES)
    for col, dtype in MANIFEST_DTYPES.items():
        assert (pd.api.types.is_string_dtype(man[col]) if dtype == "str" else man[col].dtype == dtype), col
    assert man["clip_id"].tolist() == [f"v1_c{i:03d}" for i in range(7)] + ["v2_c000", "v2_c001"]
    last = man.iloc[6]
    assert (last.start, last.end, last.start_frame_1based, last.end_frame_1based, last.n_real_frames) == (
        144, 152, 145, 152, 8)
    assert last.cache_file == "cache/v1.npy" and last.patient_id == "p1" and last.fps == 30.0
    assert man.iloc[8].period == "temporal"


def test_empty_manifest_keeps_schema():
    videos = pd.DataFrame({"video_id": ["v"], "patient_id": ["p"], "period": ["development"],
                           "n_frames": [10], "fps": [30.0]})
    man = build_manifest(videos, ClipParams(tail="drop"))
    assert man.empty and list(man.columns) == list(MANIFEST_DTYPES)
    assert man["start"].dtype == np.int64
