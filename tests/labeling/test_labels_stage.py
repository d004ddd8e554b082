"""The labels stage end to end: a tiny hand-made study checked number by number, and the simulated readers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curation.clips import ClipParams, build_manifest
from labeling import labels_stage, reviews
from luskit import paths
from luskit.config import ConfigError, load_section
from luskit.schema import PATTERNS
from tests.labeling.factory import adjudication, annotation, clip_task, manifest, task, write_snapshot

REPO = Path(__file__).resolve().parents[2]
R1, R2, BOSS = "r1@x.invalid", "r2@x.invalid", "boss@x.invalid"
LABELS = {"snapshots": "newest", "min_overlap_frames": 1, "exclude_rule": "any", "consensus": "adjudicated",
          "adjudicated_base": "majority", "majority_ties": "positive", "bootstrap": 50, "ci": 0.95, "seed": 1,
          "levels": ["clip", "frame"]}


def _project(root: Path, tasks: list[dict], clips: pd.DataFrame, truth: pd.DataFrame | None = None,
             gold_videos: list[str] | None = None, **labels) -> Path:
    write_snapshot(root / paths.ANNOTATIONS, "20241130T120000Z.json", tasks)
    (root / paths.CLIPS).mkdir(parents=True)
    clips.to_parquet(root / paths.CLIPS / "manifest.parquet", index=False)
    if truth is not None:
        (root / paths.REFERENCE).mkdir(parents=True)
        truth.to_parquet(root / paths.TRUTH, index=False)
        if gold_videos is not None:
            pd.DataFrame({"video_id": gold_videos}).to_parquet(root / paths.TRUTH_VIDEOS, index=False)
    (root / "params.yaml").write_text(yaml.safe_dump({"labels": {**LABELS, **labels}}))
    return root


def _run(root: Path, monkeypatch) -> tuple[dict, dict[str, pd.DataFrame]]:
    monkeypatch.chdir(root)
    assert labels_stage.main(Path("params.yaml")) == 0
    out = root / paths.LABELS
    metrics = json.loads((out / labels_stage.METRICS).read_text())
    return metrics, {name.split(".")[0]: pd.read_parquet(out / name) for name in labels_stage.OUTPUTS}


# --- the tiny hand-made study ------------------------------------------------------------------------
# Clips of 10 frames, overlap 2: A (20 frames) -> A0 [1-10] A1 [9-18] A2 [17-20]; B (12) -> B0 [1-10] B1 [9-12];
# C (10) -> C0 [1-10] C1 [9-10]; D (10) is excluded (reader 2: dark). Frames below are 1-based inclusive.
#   B-lines:       r1 A 3-12 -> A0 A1;       r2 A 15-20 -> A1 A2          (frames: disjoint)
#   Consolidation: r1 and r2 B 1-12 -> B0 B1
#   A-lines:       r1 B 5 -> B0;             r2 nothing
#   Effusion:      r1 nothing;               r2 C 9-10 -> C0 C1
# Clip-level by hand (7 clips, 2 raters):
#   B-lines 2x2 = [[1, 1], [1, 4]]: p_o = 5/7, p_e = (2/7)^2 + (5/7)^2 = 29/49, kappa = (6/49)/(20/49) = 0.3;
#     coincidences o00 = 8, o01 = o10 = 2, o11 = 2 (n0 = 10, n1 = 4): alpha = 1 - 13 * 4 / (2 * 10 * 4) = 0.35
#   Consolidation: perfect, kappa = alpha = 1.   A-lines: kappa = 0, alpha = 1 - 13 * 2 / (2 * 13) = 0.
#   Effusion: kappa 0, alpha = 1 - 13 * 4 / (2 * 12 * 2) = -1/12.
# Frame-level B-lines (42 frames): r1 10 frames, r2 6, none shared: p_o = 26/42, p_e = (10*6 + 32*36)/42^2,
#   kappa = -120/552.

def _tiny(root: Path, **labels) -> Path:
    tasks = [
        task(1, "P1_VA", "P1", [annotation(1, R1, {"B-lines": [(3, 12)]}), annotation(2, R2, {"B-lines": [(15, 20)]})]),
        task(2, "P1_VB", "P1", [annotation(3, R1, {"Consolidation": [(1, 12)], "A-lines": [(5, 5)]}),
                                annotation(4, R2, {"Consolidation": [(1, 12)]})]),
        task(3, "P2_VC", "P2", [annotation(5, R1, {}), annotation(6, R2, {"Pleural effusion": [(9, 10)]})]),
        task(4, "P2_VD", "P2", [annotation(7, R1, {"A-lines": [(1, 10)]}), annotation(8, R2, {}, "exclude: dark")]),
    ]
    clips = manifest([("P1_VA", "P1", 20), ("P1_VB", "P1", 12), ("P2_VC", "P2", 10), ("P2_VD", "P2", 10)])
    truth = pd.DataFrame([("P1_VA", "P1", "B-lines", 3, 20), ("P1_VB", "P1", "Consolidation", 1, 12),
                          ("P2_VC", "P2", "Pleural effusion", 9, 10)],
                         columns=["video_id", "patient_id", "pattern", "start", "end"])
    return _project(root, tasks, clips, truth, ["P1_VA", "P1_VB", "P2_VC", "P2_VD"], **labels)


def test_tiny_study_numbers_match_the_hand_computation(tmp_path, monkeypatch):
    metrics, t = _run(_tiny(tmp_path), monkeypatch)
    clip = metrics["agreement"]["clip"]
    pair = f"{R1}|{R2}"
    assert clip["B-lines"]["cohen_kappa"][pair]["value"] == pytest.approx(0.3, abs=1e-4)
    assert clip["B-lines"]["fleiss_kappa"]["value"] == pytest.approx(0.3, abs=1e-4)
    assert clip["B-lines"]["krippendorff_alpha"]["value"] == pytest.approx(0.35, abs=1e-4)
    assert clip["B-lines"]["percent_agreement"]["value"] == pytest.approx(5 / 7, abs=1e-4)
    assert clip["B-lines"]["percent_agreement"]["n_units"] == 7
    assert clip["B-lines"]["krippendorff_alpha"]["n_groups"] == 2
    assert clip["Consolidation"]["cohen_kappa"][pair]["value"] == 1.0
    assert clip["A-lines"]["cohen_kappa"][pair]["value"] == 0.0
    assert clip["A-lines"]["krippendorff_alpha"]["value"] == 0.0
    assert clip["Pleural effusion"]["krippendorff_alpha"]["value"] == pytest.approx(-1 / 12, abs=1e-4)
    frame = metrics["agreement"]["frame"]["B-lines"]
    assert frame["cohen_kappa"][pair]["value"] == pytest.approx(-120 / 552, abs=1e-4)
    assert frame["percent_agreement"]["n_units"] == 42
    inputs = metrics["inputs"]
    assert (inputs["videos_annotated"], inputs["videos_excluded"], inputs["videos_labelled"], inputs["clips"],
            inputs["frames"], inputs["patients"]) == (4, 1, 3, 7, 42, 2)
    assert inputs["excluded_reasons"] == {"exclude: dark (1 of 2)": 1}


def test_tiny_study_gold_scores(tmp_path, monkeypatch):
    metrics, _ = _run(_tiny(tmp_path), monkeypatch)
    gold = {r: metrics["annotators"][r]["vs_gold"]["clip"] for r in (R1, R2)}
    assert gold[R1]["B-lines"]["sensitivity"]["value"] == pytest.approx(2 / 3, abs=1e-4)
    assert gold[R2]["B-lines"]["sensitivity"]["value"] == pytest.approx(2 / 3, abs=1e-4)
    assert gold[R1]["B-lines"]["specificity"]["value"] == 1.0
    assert gold[R1]["A-lines"]["specificity"]["value"] == pytest.approx(6 / 7, abs=1e-4)
    assert gold[R1]["A-lines"]["sensitivity"]["value"] is None  # no gold positive: undefined, not 0
    assert gold[R1]["Pleural effusion"]["sensitivity"]["value"] == 0.0
    assert gold[R2]["Pleural effusion"]["sensitivity"]["value"] == 1.0
    methods = metrics["consensus"]["vs_gold"]
    assert methods["or"]["clip"]["B-lines"]["sensitivity"]["value"] == 1.0
    assert methods["and"]["clip"]["B-lines"]["sensitivity"]["value"] == 0.0  # frames intersect nowhere


def test_tiny_study_tables(tmp_path, monkeypatch):
    _, t = _run(_tiny(tmp_path), monkeypatch)
    labels = t["clip_labels"]
    assert labels.columns.tolist() == ["clip_id", "video_id", "patient_id", "period", "annotator", *PATTERNS]
    assert len(labels) == 14 and "P2_VD" not in set(labels["video_id"])
    b = labels.set_index(["clip_id", "annotator"])["B-lines"]
    assert [b[(c, R1)] for c in ("P1_VA_c000", "P1_VA_c001", "P1_VA_c002")] == [1, 1, 0]
    assert [b[(c, R2)] for c in ("P1_VA_c000", "P1_VA_c001", "P1_VA_c002")] == [0, 1, 1]
    q = t["quality"].set_index(["video_id", "annotator"])
    assert bool(q.loc[("P2_VD", R1), "excluded"])
    assert q.loc[("P2_VD", R1), "excluded_reason"] == "exclude: dark (1 of 2)"
    assert q.loc[("P2_VD", R2), "quality"] == "exclude: dark" and not q.loc[("P1_VA", R1), "excluded"]
    assert len(t["annotations"]) == 7  # D's ranges are kept in the long table; quality says it is excluded
    cons = t["consensus"].set_index(["clip_id", "pattern"])
    assert len(cons) == 7 * 4 and set(cons["method"]) == {"adjudicated"}
    assert cons.loc[("P1_VA_c002", "B-lines"), "label"] == 1  # majority, tie -> positive
    assert cons.loc[("P1_VA_c002", "B-lines"), "provenance"] == "majority; tie -> positive"
    assert cons.loc[("P1_VB_c000", "Consolidation"), "provenance"] == "majority"
    dis = t["disagreements"]
    assert sorted(zip(dis["clip_id"], dis["pattern"])) == [
        ("P1_VA_c000", "B-lines"), ("P1_VA_c002", "B-lines"), ("P1_VB_c000", "A-lines"),
        ("P2_VC_c000", "Pleural effusion"), ("P2_VC_c001", "Pleural effusion")]
    row = dis.set_index(["clip_id", "pattern"]).loc[("P1_VB_c000", "A-lines")]
    assert (row["positive_by"], row["negative_by"], row["gold"]) == (R1, R2, 0)
    assert row["reason"] == "annotators disagree; consensus differs from gold"


def test_reviewer_decisions_override_the_consensus(tmp_path, monkeypatch):
    root = _tiny(tmp_path)
    reviews.record_decision(BOSS, "P1_VB", "P1_VB_c000", "A-lines", "absent", db=root / reviews.DEFAULT_DB)
    metrics, t = _run(root, monkeypatch)
    cons = t["consensus"].set_index(["clip_id", "pattern"])
    assert cons.loc[("P1_VB_c000", "A-lines"), "label"] == 0
    assert cons.loc[("P1_VB_c000", "A-lines"), "provenance"] == f"review (absent: {BOSS})"
    row = t["disagreements"].set_index(["clip_id", "pattern"]).loc[("P1_VB_c000", "A-lines")]
    assert bool(row["reviewed"]) and row["reason"] == "annotators disagree"  # now it agrees with gold
    assert metrics["consensus"]["n_from_review"] == 1 and metrics["inputs"]["review_decisions"] == 1


def test_label_studio_adjudications_override_the_consensus_like_app_decisions(tmp_path, monkeypatch):
    root = _tiny(tmp_path)
    pull = [clip_task(1, "P1_VB_c000", "P1_VB", [adjudication(1, BOSS, ["Consolidation"])]),
            clip_task(2, "P2_VC_c000", "P2_VC", [adjudication(2, R1, [], quality="exclude: blurred")])]
    write_snapshot(root / paths.LS_ADJUDICATIONS, "20241201T120000Z-adjudication.json", pull)
    metrics, t = _run(root, monkeypatch)
    cons = t["consensus"].set_index(["clip_id", "pattern"])
    assert cons.loc[("P1_VB_c000", "A-lines"), "label"] == 0  # r1 alone saw A-lines; the reviewer ticked none
    assert cons.loc[("P1_VB_c000", "A-lines"), "provenance"] == f"review (absent: {BOSS})"
    assert cons.loc[("P1_VB_c000", "Consolidation"), "label"] == 1
    assert "reviewers undecided (cannot_tell: " in cons.loc[("P2_VC_c000", "Pleural effusion"), "provenance"]
    assert metrics["inputs"]["label_studio_adjudications"] == 8 and metrics["inputs"]["review_decisions"] == 0
    # An app decision of the same reviewer, made later, replaces the Label Studio one.
    reviews.record_decision(BOSS, "P1_VB", "P1_VB_c000", "A-lines", "present", db=root / reviews.DEFAULT_DB)
    _, t = _run(root, monkeypatch)
    assert t["consensus"].set_index(["clip_id", "pattern"]).loc[("P1_VB_c000", "A-lines"), "label"] == 1


def test_a_model_assisted_decision_never_reaches_a_test_label(tmp_path, monkeypatch):
    """End to end at the logic level: the review app's Clip page logic on a test clip, the decision store, the
    labels stage and the evaluation's test-label relabelling."""
    import numpy as np

    from labeling.app import clip_logic, decisions
    from training.evaluation import protected

    root = _tiny(tmp_path)
    db = root / reviews.DEFAULT_DB
    clip = "P1_VB_c000"  # readers: A-lines r1 yes / r2 no (tie -> present); Consolidation both yes
    prob_row = pd.Series({"clip_id": clip, **{f"{k}_{s}": 0.9 for k in ("prob", "thr") for s in ("a_lines",
                          "b_lines", "consolidation", "pleural_effusion")}})
    queue_rows = pd.DataFrame({"clip_id": [clip], "pattern": ["Consolidation"], "prob": [0.1], "threshold": [0.5],
                               "label_error_score": [0.9], "model_disagreement": [True],
                               "reasons": ["model says absent (p=0.10, threshold 0.50)"]})
    # The page of an internal-test clip is blind: no model row in the evidence, and it records model_shown False.
    blind = clip_logic.is_blind("internal_test")
    assert blind and clip_logic.is_blind("temporal") and not clip_logic.is_blind("fold2")
    shown = clip_logic.model_shown(blind, prob_row, queue_rows)
    table = clip_logic.evidence_table(clip, None, None, prob_row, queue_rows.assign(role="internal_test"),
                                      reviews.empty(), blind)
    assert not shown and not set(clip_logic.MODEL_ROWS) & set(table[""])
    assert clip_logic.model_shown(False, prob_row, None)  # the same clip as a fold clip would show the model
    decisions.save(db, BOSS, "P1_VB", clip, [("A-lines", "absent", "")], model_shown=shown)
    # A model-assisted decision on the same test clip (an older app, or a reviewer who looked the clip up as a
    # fold clip elsewhere): it moves the training label, never the test label.
    decisions.save(db, "helper@x.invalid", "P1_VB", clip, [("Consolidation", "absent", "")], model_shown=True)
    decisions.save(db, "helper2@x.invalid", "P1_VB", clip, [("Consolidation", "absent", "")], model_shown=True)
    # BOSS looks again with the model shown and changes their mind: their blind vote still counts for the test label
    decisions.save(db, BOSS, "P1_VB", clip, [("A-lines", "present", "")], model_shown=True)
    metrics, t = _run(root, monkeypatch)
    cons = t["consensus"].set_index(["clip_id", "pattern"])
    consolidation, a_lines = cons.loc[(clip, "Consolidation")], cons.loc[(clip, "A-lines")]
    assert consolidation["label"] == 0 and consolidation["blind_label"] == 1 and consolidation["reader_label"] == 1
    assert consolidation["n_assisted"] == 2
    assert a_lines["label"] == 1 and a_lines["blind_label"] == 0 and a_lines["reader_label"] == 1
    assert metrics["consensus"]["n_model_assisted"] == 2
    # Evaluation: the trained (assisted) label on the test row is replaced by the blind one.
    rows = pd.DataFrame({"clip_id": [clip, clip], "set": ["internal_test", "validation"], "patient_id": "P1",
                         **{f"label_{s}": pd.array([0, 0], dtype="Int8") for s in ("a_lines", "b_lines",
                                                                                      "consolidation", "pleural_effusion")}})
    views = protected.label_views(t["consensus"])
    after = protected.relabel(rows, views, "blind_label")
    assert after.loc[0, "label_consolidation"] == 1 and after.loc[0, "label_a_lines"] == 0
    assert after.loc[1, "label_consolidation"] == 0  # a fold (out-of-fold) row keeps the training label
    before = protected.relabel(rows, views, "reader_label")
    assert before.loc[0, "label_a_lines"] == 1 and before.loc[0, "label_consolidation"] == 1
    counts = protected.provenance_counts(rows.iloc[:1], views)
    assert counts["consolidation"] == {"n": 1, "from_readers": 1, "changed_by_blind_review": 0,
                                       "model_assisted_left_out": 1, "training_label_differs": 1}
    assert counts["a_lines"]["changed_by_blind_review"] == 1 and np.isfinite(counts["a_lines"]["n"])


