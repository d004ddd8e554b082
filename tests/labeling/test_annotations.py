"""Snapshot parsing: annotator identity, cancelled/latest annotations, snapshot selection, exclusions."""

from __future__ import annotations

import pandas as pd
import pytest

from labeling.annotations import (SnapshotError, annotator_name, latest_per_annotator, parse_export,
                                  read_annotations, select_snapshots, snapshot_source, video_exclusions)
from tests.labeling.factory import annotation, task, write_snapshot

R1, R2 = "reader1@x.invalid", "reader2@x.invalid"


def test_annotator_identity_prefers_email_and_maps_bare_ids():
    assert annotator_name({"id": 2, "email": "Reader1@X.invalid"}) == "reader1@x.invalid"
    assert annotator_name({"id": 7, "email": ""}) == "user7"
    assert annotator_name(5) == "user5"
    with pytest.raises(ValueError):
        annotator_name(None)


def test_parse_export_expands_ranges_labels_and_quality():
    tasks = [task(1, "V1", "P1", [
        annotation(1, R1, {"B-lines": [(24, 32), (40, 55)], "A-lines": [(1, 10)]}),
        annotation(2, 3, {}, quality="exclude: dark"),  # bare id, no expansion
        annotation(3, R2, {"Consolidation": [(5, 9)]}, cancelled=True),
    ])]
    tasks[0]["annotations"][0]["result"].append({"type": "timelinelabels", "from_name": "patterns", "to_name": "video",
                                                 "value": {"ranges": [{"start": 3, "end": 4}, {"start": 8, "end": 8}],
                                                           "timelinelabels": ["Pleural effusion"]}})
    records, ranges = parse_export(tasks, "s1.json")
    assert sorted(records["annotator"]) == [R1, "user3"]  # the cancelled one is gone
    assert records.set_index("annotator").loc["user3", "quality"] == "exclude: dark"
    got = sorted(map(tuple, ranges[["pattern", "start", "end"]].to_numpy().tolist()))
    assert got == [("A-lines", 1, 10), ("B-lines", 24, 32), ("B-lines", 40, 55), ("Pleural effusion", 3, 4),
                   ("Pleural effusion", 8, 8)]
    assert set(ranges["snapshot"]) == {"s1.json"} and set(ranges["patient_id"]) == {"P1"}


def test_empty_quality_is_none_and_other_results_are_ignored():
    ann = annotation(1, R1, {"A-lines": [(1, 2)]}, quality=None)
    ann["result"].append({"type": "textarea", "from_name": "comment", "value": {"text": ["ok"]}})
    records, ranges = parse_export([task(1, "V1", "P1", [ann])], "s.json")
    assert records["quality"].isna().all() and len(ranges) == 1


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["annotations"][0]["result"][0]["value"].update(timelinelabels=["Lung sliding"]), "unknown pattern"),
    (lambda t: t["annotations"][0]["result"][0]["value"].update(ranges=[{"start": 9, "end": 3}]), "ends before"),
    (lambda t: t["annotations"][0]["result"][0]["value"].update(ranges=[{"start": 0, "end": 3}]), "1-based"),
    (lambda t: t["data"].pop("video_id"), "no data.video_id"),
])
def test_bad_snapshots_name_the_task_and_the_fix(mutate, message):
    t = task(4, "V1", "P1", [annotation(1, R1, {"A-lines": [(1, 2)]})])
    mutate(t)
    with pytest.raises(SnapshotError, match=message) as err:
        parse_export([t], "bad.json")
    assert "bad.json" in str(err.value)


def test_latest_annotation_per_annotator_wins_within_and_across_snapshots():
    old = [task(1, "V1", "P1", [annotation(1, R1, {"A-lines": [(1, 5)]}, updated_at="2024-01-01T00:00:00Z"),
                                annotation(2, R1, {"A-lines": [(2, 6)]}, updated_at="2024-02-01T00:00:00Z"),
                                annotation(3, R2, {"B-lines": [(1, 9)]})])]
    new = [task(1, "V1", "P1", [annotation(9, R2, {}, updated_at="2023-01-01T00:00:00Z")])]
    parsed = [parse_export(old, "a.json"), parse_export(new, "b.json")]
    records = pd.concat([p[0] for p in parsed], ignore_index=True)
    ranges = pd.concat([p[1] for p in parsed], ignore_index=True)
    rec, rng = latest_per_annotator(records, ranges, ["a.json", "b.json"])
    assert rec.set_index("annotator")["annotation_id"].to_dict() == {R1: 2, R2: 9}
    # reader 2's newer snapshot says "nothing" even though its updated_at is older: snapshot order first
    assert rng[["annotator", "start", "end"]].to_numpy().tolist() == [[R1, 2, 6]]


