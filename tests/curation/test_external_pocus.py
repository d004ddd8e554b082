"""`luskit pocus`: the POCUS videos as raw input of a standalone project (links, never copies), the dataset's
pattern columns as one annotator's whole-video labels, params overrides, and the pipeline up to `split`.

The unit tests build tiny fake datasets in tmp_path; the end-to-end test runs the real command on a subset
of ../shared/external/pocus (8 patient groups, 12 short videos) and is skipped when that folder is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from curation import external_pocus as ep
from labeling.annotations import read_annotations
from labeling.external_labels import import_whole_video_labels, whole_video_sheet
from luskit.pocus import code_roots, merge_params
from luskit.schema import PATTERNS
from tests.conftest import REPO, run_in

COLUMNS = ["file", "sha256", "patient_group", "a_lines", "b_lines", "consolidation", "effusion", "a_lines_text",
           "b_lines_text", "consolidation_text", "effusion_text", "label_text_conflicts", "licence"]


def fake_dataset(root: Path, rows: list[tuple]) -> Path:
    """A POCUS-shaped folder: manifest.csv with `rows` (file, group, a, b, c, e, conflicts) and tiny files."""
    records = []
    for file, group, a, b, c, e, conflicts in rows:
        path = root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"video {file}".encode())
        records.append({"file": file, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "patient_group": group,
                        "a_lines": a, "b_lines": b, "consolidation": c, "effusion": e, "a_lines_text": "unknown",
                        "b_lines_text": "1", "consolidation_text": "unknown", "effusion_text": "0",
                        "label_text_conflicts": conflicts, "licence": "CC BY 4.0"})
    pd.DataFrame(records, columns=COLUMNS).to_csv(root / "manifest.csv", index=False)
    return root


@pytest.fixture
def dataset(tmp_path) -> Path:
    return fake_dataset(tmp_path / "pocus", [
        ("videos/convex/a.gif", "pocus_src1_pat1", "1", "0", "0", "0", ""),
        ("videos/linear/b.mp4", "pocus_src1_pat1", "0", "1", "1", "unknown", "b_lines: column=0 but text mentions it"),
        ("videos/convex/c.avi", "pocus_src2_pat9", "0", "0", "1", "1", "consolidation: x | effusion: y"),
        ("videos/convex/d.mov", "", "0", "0", "0", "0", ""),
        ("videos/convex/sub/a.gif", "pocus_src1_pat1", "0", "0", "0", "0", ""),
    ])


def test_manifest_labels_and_layout_plan(dataset):
    (dataset / "videos/convex/c.avi").unlink()  # listed but absent
    manifest = ep.read_manifest(dataset)
    assert [ep.parse_label(v) for v in ("1", "0", "unknown", "", None, "yes")] == [1, 0, None, None, None, None]
    assert manifest["Pleural effusion"].isna().sum() == 1 and str(manifest["A-lines"].dtype) == "Int8"
    assert manifest["text_B-lines"].tolist() == [1] * 5
    plan = ep.plan_layout(manifest, dataset).set_index("file")
    assert plan.loc["videos/linear/b.mp4", "raw_relpath"] == f"pocus_src1_pat1/{ep.DEVELOPMENT_DATE}/b.mp4"
    assert plan.loc["videos/convex/c.avi", "status"] == "missing_file"
    assert plan.loc["videos/convex/d.mov", "status"] == "bad_patient_group"
    # Two clips of one group with the same file name: neither is linked (ingest would see one folder entry).
    assert plan.loc[["videos/convex/a.gif", "videos/convex/sub/a.gif"], "status"].tolist() == ["name_clash"] * 2
    assert (plan["status"] == "link").sum() == 1


def test_links_are_made_once_and_never_replace_an_entry(dataset, tmp_path):
    manifest = ep.read_manifest(dataset)
    plan = ep.plan_layout(manifest[~manifest["file"].str.contains("sub/")], dataset)  # no name clash
    raw = tmp_path / "work" / "data" / "raw"
    assert ep.link_raw(plan, raw) == {"created": 3, "kept": 0}
    entries = [p for p in raw.rglob("*") if not p.is_dir()]
    assert len(entries) == 3 and all(p.is_symlink() for p in entries)  # links, never copies
    assert all(Path(os.readlink(p)).is_absolute() and p.resolve().is_relative_to(dataset.resolve()) for p in entries)
    assert ep.link_raw(plan, raw) == {"created": 0, "kept": 3}
    assert ep.stray_raw_entries(plan, raw) == []
    target = raw / "pocus_src2_pat9" / ep.DEVELOPMENT_DATE / "c.avi"
    target.unlink()
    target.write_bytes(b"someone else's file")
    with pytest.raises(ep.PocusError, match="never overwritten"):
        ep.link_raw(plan, raw)
    assert target.read_bytes() == b"someone else's file"


def test_whole_video_sheet_leaves_unknown_videos_unlabelled():
    labels = pd.DataFrame({"video_id": ["V2", "V1", "V3"], "n_frames": [40, 21, 9],
                           "A-lines": [1, 0, 0], "B-lines": [0, 1, 1], "Consolidation": [0, 0, 1],
                           "Pleural effusion": [0, None, 1]}).astype({p: "Int8" for p in PATTERNS})
    sheet, left_out = whole_video_sheet(labels)
    assert sheet["video_id"].tolist() == ["V2", "V3"]
    assert sheet.set_index("video_id").loc["V3"].tolist() == ["", "1_9", "1_9", "1_9"]
    assert sheet.set_index("video_id").loc["V2"].tolist() == ["1_40", "", "", ""]
    assert left_out.to_dict("records") == [{"video_id": "V1", "unknown": "Pleural effusion"}]


def test_import_writes_one_snapshot_of_whole_video_ranges_and_is_idempotent(tmp_path):
    labels = pd.DataFrame({"video_id": ["Pa_V1", "Pb_V2"], "n_frames": [12, 30], "A-lines": [1, 0],
                           "B-lines": [0, 0], "Consolidation": [1, 1], "Pleural effusion": [0, 1]}
                          ).astype({p: "Int8" for p in PATTERNS})
    videos = pd.DataFrame({"video_id": ["Pa_V1", "Pb_V2"], "patient_id": ["Pa", "Pb"], "fps": [10.0, 25.0],
                           "n_frames": [12, 30]})
    args = (videos, tmp_path / "data/pocus/labels-sheet.csv", "pocus@x.invalid", tmp_path / "data/annotations")
    first = import_whole_video_labels(labels, *args)
    assert first["sheet_written"] and first["snapshot_written"] and first["videos_labelled"] == 2
    records, ranges, _ = read_annotations(tmp_path / "data/annotations")
    assert set(records["annotator"]) == {"pocus@x.invalid"}
    got = {(r.video_id, r.pattern, r.start, r.end) for r in ranges.itertuples()}
    assert got == {("Pa_V1", "A-lines", 1, 12), ("Pa_V1", "Consolidation", 1, 12),
                   ("Pb_V2", "Consolidation", 1, 30), ("Pb_V2", "Pleural effusion", 1, 30)}
    again = import_whole_video_labels(labels, *args)
    assert not again["sheet_written"] and not again["snapshot_written"] and again["snapshot"] == first["snapshot"]
    assert len(list((tmp_path / "data/annotations").glob("*.json"))) == 1
    changed = labels.assign(**{"A-lines": pd.array([0, 0], dtype="Int8")})
    with pytest.raises(FileExistsError, match="never overwrites"):
        import_whole_video_labels(changed, *args)


def test_catalogue_joins_on_sha_and_reads_conflicts(dataset):
    manifest = ep.read_manifest(dataset)
    plan = ep.plan_layout(manifest, dataset)
    sha = manifest.set_index("file")["sha256"]
    index = pd.DataFrame({"video_id": ["P1_Va"], "patient_id": ["P1"], "n_frames": [30], "fps": [10.0],
                          "source_sha256": [sha["videos/convex/c.avi"]]})
    quarantine = pd.DataFrame({"source_sha256": [sha["videos/linear/b.mp4"]], "reason": ["decode_error"]})
    cat = ep.catalogue(manifest, plan, index, quarantine).set_index("file")
    assert cat.loc["videos/convex/c.avi", ["status", "video_id"]].tolist() == ["ingested", "P1_Va"]
    assert cat.loc["videos/linear/b.mp4", "status"] == "quarantined: decode_error"
    assert cat.loc["videos/convex/d.mov", "status"] == "not_linked: bad_patient_group"
    assert cat.loc["videos/convex/c.avi", ["conflict_Consolidation", "conflict_Pleural effusion",
                                           "conflict_A-lines"]].tolist() == [True, True, False]
    assert ep.label_coverage(cat)["Consolidation"] == {"positive": 1, "negative": 0, "unknown": 0, "text_conflicts": 1}


def test_params_overrides_merge_strictly():
    base = {"ingest": {"temporal_cutoff": "2024-01-01", "workers": 2}, "train": {"profiles": {"demo": {"lr": 1}}}}
    merged, notes = merge_params(base, {"ingest": {"temporal_cutoff": "2100-01-01"},
                                        "train": {"profiles": {"pocus": {"lr": 3}}}, "evaluate": {"bootstrap": 9}})
    assert merged["ingest"] == {"temporal_cutoff": "2100-01-01", "workers": 2}
    assert merged["train"]["profiles"] == {"demo": {"lr": 1}, "pocus": {"lr": 3}}
    assert base["ingest"]["temporal_cutoff"] == "2024-01-01"  # the base is not changed
    assert notes == ["params: section 'evaluate' of the overrides is skipped (not in params.yaml yet)"]
    with pytest.raises(ValueError, match="ingest.temporal_cutof"):
        merge_params(base, {"ingest": {"temporal_cutof": "2100-01-01"}})


def test_committed_overrides_fit_the_repository_params():
    import yaml

    from luskit.pocus import OVERRIDES

    base = yaml.safe_load((REPO / "params.yaml").read_text())
    merged, _ = merge_params(base, yaml.safe_load(OVERRIDES.read_text()))
    assert merged["ingest"]["temporal_cutoff"] > "2030"
    assert set(code_roots(yaml.safe_load((REPO / "dvc.yaml").read_text()))) >= {"curation", "labeling", "training"}
    assert code_roots({"stages": {"t": {"foreach": [1], "do": {"deps": ["bench/x.py", "data/raw", "/abs/y"]}}}}) \
        == ["bench"]


def test_committed_pocus_training_profile_loads_and_builds_every_model(tmp_path):
    """The merged params file is what `luskit train` reads in the POCUS workdir: its profile must validate and
    every model of the training matrix must build from it (a profile that only fails after ingest would cost
    the user the whole curation run)."""
    import torch
    import yaml

    from luskit.pocus import OVERRIDES
    from training.models import build_model
    from training.train.params import model_config
    from training.train.stage import load_params

    base = yaml.safe_load((REPO / "params.yaml").read_text())
    merged, _ = merge_params(base, yaml.safe_load(OVERRIDES.read_text()))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(merged))
    params, name, length = load_params(tmp_path / "params.yaml", None)
    assert name == "pocus" and length == 30
    profile = params.profiles[name]
    for model in params.models:
        net = build_model(model, model_config(params, profile, model, length)).eval()
        with torch.no_grad():
            out = net(torch.rand(1, length, 1, profile.frame_size, profile.frame_size),
                      torch.ones(1, length, dtype=torch.bool))
        assert tuple(out["logits"].shape) == (1, len(PATTERNS)), model


# ---- the real command on a subset of the real dataset -----------------------------------------------------------

SUBSET = ("pocus_src2_pat40", "pocus_src16_pat40", "pocus_src2_pat36", "pocus_src16_pat8", "pocus_src16_pat9",
          "pocus_src2_pat39", "pocus_src2_pat37", "pocus_src16_pat6")  # 12 short videos, all formats but MPEG-2


def subset_source(external: Path, dest: Path, groups: tuple[str, ...]) -> Path:
    """A POCUS folder holding the manifest rows of `groups` and links to their real videos."""
    manifest = pd.read_csv(external / "pocus" / "manifest.csv", dtype=str, keep_default_na=False)
    rows = manifest[manifest["patient_group"].isin(groups)]
    dest.mkdir(parents=True)
    rows.to_csv(dest / "manifest.csv", index=False)
    for file in rows["file"]:
        (dest / file).parent.mkdir(parents=True, exist_ok=True)
        (dest / file).symlink_to(external / "pocus" / file)
    return dest


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copies_of(sources: dict[int, set[str]], root: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    """Regular files under root (links not followed) with the size and sha256 of a source file."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if size in sources and sha256(path) in sources[size]:
                found.append(path)
    return found


