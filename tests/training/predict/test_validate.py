"""External validation on toy predictions whose truth is known: labels as sheets (frame ranges, yes/no) and as a
Label Studio snapshot; metrics from training/evaluation's scoring; nothing refitted."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from labeling import sheets
from labeling.labels_stage import LabelsParams
from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.evaluation.scoring import Bootstrap
from training.predict.labels import LabelError, load_labels
from training.predict.validate import validate

N_PATIENTS, WINDOWS = 10, ((0, 10), (10, 20), (20, 30))  # one 30-frame video per patient, three clips
BOOT = Bootstrap(n_boot=200, seed=1, ci=0.95, min_patients=5)


def toy_out(root: Path) -> Path:
    """OUT with clips.parquet (ensemble rows) + manifest + deid videos: A-lines scored 0.9 on the clip the truth
    marks (frames 11-20 of even patients' videos) and 0.1 elsewhere; B-lines the reverse of its truth."""
    rows, manifest = [], []
    for p in range(N_PATIENTS):
        video = f"P{p:02d}_V0"
        for c, (start, end) in enumerate(WINDOWS):
            clip = f"{video}_c{c:03d}"
            marked = p % 2 == 0 and c == 1
            row = {"clip_id": clip, "video_id": video, "patient_id": f"P{p:02d}", "period": "development",
                   "role": "external", "set": "external", "fold": -1, "model": "luvnet", "n_real_frames": 10,
                   "n_models": 3, "start": start, "end": end, "start_frame_1based": start + 1, "end_frame_1based": end,
                   "cache_file": f"cache/{video}.npy"}
            for s in PATTERN_SLUGS:
                row[f"label_{s}"], row[f"thr_{s}"], row[f"attention_{s}"] = pd.NA, 0.5, None
            row["prob_a_lines"] = 0.9 if marked else 0.1
            row["prob_b_lines"] = 0.1 if marked else 0.9
            row["prob_consolidation"] = row["prob_pleural_effusion"] = 0.3 + 0.02 * p
            rows.append(row)
            manifest.append({k: row[k] for k in ("clip_id", "video_id", "patient_id", "period", "start", "end",
                                                 "start_frame_1based", "end_frame_1based", "n_real_frames",
                                                 "cache_file")} | {"clip_index": c, "fps": 30.0})
    out = root / "out"
    (out / "predictions").mkdir(parents=True)
    (out / "clips").mkdir()
    (out / "deid").mkdir()
    clips = pd.DataFrame(rows)
    for s in PATTERN_SLUGS:
        clips[f"label_{s}"] = clips[f"label_{s}"].astype("Int8")
    clips.to_parquet(out / "predictions" / "clips.parquet")
    pd.DataFrame(manifest).to_parquet(out / "clips" / "manifest.parquet")
    videos = pd.DataFrame({"video_id": [f"P{p:02d}_V0" for p in range(N_PATIENTS)],
                           "patient_id": [f"P{p:02d}" for p in range(N_PATIENTS)], "fps": 30.0, "n_frames": 30})
    videos.to_parquet(out / "deid" / "videos.parquet")
    return out


def frames_sheet(path: Path) -> Path:
    """The truth as the seed's sheet: A-lines and B-lines on frames 11-20 of even patients' videos."""
    ids = [f"P{p:02d}_V0" for p in range(N_PATIENTS)]
    cell = ["11_20" if p % 2 == 0 else "" for p in range(N_PATIENTS)]
    pd.DataFrame({"video_id": ids, "A-lines": cell, "B-lines": cell, "Consolidation": "", "Pleural effusion": ""}
                 ).to_csv(path, index=False)
    return path


def run(out: Path, labels_path: Path, level: str = "auto", recalibrate: bool = False) -> dict:
    manifest = pd.read_parquet(out / "clips" / "manifest.parquet")
    videos = pd.read_parquet(out / "deid" / "videos.parquet")
    labels = load_labels(labels_path, level, manifest, videos, LabelsParams())
    return validate(out, labels, BOOT, "max", 10, "luvnet@test", recalibrate)


def test_frame_ranges_are_scored_per_clip_and_per_video(tmp_path):
    out = toy_out(tmp_path)
    body = run(out, frames_sheet(tmp_path / "truth.csv"))
    clip, video = body["results"]["clip"], body["results"]["video"]
    assert body["level"] == "frames"
    assert clip["patterns"]["a_lines"]["n"] == 30 and clip["patterns"]["a_lines"]["n_pos"] == 5
    assert clip["patterns"]["a_lines"]["auroc"] == 1.0 and clip["patterns"]["b_lines"]["auroc"] == 0.0
    assert clip["patterns"]["a_lines"]["sensitivity"] == 1.0 and clip["patterns"]["a_lines"]["specificity"] == 1.0
    assert clip["patterns"]["a_lines"]["auroc_ci"] is not None  # 10 patients >= min_patients
    # A video shows a pattern when any of its clips does: 5 positive videos of 10.
    assert video["patterns"]["a_lines"]["n"] == 10 and video["patterns"]["a_lines"]["n_pos"] == 5
    assert video["patterns"]["a_lines"]["auroc"] == 1.0
    assert clip["patterns"]["consolidation"]["n_pos"] == 0  # absent everywhere: AUROC undefined, said so
    assert clip["patterns"]["consolidation"]["auroc"] is None
    report = (out / "validation" / "report.md").read_text()
    assert "Clip level" in report and "Video level" in report and "nothing refitted" in report
    reliability = pd.read_csv(out / "validation" / "reliability.csv")
    assert set(reliability["level"]) == {"clip", "video"}


def test_video_level_yes_no_is_scored_at_video_level_only(tmp_path):
    out = toy_out(tmp_path)
    ids = [f"P{p:02d}_V0" for p in range(N_PATIENTS)]
    yes = ["yes" if p % 2 == 0 else "no" for p in range(N_PATIENTS)]
    yes[1] = ""  # unknown: left out of that pattern only
    pd.DataFrame({"video_id": ids, "A-lines": yes, "B-lines": "no", "Consolidation": "no",
                  "Pleural effusion": "no"}).to_csv(tmp_path / "yn.csv", index=False)
    body = run(out, tmp_path / "yn.csv")
    assert body["level"] == "video" and body["results"].keys() == {"video"}
    a = body["results"]["video"]["patterns"]["a_lines"]
    assert (a["n"], a["n_pos"], a["auroc"]) == (9, 5, 1.0)
    assert "not scored" in (out / "validation" / "report.md").read_text()


def test_a_label_studio_snapshot_gives_the_same_numbers_as_the_sheet(tmp_path):
    out = toy_out(tmp_path)
    sheet = run(out, frames_sheet(tmp_path / "truth.csv"))["results"]
    videos = pd.read_parquet(out / "deid" / "videos.parquet")
    parsed = sheets.parse_sheet(sheets.read_sheet(tmp_path / "truth.csv"))
    tasks = sheets.build_export(parsed, videos, "reader@hospital.invalid", "abc", "2026-01-01T00:00:00Z")
    (tmp_path / "snap.json").write_text(json.dumps(tasks))
    snapshot = run(out, tmp_path / "snap.json")["results"]
    for level in ("clip", "video"):
        for s in PATTERN_SLUGS:
            assert snapshot[level]["patterns"][s]["auroc"] == sheet[level]["patterns"][s]["auroc"]
            assert snapshot[level]["patterns"][s]["n_pos"] == sheet[level]["patterns"][s]["n_pos"]


def test_recalibration_is_reported_apart_and_changes_no_headline(tmp_path):
    out = toy_out(tmp_path)
    plain = run(out, frames_sheet(tmp_path / "truth.csv"))
    both = run(out, tmp_path / "truth.csv", recalibrate=True)
    assert plain["recalibrated"] is None and both["recalibrated"] is not None
    assert both["results"] == plain["results"]
    ece_before = plain["results"]["clip"]["patterns"]["b_lines"]["ece"]
    ece_after = both["recalibrated"]["clip"]["patterns"]["b_lines"]["ece"]
    assert ece_after < ece_before  # B-lines scored the wrong way round: a local recalibration helps a lot
    assert "Recalibrated" in (out / "validation" / "report.md").read_text()


def test_labels_of_videos_that_were_not_predicted_are_refused(tmp_path):
    out = toy_out(tmp_path)
    pd.DataFrame({"video_id": ["Pother_V9"], "A-lines": ["yes"], "B-lines": ["no"], "Consolidation": ["no"],
                  "Pleural effusion": ["no"]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(LabelError, match="not predicted"):
        run(out, tmp_path / "other.csv")
    with pytest.raises(LabelError, match="yes/no"):
        pd.DataFrame({"video_id": ["P00_V0"], "A-lines": ["maybe"], "B-lines": ["no"], "Consolidation": ["no"],
                      "Pleural effusion": ["no"]}).to_csv(tmp_path / "bad.csv", index=False)
        run(out, tmp_path / "bad.csv", level="video")


def test_one_command_from_new_videos_to_a_validation_report(trained, pocus_input, external_dir, tmp_path):
    """`luskit predict ... --labels`: real POCUS videos in, predictions and the external validation out. The
    site's sheet names its own files (POCUS's per-video yes/no labels); predict maps them to the pseudonymous
    ids by their hash, and no file name reaches the outputs."""
    from typer.testing import CliRunner

    from luskit.cli import app
    from tests.training.predict.conftest import POCUS, pocus_rows

    rows = pocus_rows(external_dir)
    truth = {"A-lines": "a_lines", "B-lines": "b_lines", "Consolidation": "consolidation",
             "Pleural effusion": "effusion"}
    labels = [{"file": f"{patient}/20200101/{name}",
               **{p: {"1": "yes", "0": "no"}.get(rows[name][c], "") for p, c in truth.items()}}
              for patient, name in POCUS]
    pd.DataFrame(labels).to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", "--models", str(trained / "artifacts" / "models" / "luvnet"),
                                      "--input", str(pocus_input), "--params", str(trained / "params.yaml"),
                                      "--demo-key", "--quiet", "--out", str(out), "--labels",
                                      str(tmp_path / "labels.csv"), "--recalibrate"])
    assert result.exit_code == 0, result.output
    body = json.loads((out / "validation" / "metrics.json").read_text())
    assert body["level"] == "video" and set(body["results"]) == {"video"}
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        positives = sum(r[pattern] == "yes" for r in labels)
        assert body["results"]["video"]["patterns"][slug]["n_pos"] == positives
    assert body["recalibrated"] is not None
    used = pd.read_parquet(out / "validation" / "labels.parquet")
    assert set(used["video_id"]) <= set(pd.read_parquet(out / "deid" / "videos.parquet")["video_id"])
    for path in (out / "validation").iterdir():
        assert not any(Path(name).stem in path.read_bytes().decode("latin-1") for _, name in POCUS)
    # a row whose file predict never saw: named by its sheet row only
    pd.DataFrame([{"file": "pat7/20200101/missing-DOE.mp4", "A-lines": "yes"}]).to_csv(tmp_path / "bad.csv",
                                                                                      index=False)
    bad = CliRunner().invoke(app, ["validate", "--out", str(out), "--labels", str(tmp_path / "bad.csv"),
                                   "--input", str(pocus_input), "--params", str(trained / "params.yaml")])
    assert bad.exit_code == 2 and "row(s) [2]" in bad.output and "DOE" not in bad.output