def test_a_store_from_before_model_shown_counts_its_decisions_as_assisted(tmp_path):
    import sqlite3

    db = tmp_path / "decisions.sqlite"
    with sqlite3.connect(db) as conn:  # the schema as it was, with one decision in it
        conn.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, reviewer TEXT NOT NULL, timestamp "
                     "TEXT NOT NULL, video_id TEXT NOT NULL, clip_id TEXT NOT NULL, pattern TEXT NOT NULL, decision "
                     "TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', app_version TEXT NOT NULL DEFAULT '')")
        conn.execute("INSERT INTO decisions (reviewer, timestamp, video_id, clip_id, pattern, decision) VALUES "
                     "('a@x', '2024-01-01T00:00:00Z', 'V', 'V_c000', 'A-lines', 'absent')")
    assert reviews.read_decisions(db)["model_shown"].tolist() == [1]  # read-only: nothing written
    reviews.record_decision("b@x", "V", "V_c000", "A-lines", "present", db=db, model_shown=False)
    assert reviews.read_decisions(db)["model_shown"].tolist() == [1, 0]


def test_a_reader_who_excluded_a_kept_video_is_missing_there_not_all_absent(tmp_path, monkeypatch):
    # D: r1 marks A-lines on frames 1-10, r2 chose "exclude: dark". Under majority (1 of 2 is no majority) and all,
    # D is kept; r2 never read it, so r2 must be missing there: with ties broken "negative" an all-absent r2
    # would tie r1 and erase A-lines on D.
    for rule in ("majority", "all"):
        _, t = _run(_tiny(tmp_path / rule, exclude_rule=rule, majority_ties="negative"), monkeypatch)
        cons = t["consensus"].set_index(["clip_id", "pattern"])
        assert cons.loc[("P2_VD_c000", "A-lines"), "label"] == 1
        assert cons.loc[("P2_VD_c000", "B-lines"), "n_annotators"] == 1
        readers = t["clip_labels"][t["clip_labels"]["video_id"] == "P2_VD"]["annotator"]
        assert set(readers) == {R1}  # r2 has no rating row on D (NaN), not a row of zeros
        assert not t["quality"].set_index(["video_id", "annotator"]).loc[("P2_VD", R2), "excluded"]


