"""Seed-format spreadsheets -> Label Studio snapshots the labels stage reads like any other."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from labeling.annotations import parse_export, read_annotations, snapshot_source
from labeling.sheets import SheetError, import_sheet, merge_intervals, parse_cell, parse_sheet, read_sheet
from tests.labeling.factory import annotation, task, write_snapshot

VIDEOS = pd.DataFrame({"video_id": ["P1_V1", "P1_V2", "P2_V1"], "patient_id": ["P1", "P1", "P2"],
                       "fps": [30.0, 30.0, 25.0], "n_frames": [152, 62, 100]})
NOW = datetime(2024, 12, 1, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("cell, want", [
    ("24_32, 40_55", [(24, 32), (40, 55)]), ("17", [(17, 17)]), (17, [(17, 17)]), (17.0, [(17, 17)]),
    (np.nan, []), (None, []), ("", []), ("  ", []), ("24_32,", [(24, 32)]), ("3-5; 9", [(3, 5), (9, 9)]),
    ("1_152", [(1, 152)]),
])
def test_parse_cell(cell, want):
    assert parse_cell(cell) == want


@pytest.mark.parametrize("cell", ["24_", "a_b", "0_3", "32_24", 17.5, "24_32_40", "3_ce"])
def test_parse_cell_refuses_what_is_not_an_interval(cell):
    with pytest.raises(ValueError):
        parse_cell(cell)


def test_merge_intervals_joins_overlapping_and_touching():
    assert merge_intervals([(30, 40), (1, 10), (11, 12), (35, 50)]) == [(1, 12), (30, 50)]


def test_seed_columns_are_recognised_and_confluent_b_lines_merge_into_b_lines():
    sheet = pd.DataFrame({"PatientID": ["12345678", "12345678"], "video_id": ["P1_V1", "P1_V2"],
                          "A-line": ["1_20", np.nan], "B-line": ["24_32", np.nan], "Confluent B-line": ["30_40", "5"],
                          "Consolidation": [np.nan, "1_62"], "Pleural effusion": [np.nan, np.nan],
                          "Lung sliding": ["yes", "no"], "Lung Ultrasoung Score": ["3_ce", "1"]})
    parsed = parse_sheet(sheet).set_index("video_id")
    assert parsed.loc["P1_V1", "B-lines"] == [(24, 40)] and parsed.loc["P1_V2", "B-lines"] == [(5, 5)]
    assert parsed.loc["P1_V1", "A-lines"] == [(1, 20)] and parsed.loc["P1_V2", "Pleural effusion"] == []
    assert "PatientID" not in parsed.columns  # nothing but ids, labels and quality is kept


def test_our_column_names_work_too():
    sheet = pd.DataFrame({"Video ID": ["P1_V1"], "A-lines": ["2_4"], "pleural_effusion": ["7"]})
    parsed = parse_sheet(sheet).iloc[0]
    assert parsed["A-lines"] == [(2, 4)] and parsed["Pleural effusion"] == [(7, 7)]


def test_every_bad_cell_is_named_by_row_and_column():
    sheet = pd.DataFrame({"video_id": ["P1_V1", "P1_V2", np.nan, "P1_V1"], "B-line": ["24_32", "x", np.nan, "5"],
                          "Consolidation": [np.nan, "9_3", np.nan, np.nan], "quality": [np.nan, "bad", np.nan, np.nan]})
    with pytest.raises(SheetError) as err:
        parse_sheet(sheet, name="labels.csv")
    text = str(err.value)
    assert text.startswith("labels.csv: 5 problem(s)")
    assert "row 3 (video P1_V2), column 'B-line': 'x' is not an interval" in text
    assert "row 3 (video P1_V2), column 'Consolidation'" in text and "row 3, column 'quality'" in text
    assert "row 4, column 'video_id': empty video_id" in text
    assert "rows [2, 5]: video P1_V1 appears more than once" in text


def test_sheet_needs_ids_and_pattern_columns():
    with pytest.raises(SheetError, match="no video_id column"):
        parse_sheet(pd.DataFrame({"PatientID": ["1"], "B-line": ["1"]}))
    with pytest.raises(SheetError, match="no pattern column"):
        parse_sheet(pd.DataFrame({"video_id": ["P1_V1"], "Lung sliding": ["1"]}))


def _csv(tmp_path, rows: dict, name="seed_sheet.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_import_writes_a_snapshot_the_labels_stage_reads(tmp_path):
    sheet = _csv(tmp_path, {"video_id": ["P1_V1", "P2_V1", "P1_V2"], "B-line": ["24_32, 40_55", np.nan, np.nan],
                            "Consolidation": [np.nan, "17", np.nan], "quality": [np.nan, np.nan, "exclude: blurred"]})
    folder = tmp_path / "annotations"
    path, written = import_sheet(sheet, "Senior@Hospital.example", VIDEOS, folder, now=NOW)
    assert written and path.name.startswith("20241201T093000Z_sheet-") and path.suffix == ".json"
    tasks = json.loads(path.read_text())
    assert [t["data"]["video_id"] for t in tasks] == ["P1_V1", "P1_V2", "P2_V1"]
    assert tasks[2]["data"] == {"video": "/data/local-files/?d=videos/P2_V1.mp4", "video_id": "P2_V1",
                                "patient_id": "P2", "fps": 25.0}
    records, ranges = parse_export(tasks, path.name)
    assert set(records["annotator"]) == {"senior@hospital.example"}
    assert records.set_index("video_id")["quality"].to_dict() == {"P1_V1": "usable", "P1_V2": "exclude: blurred",
                                                                  "P2_V1": "usable"}
    assert ranges[["video_id", "pattern", "start", "end"]].to_numpy().tolist() == [
        ["P1_V1", "B-lines", 24, 32], ["P1_V1", "B-lines", 40, 55], ["P2_V1", "Consolidation", 17, 17]]
    assert snapshot_source(tasks).startswith("sheet:")
    assert "seed_sheet" not in path.read_text()  # the sheet's file name is not copied


def test_import_is_idempotent_and_never_overwrites(tmp_path):
    sheet = _csv(tmp_path, {"video_id": ["P1_V1"], "A-line": ["1_10"]})
    folder = tmp_path / "annotations"
    first, written = import_sheet(sheet, "r@x", VIDEOS, folder, now=NOW)
    again, written_again = import_sheet(sheet, "r@x", VIDEOS, folder, now=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert written and not written_again and again == first
    other, _ = import_sheet(sheet, "s@x", VIDEOS, folder, now=NOW)  # another reader, same second: a new name
    assert other != first or pytest.fail("must not overwrite")


def test_sheet_and_label_studio_snapshots_are_both_kept_by_newest(tmp_path):
    folder = tmp_path / "annotations"
    write_snapshot(folder, "20250101T000000Z.json", [task(1, "P1_V1", "P1", [annotation(1, "r1@x", {})])])
    sheet = _csv(tmp_path, {"video_id": ["P1_V1"], "A-line": ["1_10"]})
    import_sheet(sheet, "senior@x", VIDEOS, folder, now=NOW)  # older than the pull
    records, _, names = read_annotations(folder, "newest")
    assert len(names) == 2 and sorted(records["annotator"]) == ["r1@x", "senior@x"]


def test_import_checks_videos_and_frame_counts(tmp_path):
    sheet = _csv(tmp_path, {"video_id": ["P1_V2", "P9_V9"], "B-line": ["50_70", "1"]})
    with pytest.raises(SheetError) as err:
        import_sheet(sheet, "r@x", VIDEOS, tmp_path / "a", now=NOW)
    assert "ends after the last frame 62" in str(err.value) and "P9_V9 is not in the video index" in str(err.value)
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_xlsx_needs_openpyxl_or_says_to_use_csv(tmp_path):
    path = tmp_path / "s.xlsx"
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        path.write_bytes(b"PK")
        with pytest.raises(SheetError, match="save the sheet as CSV"):
            read_sheet(path)
        return
    pd.DataFrame({"video_id": ["P1_V1"], "B-line": ["24_32, 40_55"], "A-line": [17]}).to_excel(path, index=False)
    parsed = parse_sheet(read_sheet(path)).iloc[0]
    assert parsed["B-lines"] == [(24, 32), (40, 55)] and parsed["A-lines"] == [(17, 17)]
