"""Label Studio adjudication pulls as reviewer decisions: parsing rules, latest per reviewer, merge with the app."""

from __future__ import annotations

import pandas as pd
import pytest

from labeling import reviews
from labeling.adjudication import merge_latest, parse_adjudication, read_adjudications
from labeling.annotations import SnapshotError
from luskit.schema import PATTERNS
from tests.labeling.factory import adjudication, clip_task, write_snapshot

BOSS, OTHER = "boss@x.invalid", "other@x.invalid"


def decided(frame: pd.DataFrame, reviewer: str, clip: str) -> dict[str, str]:
    rows = frame[(frame["reviewer"] == reviewer) & (frame["clip_id"] == clip)]
    return dict(zip(rows["pattern"], rows["decision"]))


def test_ticked_is_present_unticked_absent_and_an_unreadable_clip_cannot_be_told():
    tasks = [clip_task(1, "V_c000", "V", [adjudication(1, BOSS, ["B-lines", "Pleural effusion"]),
                                          adjudication(2, OTHER, [], quality="exclude: dark"),
                                          adjudication(3, "skip@x.invalid", ["A-lines"], cancelled=True)]),
             clip_task(2, "V_c001", "V", [adjudication(4, BOSS, [], quality=None)])]
    rows = parse_adjudication(tasks, "s.json")
    assert decided(rows, BOSS, "V_c000") == {"A-lines": "absent", "B-lines": "present", "Consolidation": "absent",
                                             "Pleural effusion": "present"}
    assert decided(rows, OTHER, "V_c000") == {p: "cannot_tell" for p in PATTERNS}
    assert decided(rows, BOSS, "V_c001") == {p: "absent" for p in PATTERNS}  # saw nothing, quality left empty
    assert "skip@x.invalid" not in set(rows["reviewer"])
    assert set(rows["app_version"]) == {"label-studio"} and set(rows["video_id"]) == {"V"}


@pytest.mark.parametrize("task, match", [
    (clip_task(1, "V_c000", "V", [adjudication(1, BOSS, ["Pneumothorax"])]), "unknown pattern.*Pneumothorax"),
    (clip_task(1, "V_c000", "V", [adjudication(1, BOSS, [], quality="fine")]), "quality 'fine'"),
    ({"id": 7, "data": {"video_id": "V"}, "annotations": []},
     "task 7 has no data.clip_id; this is not an adjudication pull.*data/annotations"),
])
def test_bad_pulls_name_the_file_and_the_fix(task, match):
    with pytest.raises(SnapshotError, match=f"bad.json: .*{match}"):
        parse_adjudication([task], "bad.json")


def test_latest_annotation_of_a_reviewer_wins_and_newest_pull_drops_deleted_ones(tmp_path):
    first = [clip_task(1, "V_c000", "V", [adjudication(1, BOSS, ["A-lines"], updated_at="2024-12-01T10:00:00Z"),
                                          adjudication(2, OTHER, ["A-lines"])])]
    # The second pull: BOSS changed their mind, OTHER's annotation was deleted in Label Studio.
    second = [clip_task(1, "V_c000", "V", [adjudication(1, BOSS, ["B-lines"], updated_at="2024-12-02T10:00:00Z")])]
    write_snapshot(tmp_path, "20241201T110000Z-adjudication.json", first)
    write_snapshot(tmp_path, "20241202T110000Z-adjudication.json", second)
    newest = read_adjudications(tmp_path, "newest")
    assert decided(newest, BOSS, "V_c000")["B-lines"] == "present" and OTHER not in set(newest["reviewer"])
    every = read_adjudications(tmp_path, "all")
    assert decided(every, BOSS, "V_c000")["A-lines"] == "absent"  # the later annotation still wins
    assert decided(every, OTHER, "V_c000")["A-lines"] == "present"
    assert len(every) == 2 * len(PATTERNS) and list(every.columns) == list(reviews.COLUMNS)
    assert read_adjudications(tmp_path / "absent").empty


def test_one_vote_per_reviewer_the_later_source_wins_the_app_on_a_tie(tmp_path):
    db = tmp_path / "decisions.sqlite"
    reviews.record_decision(BOSS, "V", "V_c000", "A-lines", "present", db=db)
    reviews.record_decision(BOSS, "V", "V_c001", "A-lines", "present", db=db)
    app = reviews.latest_decisions(reviews.read_decisions(db))
    when = app["timestamp"].iloc[0]
    later = (pd.Timestamp(when) + pd.Timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tasks = [clip_task(1, "V_c000", "V", [adjudication(1, BOSS, [], updated_at=later)]),
             clip_task(2, "V_c001", "V", [adjudication(2, BOSS, [], updated_at="2000-01-01T00:00:00Z")]),
             clip_task(3, "V_c002", "V", [adjudication(3, OTHER, ["A-lines"], updated_at=when)])]
    write_snapshot(tmp_path / "ls", "20241201T110000Z-adjudication.json", tasks)
    merged = merge_latest(app, read_adjudications(tmp_path / "ls"))
    a_lines = merged[merged["pattern"] == "A-lines"].set_index(["clip_id", "reviewer"])["decision"]
    assert a_lines[("V_c000", BOSS)] == "absent"  # Label Studio is later
    assert a_lines[("V_c001", BOSS)] == "present"  # the app is later
    assert a_lines[("V_c002", OTHER)] == "present"
    assert not merged.duplicated(["reviewer", "clip_id", "pattern"]).any()
    tie = merge_latest(app, read_adjudications(tmp_path / "ls").assign(timestamp=when))
    assert tie.set_index(["clip_id", "reviewer", "pattern"]).loc[("V_c000", BOSS, "A-lines"), "decision"] == "present"
    resolved = reviews.resolve_reviewers(merged)
    assert len(resolved) == 3 * len(PATTERNS)