def test_other_consensus_methods_and_missing_ties(tmp_path, monkeypatch):
    _, t = _run(_tiny(tmp_path, consensus="and"), monkeypatch)
    cons = t["consensus"].set_index(["clip_id", "pattern"])
    assert set(cons["method"]) == {"and"} and cons.loc[("P1_VA_c001", "B-lines"), "label"] == 0
    _, t = _run(_tiny(tmp_path / "m", consensus="majority", majority_ties="missing"), monkeypatch)
    cons = t["consensus"].set_index(["clip_id", "pattern"])
    assert pd.isna(cons.loc[("P1_VA_c002", "B-lines"), "label"])
    assert "no consensus" in t["disagreements"].set_index(["clip_id", "pattern"]).loc[("P1_VA_c002", "B-lines"),
                                                                                          "reason"]


def test_bad_inputs_exit_2_with_a_message(tmp_path, monkeypatch, capsys):
    root = _tiny(tmp_path)
    (root / paths.CLIPS / "manifest.parquet").unlink()
    monkeypatch.chdir(root)
    assert labels_stage.main(Path("params.yaml")) == 2
    assert "run the clips stage first" in capsys.readouterr().err
    (root / "params.yaml").write_text(yaml.safe_dump({"labels": {**LABELS, "consensus": "vote"}}))
    assert labels_stage.main(Path("params.yaml")) == 2
    assert "labels.consensus" in capsys.readouterr().err