@pytest.mark.external
@pytest.mark.slow
def test_pocus_subset_runs_to_split_from_links_and_reruns_as_a_no_op(external_dir, tmp_path):
    source = subset_source(external_dir, tmp_path / "pocus", SUBSET)
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "luskit.cli", "pocus", "--source", str(source), "--workdir", str(work),
           "--until", "split"]
    first = run_in(cmd, REPO, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    summary = json.loads((work / "pocus-summary.json").read_text())
    counts = summary["pipeline"]

    # Layout: every video is a link into the dataset; the config is the repository's with the POCUS overrides.
    raw = [p for p in (work / "data" / "raw").rglob("*") if not p.is_dir()]
    assert len(raw) == 12 and all(p.is_symlink() for p in raw)
    assert {p.relative_to(work / "data" / "raw").parts[0] for p in raw} == set(SUBSET)
    assert {p.parent.name for p in raw} == {ep.DEVELOPMENT_DATE}
    assert (work / "dvc.yaml").read_text() == (REPO / "dvc.yaml").read_text()
    assert "2100-01-01" in (work / "params.yaml").read_text() and (work / ".dvc").is_dir()

    # Labels: one annotator, whole-video ranges; the one video with an unknown pattern is left unlabelled.
    records, ranges, snapshots = read_annotations(work / "data" / "annotations")
    assert len(snapshots) == 1 and records["annotator"].nunique() == 1 and len(records) == 11
    index = pd.read_parquet(work / "artifacts" / "index" / "videos.parquet").set_index("video_id")
    assert (ranges["start"] == 1).all() and (ranges["end"] == ranges["video_id"].map(index["n_frames"])).all()
    unknown = summary["labels_import"]["left_out_unknown"]
    assert [r["file"] for r in unknown] == ["videos/convex/Reg_liftl_case3_clip2.mp4"]
    catalogue = pd.read_csv(work / "pocus-catalogue.csv")
    manifest = pd.read_csv(source / "manifest.csv", dtype=str)
    positives = catalogue.set_index("file").loc[manifest.loc[manifest["b_lines"] == "1", "file"], "video_id"]
    assert set(ranges.loc[ranges["pattern"] == "B-lines", "video_id"]) == set(positives)

    # Pipeline up to split: all ingested, all development, every clip in one role, one role per patient.
    assert counts["ingest"] == {"videos": 12, "patients": 8, "periods": {"development": 12}, "quarantined": {}}
    assert counts["deidentify"]["failed"] == 0
    splits = pd.read_parquet(work / "artifacts" / "splits" / "splits.parquet")
    clips = pd.read_parquet(work / "artifacts" / "clips" / "manifest.parquet")
    assert set(splits["clip_id"]) == set(clips["clip_id"]) and len(splits) == counts["clips"]["clips"]
    assert splits.groupby("patient_id")["role"].nunique().max() == 1 and "temporal" not in set(splits["role"])
    assert (clips["n_real_frames"] == 30).sum() >= len(clips) - 12  # shift tail: at most one short clip per video
    report = json.loads((work / "artifacts" / "splits" / "report.json").read_text())
    assert report["guards"]["errors"] == 0 and report["guards"]["warnings"] >= 1  # one positive A-lines patient
    assert not (work / "artifacts" / "models").exists()

    # Nothing from the dataset was copied: not into the repository, not into the workdir (DVC caches outputs only).
    sources: dict[int, set[str]] = {}
    for file in manifest["file"]:
        real = external_dir / "pocus" / file
        sources.setdefault(real.stat().st_size, set()).add(sha256(real))
    assert copies_of(sources, REPO, skip=(".git", ".venv", ".ls-venv")) == []
    assert copies_of(sources, work) == []

    # Re-run: links kept, no new snapshot, no stage reruns, data/ untouched.
    data_before = {p: p.read_bytes() for p in (work / "data").rglob("*") if p.is_file() and not p.is_symlink()}
    second = run_in(cmd, REPO, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "links 0 created, 12 kept" in second.stdout and "snapshot already there" in second.stdout
    assert "Running stage" not in second.stdout + second.stderr
    assert {p: p.read_bytes() for p in data_before} == data_before
    assert len(list((work / "data" / "annotations").glob("*.json"))) == 1

    # A data/ file that differs from what the run would write stops it with the file named; nothing is overwritten.
    sheet = work / "data" / "pocus" / "labels-sheet.csv"
    sheet.write_text("video_id,A-lines\nedited,\n")
    third = run_in(cmd, REPO, timeout=600)
    assert third.returncode != 0 and "labels-sheet.csv exists with different content" in third.stderr
    assert sheet.read_text() == "video_id,A-lines\nedited,\n"