def test_updated_at_with_and_without_fractional_seconds_compare_as_times():
    # Label Studio writes microseconds; other exports may not. Parsed with one inferred format, the other
    # kind became NaT and sorted first, so an older annotation could win.
    t = [task(1, "V1", "P1", [annotation(1, R1, {"A-lines": [(1, 5)]}, updated_at="2024-01-01T00:00:00.500000Z"),
                              annotation(2, R1, {"A-lines": [(7, 9)]}, updated_at="2024-03-01T00:00:00Z")])]
    rec, rng = latest_per_annotator(*parse_export(t, "s.json"), ["s.json"])
    assert rec["annotation_id"].tolist() == [2] and rng["start"].tolist() == [7]


def test_same_time_ties_break_on_annotation_id():
    t = [task(1, "V1", "P1", [annotation(5, R1, {"A-lines": [(1, 5)]}), annotation(4, R1, {"A-lines": [(7, 9)]})])]
    rec, rng = latest_per_annotator(*parse_export(t, "s.json"), ["s.json"])
    assert rec["annotation_id"].tolist() == [5] and rng["start"].tolist() == [1]


def test_newest_keeps_one_snapshot_per_source():
    sources = {"20240101T000000Z.json": "label-studio:1", "20240301T000000Z.json": "label-studio:1",
               "20240201T000000Z_sheet-ab.json": "sheet:ab:senior@x", "20240401T000000Z.json": "label-studio:2"}
    assert select_snapshots(sources, "newest") == ["20240201T000000Z_sheet-ab.json", "20240301T000000Z.json",
                                                   "20240401T000000Z.json"]
    assert select_snapshots(sources, "all") == sorted(sources)
    with pytest.raises(ValueError, match="newest or all"):
        select_snapshots(sources, "latest")


def test_snapshot_source_reads_the_project_or_the_import_marker():
    assert snapshot_source([task(1, "V1", "P1", [], project=3)]) == "label-studio:3"
    marked = task(1, "V1", "P1", [])
    marked["meta"] = {"luskit_import": {"sheet_sha256": "f" * 64, "annotator": R1}}
    assert snapshot_source([marked]) == f"sheet:{'f' * 16}:{R1}"


def test_read_annotations_from_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="luskit label pull"):
        read_annotations(tmp_path / "annotations")
    folder = tmp_path / "annotations"
    write_snapshot(folder, "20240101T000000Z.json", [task(1, "V1", "P1", [annotation(1, R1, {"A-lines": [(1, 3)]})])])
    write_snapshot(folder, "20240201T000000Z.json", [task(1, "V1", "P1", [annotation(1, R1, {"A-lines": [(1, 4)]}),
                                                                            annotation(2, R2, {})])])
    records, ranges, names = read_annotations(folder, "newest")
    assert names == ["20240201T000000Z.json"] and len(records) == 2 and ranges["end"].tolist() == [4]
    records, ranges, names = read_annotations(folder, "all")
    assert len(names) == 2 and ranges["end"].tolist() == [4]  # the newer snapshot's annotation wins
    (folder / "20240301T000000Z.json").write_text("{not json")
    with pytest.raises(SnapshotError, match="20240301T000000Z.json: not valid JSON"):
        read_annotations(folder)


def test_video_exclusion_rules():
    records = pd.DataFrame({"video_id": ["V1", "V1", "V2", "V2", "V2", "V3"],
                            "quality": ["exclude: dark", "usable", "exclude: blurred", "exclude: blurred", None,
                                        "exclude: not lung"]})
    any_ = video_exclusions(records, "any").set_index("video_id")
    assert any_["excluded"].to_dict() == {"V1": True, "V2": True, "V3": True}
    assert any_.loc["V2", "reason"] == "exclude: blurred (2 of 3)"
    assert video_exclusions(records, "majority").set_index("video_id")["excluded"].to_dict() == \
        {"V1": False, "V2": True, "V3": True}
    assert video_exclusions(records, "all").set_index("video_id")["excluded"].to_dict() == \
        {"V1": False, "V2": False, "V3": True}