def test_params_section_of_the_repository_loads(tmp_path):
    params = load_section(REPO / "params.yaml", "labels", labels_stage.LabelsParams)
    assert params.min_overlap_frames == 1 and params.bootstrap >= 200
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump({"labels": {"levels": ["frame"]}}))
    with pytest.raises(ConfigError, match="levels"):
        load_section(bad, "labels", labels_stage.LabelsParams)


# --- the simulated readers ---------------------------------------------------------------------------

def _simulated_study(root: Path, n_dev: int = 30):
    """The synth's own planner and simulated readers, without rendering any video (ids are made up here)."""
    from curation.synth.annotators import TaskTruth, build_export
    from curation.synth.params import SynthParams
    from curation.synth.study import plan_study

    synth = dataclasses.replace(load_section(REPO / "params.yaml", "synth", SynthParams), n_patients_development=n_dev)
    plan = plan_study(synth)
    truths = [TaskTruth(f"P{i:03d}_V{v.index:02d}", f"P{i:03d}", v.fps, v.n_frames, v.intervals, v.quality, p.period)
              for i, p in enumerate(plan.patients) for v in p.videos]
    export = build_export(truths, synth.readers, synth.senior, synth.seed + 1, synth.export_time)
    videos = pd.DataFrame([{"video_id": t.video_id, "patient_id": t.patient_id, "period": t.period,
                            "n_frames": t.n_frames, "fps": t.fps} for t in truths])
    truth = pd.DataFrame([(t.video_id, t.patient_id, p, s, e) for t in truths for p in PATTERNS
                          for s, e in t.intervals[p]], columns=["video_id", "patient_id", "pattern", "start", "end"])
    _project(root, export, build_manifest(videos, ClipParams()), truth, videos["video_id"].tolist(), bootstrap=200)
    return synth


