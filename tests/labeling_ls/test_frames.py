"""Frame exactness end to end: ranges written through the API come back as the same frames, those
frames are the ones decoded from the video file Label Studio serves, and clip labels derived from
the ranges equal clip labels derived from the decoded frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from curation.clips import ClipParams, build_manifest
from labeling.adjudication import read_adjudications
from labeling.ls import client, projects, pull, push
from tests.labeling_ls.helpers import decode_frame_numbers, parse_ranges, ranges_result

pytestmark = pytest.mark.slow

ROUND = "frames"


def _ranges(n: int) -> dict[str, list[tuple[int, int]]]:
    """First frame alone, a middle span, and a span ending on the last frame."""
    return {"A-lines": [(1, 1)], "B-lines": [(7, 19)], "Consolidation": [(n - 4, n)]}


def test_ranges_come_back_as_the_same_frames(ls_server, tmp_path):
    ls = ls_server.connect()
    projects.init_round(ls, ROUND, str(ls_server.artifacts / "videos"))
    videos = ls_server.videos
    push.push_round(ls, ROUND, videos, gold_fraction=0.0, blind=True)
    dev = client.find_project(ls, projects.project_title(ROUND, projects.DEVELOPMENT))
    tasks = client.tasks_by_key(ls, dev.id)
    uid = client.ensure_user(ls, "frames@test.luskit.invalid", "Frame", "Reader")
    n_frames = videos.set_index("video_id")["n_frames"]
    written = set()
    for video_id, task in tasks.items():
        ranges = _ranges(int(n_frames[video_id]))
        client.create_annotation(ls, task["id"], ranges_result(ranges), uid)
        written |= {(video_id, p, s, e) for p, spans in ranges.items() for s, e in spans}

    path, _ = pull.pull_round(ls, ROUND, tmp_path)
    snap = json.loads(path.read_text())
    assert {(v, p, s, e) for v, _, p, s, e in parse_ranges(snap)} == written
    fps = {t["data"]["video_id"]: t["data"]["fps"] for t in snap}
    assert fps == videos.set_index("video_id")["fps"].to_dict()  # the 25 fps video stays 25 fps

    manifest = build_manifest(videos[videos["video_id"].isin(tasks)], ClipParams(length=15, overlap=3))
    for video_id in tasks:
        shown = np.array(decode_frame_numbers(ls_server.artifacts / "videos" / f"{video_id}.mp4"))
        n = int(n_frames[video_id])
        assert shown.tolist() == list(range(1, n + 1)), "the served file must decode to frames 1..n in order"
        for pattern, spans in _ranges(n).items():
            mask = np.zeros(n, bool)  # per frame, from the pulled 1-based inclusive ranges
            for v, _, p, s, e in parse_ranges(snap):
                if v == video_id and p == pattern:
                    mask[s - 1:e] = True
            assert sorted(shown[mask].tolist()) == [f for s, e in spans for f in range(s, e + 1)]
            for clip in manifest[manifest["video_id"] == video_id].itertuples():
                from_ranges = bool(mask[clip.start:clip.end].any())
                from_pixels = any(s <= f <= e for f in shown[clip.start:clip.end] for s, e in spans)
                assert from_ranges == from_pixels, (video_id, pattern, clip.clip_id)


def test_adjudication_clips_keep_their_frames(ls_server, tmp_path):
    """The clip-level Choices project: clip frames (1-based inclusive) survive push and pull."""
    ls = ls_server.connect()
    made = projects.init_round(ls, "adj", str(ls_server.artifacts / "videos"), adjudication=True)
    assert [p["role"] for p in made] == ["development", "temporal", "adjudication"]
    videos = ls_server.videos
    manifest = build_manifest(videos, ClipParams(length=15, overlap=3))
    clips = manifest.rename(columns={"start": "s0", "end": "e0", "start_frame_1based": "start",
                                     "end_frame_1based": "end"})[["clip_id", "video_id", "start", "end"]]
    first = push.push_clips(ls, "adj", clips, videos)
    again = push.push_clips(ls, "adj", clips, videos)
    assert first.created == len(clips) and again.created == 0
    adj = projects.round_projects(ls, "adj", (projects.ADJUDICATION,))[projects.ADJUDICATION]
    one = client.tasks_by_key(ls, adj.id, key="clip_id")[clips["clip_id"].iloc[1]]
    choice = [{"type": "choices", "from_name": "patterns", "to_name": "video",
               "value": {"choices": ["B-lines", "Pleural effusion"]}},
              {"type": "choices", "from_name": "quality", "to_name": "video", "value": {"choices": ["usable"]}}]
    client.create_annotation(ls, one["id"], choice, client.ensure_user(ls, "adj@test.luskit.invalid"))
    path, _ = pull.pull_round(ls, "adj", tmp_path, roles=(projects.ADJUDICATION,), suffix="-adjudication")
    assert path.name.endswith("Z-adjudication.json")
    snap = {t["data"]["clip_id"]: t for t in json.loads(path.read_text())}
    assert len(snap) == len(clips)
    for row in clips.itertuples():
        assert (snap[row.clip_id]["data"]["start"], snap[row.clip_id]["data"]["end"]) == (row.start, row.end)
    (ann,) = snap[clips["clip_id"].iloc[1]]["annotations"]
    assert ann["result"][0]["value"]["choices"] == ["B-lines", "Pleural effusion"]
    # The real export reads back as one reviewer's decisions on that clip (what the labels stage merges).
    decisions = read_adjudications(tmp_path)
    assert set(decisions["clip_id"]) == {clips["clip_id"].iloc[1]}
    assert set(decisions["reviewer"]) == {"adj@test.luskit.invalid"}
    assert dict(zip(decisions["pattern"], decisions["decision"])) == {
        "A-lines": "absent", "B-lines": "present", "Consolidation": "absent", "Pleural effusion": "present"}
    assert pd.to_datetime(decisions["timestamp"], utc=True, format="ISO8601").notna().all()