def _seed_clip_gold(truth: pd.DataFrame, clips: pd.DataFrame) -> pd.DataFrame:
    """Gold clip labels by the seed's own rule (an independent implementation of the overlap test)."""
    out = clips[["clip_id", "video_id", "start_frame_1based", "end_frame_1based"]].copy()
    for pattern in PATTERNS:
        ivs = truth[truth["pattern"] == pattern].groupby("video_id")[["start", "end"]].apply(lambda g: g.to_numpy())
        out[pattern] = [int(any(a <= s <= b or a <= e <= b or (s <= a and e >= b) for a, b in ivs.get(v, [])))
                        for v, s, e in zip(out["video_id"], out["start_frame_1based"], out["end_frame_1based"])]
    return out.set_index("clip_id")


def test_simulated_readers_agree_highly_but_not_perfectly_and_miss_what_they_should(tmp_path, monkeypatch):
    synth = _simulated_study(tmp_path)
    metrics, t = _run(tmp_path, monkeypatch)
    for level in ("clip", "frame"):
        for pattern, stats in metrics["agreement"][level].items():
            alpha = stats["krippendorff_alpha"]
            assert 0.6 < alpha["value"] < 0.99, (level, pattern, alpha)
            assert alpha["ci_low"] < alpha["value"] < alpha["ci_high"] and alpha["n_groups"] == 30
    gold = _seed_clip_gold(pd.read_parquet(tmp_path / paths.TRUTH), pd.read_parquet(tmp_path / paths.CLIPS /
                                                                                    "manifest.parquet"))
    labels = t["clip_labels"]
    for reader in synth.readers:  # pooled over patterns, sensitivity ~ 1 - miss rate (jitter costs a little)
        mine = labels[labels["annotator"] == reader.email].set_index("clip_id")[list(PATTERNS)]
        ref = gold.loc[mine.index, list(PATTERNS)].to_numpy()
        sens = (mine.to_numpy()[ref == 1] == 1).mean()
        assert abs(sens - (1 - reader.miss_rate)) < 0.05, (reader.email, sens)
        per_pattern = metrics["annotators"][reader.email]["vs_gold"]["clip"]
        assert all(0.6 < per_pattern[p]["sensitivity"]["value"] <= 1 for p in PATTERNS)
    assert metrics["inputs"]["videos_excluded"] == synth.dark_videos


def test_snapshot_and_manifest_from_different_studies_are_refused(tmp_path, monkeypatch, capsys):
    tasks = [task(1, "P1_VX", "P1", [annotation(1, R1, {})])]
    _project(tmp_path, tasks, manifest([("P1_VA", "P1", 20)]))
    monkeypatch.chdir(tmp_path)
    assert labels_stage.main(Path("params.yaml")) == 2
    assert "none of the 1 annotated videos has clips" in capsys.readouterr().err


def test_manifest_patient_ids_win_and_mismatches_are_reported(tmp_path, monkeypatch, capsys):
    tasks = [task(1, "P1_VA", "PX", [annotation(1, R1, {"A-lines": [(1, 3)]}), annotation(2, R2, {})])]
    metrics, t = _run(_project(tmp_path, tasks, manifest([("P1_VA", "P1", 20)])), monkeypatch)
    assert metrics["inputs"]["patient_id_mismatches"] == 1 and "another patient" in capsys.readouterr().err
    assert set(t["annotations"]["patient_id"]) == set(t["quality"]["patient_id"]) == {"P1"}
    assert metrics["annotators"][R1]["vs_gold"] == {} and metrics["consensus"]["vs_gold"] == {}  # no reference


def test_truth_with_unknown_patterns_is_refused(tmp_path, monkeypatch, capsys):
    root = _tiny(tmp_path)
    pd.DataFrame([("P1_VA", "P1", "B-line", 1, 2)], columns=["video_id", "patient_id", "pattern", "start", "end"]
                 ).to_parquet(root / paths.TRUTH, index=False)
    monkeypatch.chdir(root)
    assert labels_stage.main(Path("params.yaml")) == 2
    assert "unknown pattern(s) ['B-line']" in capsys.readouterr().err
