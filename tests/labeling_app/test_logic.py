"""The pages' pure logic on small hand-made tables: queue filters and progress, clip evidence, attention,
model curves, agreement tables, cohort tables; and path safety for everything the browser can name."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from labeling import reviews
from labeling.app import agreement_tables, clip_logic, data_tables, model_metrics, queue_logic
from labeling.app.settings import checked_id, load_project
from luskit.schema import PATTERN_SLUGS, PATTERNS

V = "P1234567890_Vabcdef01"


def queue(rows) -> pd.DataFrame:
    """rows: (clip index, pattern, role, annotator, model, label-error flags)."""
    records = []
    for rank, (i, pattern, role, ann, mod, err) in enumerate(rows, start=1):
        records.append({"clip_id": f"{V}_c{i:03d}", "video_id": V, "patient_id": f"P{i % 2}", "period": "development",
                        "role": role, "pattern": pattern, "consensus": 1, "prob": 0.2, "threshold": 0.5,
                        "label_error_score": 0.8, "annotator_disagreement": ann, "model_disagreement": mod,
                        "likely_label_error": err, "reasons": "x", "priority": 1.0, "rank": rank,
                        "positive_by": "", "negative_by": ""})
    return pd.DataFrame(records)


def decisions(rows) -> pd.DataFrame:
    """rows: (reviewer, clip index, pattern, decision) in insertion order."""
    if not rows:
        return pd.DataFrame(columns=list(reviews.COLUMNS))
    return pd.DataFrame([{"id": k + 1, "reviewer": r, "timestamp": "t", "video_id": V, "clip_id": f"{V}_c{i:03d}",
                          "pattern": p, "decision": d, "note": "", "app_version": "", "model_shown": 1}
                         for k, (r, i, p, d) in enumerate(rows)])


Q = queue([(0, "B-lines", "fold1", True, False, False), (0, "A-lines", "fold1", False, True, False),
           (1, "B-lines", "temporal", False, False, True), (2, "Consolidation", "internal_test", True, True, False)])


def test_decisions_join_the_queue_per_reviewer():
    latest = reviews.latest_decisions(decisions([("me", 0, "B-lines", "present"), ("you", 0, "B-lines", "absent"),
                                                 ("you", 1, "B-lines", "cannot_tell"), ("me", 0, "B-lines", "absent")]))
    q = queue_logic.with_decisions(Q, latest, "me")
    assert q["my_decision"].tolist() == ["absent", "", "", ""]  # my latest, not my first
    assert q["n_reviewers"].tolist() == [2, 0, 1, 0]
    assert queue_logic.progress(q) == {"total": 4, "decided_by_me": 1, "decided_by_any": 2}
    assert queue_logic.filter_queue(q, decided="not decided by me")["rank"].tolist() == [2, 3, 4]
    assert queue_logic.filter_queue(q, decided="not decided by anyone")["rank"].tolist() == [2, 4]
    assert queue_logic.next_undecided(q) == f"{V}_c000"  # its A-lines row is still open for me
    with pytest.raises(ValueError, match="decided="):
        queue_logic.filter_queue(q, decided="maybe")


def test_filters_combine():
    q = queue_logic.with_decisions(Q, reviews.latest_decisions(decisions([])), "me")
    pick = lambda **kw: queue_logic.filter_queue(q, **kw)["rank"].tolist()  # noqa: E731
    assert pick(patterns=["B-lines"]) == [1, 3]
    assert pick(reasons=["model disagreement"]) == [2, 4]
    assert pick(reasons=["likely label error", "annotator disagreement"]) == [1, 3, 4]
    assert pick(roles=["fold"]) == [1, 2] and pick(roles=["internal test", "temporal"]) == [3, 4]
    assert pick(patients=["P0"], patterns=["B-lines"]) == [1]
    assert queue_logic.clip_order(q) == [f"{V}_c000", f"{V}_c001", f"{V}_c002"]
    assert queue_logic.role_group("fold3") == "fold" and queue_logic.role_group(np.nan) == "unassigned"


def test_fallback_queue_from_disagreements():
    dis = pd.DataFrame({"clip_id": [f"{V}_c000", f"{V}_c001"], "video_id": V, "patient_id": "P1",
                        "period": "development", "pattern": ["A-lines", "B-lines"], "n_annotators": 2,
                        "n_positive": [1, 2], "positive_by": "a", "negative_by": "b",
                        "consensus": pd.array([1, 1], dtype="Int8"), "provenance": "majority",
                        "gold": pd.array([1, 0], dtype="Int8"), "reviewed": False,
                        "reason": ["consensus differs from gold", "annotators disagree"]})
    splits = pd.DataFrame({"clip_id": [f"{V}_c000"], "role": ["fold2"]})
    q = queue_logic.fallback_queue(dis, splits)
    assert list(q.columns) == list(queue_logic.QUEUE_COLUMNS)
    assert q["clip_id"].tolist() == [f"{V}_c001", f"{V}_c000"] and q["rank"].tolist() == [1, 2]
    assert q["annotator_disagreement"].tolist() == [True, False] and q["likely_label_error"].tolist() == [False, True]
    assert q["role"].isna().tolist() == [True, False] and q["prob"].isna().all()


def prediction(clip: str, set_name: str, fold: int, prob: float, attention: list | None) -> dict:
    row = {"clip_id": clip, "set": set_name, "fold": fold}
    for slug in PATTERN_SLUGS:
        row |= {f"prob_{slug}": prob, f"thr_{slug}": 0.5, f"label_{slug}": 1,
                f"attention_{slug}": None if attention is None else np.asarray(attention, dtype=np.float32)}
    return row


def test_the_prediction_row_a_reviewer_sees():
    preds = pd.DataFrame([prediction("a", "validation", 2, 0.9, [0.5, 0.5, 0.0]),
                          prediction("t", "temporal", 0, 0.2, [1.0, 0.0, 0.0]),
                          prediction("t", "temporal", 1, 0.4, [0.0, 1.0, 0.0])])
    assert clip_logic.prediction_row(preds, "a")["fold"] == 2
    mean = clip_logic.prediction_row(preds, "t")  # no ensemble row: the fold models' mean
    assert mean["fold"] == -1 and mean["prob_b_lines"] == pytest.approx(0.3)
    assert np.allclose(mean["attention_b_lines"], [0.5, 0.5, 0.0])
    with_ensemble = pd.concat([preds, pd.DataFrame([prediction("t", "temporal", -1, 0.7, None)])])
    assert clip_logic.prediction_row(with_ensemble, "t")["prob_a_lines"] == 0.7
    assert clip_logic.prediction_row(preds, "missing") is None and clip_logic.prediction_row(None, "a") is None


def test_attention_keeps_real_frames_and_marks_the_top_ones():
    row = pd.Series(prediction("a", "validation", 0, 0.9, [0.1, 0.6, 0.3, 0.0, 0.0]))
    table = clip_logic.attention_table(row, start=24, n_real=3, top_k=2)
    one = table[table["pattern"] == "B-lines"]
    assert one["frame"].tolist() == [24, 25, 26] and one["clip_frame"].tolist() == [1, 2, 3]
    assert one["video_frame"].tolist() == [25, 26, 27]  # 1-based, as the player and Label Studio count
    assert one["top"].tolist() == [False, True, True]
    assert clip_logic.top_frames(table, "B-lines") == [25, 26]
    no_attention = pd.Series(prediction("a", "validation", 0, 0.9, None))
    assert clip_logic.attention_table(no_attention, 0, 3).empty and clip_logic.attention_table(None, 0, 3).empty


def test_only_changed_choices_are_recorded():
    previous = {"B-lines": ("present", "seen")}
    chosen = {"A-lines": (None, "ignored without a choice"), "B-lines": ("present", " seen "),
              "Consolidation": ("cannot tell", ""), "Pleural effusion": ("absent", "n")}
    assert clip_logic.changed_choices(previous, chosen) == [("Consolidation", "cannot_tell", ""),
                                                            ("Pleural effusion", "absent", "n")]
    assert clip_logic.changed_choices(previous, {"B-lines": ("present", "other note")}) == [
        ("B-lines", "present", "other note")]
    assert clip_logic.neighbours(["a", "b", "c"], "b") == ("a", "c")
    assert clip_logic.neighbours(["a", "b"], "a") == (None, "b") and clip_logic.neighbours(["a"], "z") == (None, "a")


def test_evidence_table_lists_every_source_per_pattern():
    clip = f"{V}_c000"
    labels = pd.DataFrame({"clip_id": [clip, clip], "annotator": ["r2", "r1"],
                           **{p: pd.array([1, 0], dtype="Int8") for p in PATTERNS}})
    cons = pd.DataFrame({"clip_id": clip, "pattern": list(PATTERNS), "label": pd.array([1, 0, pd.NA, 1], dtype="Int8"),
                         "provenance": "majority"})
    row = pd.Series(prediction(clip, "validation", 0, 0.7, None))
    latest = reviews.latest_decisions(decisions([("me", 0, "A-lines", "cannot_tell")]))
    table = clip_logic.evidence_table(clip, labels, cons, row, Q, latest).set_index("")
    assert list(table.columns) == list(PATTERNS)
    assert table.index.tolist()[:3] == ["r1", "r2", "consensus"]
    assert table.loc["r2", "A-lines"] == "present" and table.loc["consensus", "Consolidation"] == "—"
    assert table.loc["model prob", "B-lines"] == "0.70" and table.loc["model says", "B-lines"] == "present"
    assert table.loc["reviewers", "A-lines"] == "me: cannot tell"
    assert table.loc["label-error score", "B-lines"] == "0.80" and table.loc["label-error score", "A-lines"] == "0.80"


def test_model_curves_and_fold_spread():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        y = i % 2
        for fold in ([i % 5] if i < 40 else [0, 1, 2, 3, 4]):
            r = prediction(f"c{i}", "validation" if i < 40 else "temporal", fold, 0.0, None)
            for slug in PATTERN_SLUGS:
                r[f"label_{slug}"] = y
                r[f"prob_{slug}"] = float(y) if slug == "a_lines" else float(rng.uniform())
            rows.append(r)
    preds = pd.DataFrame(rows)
    assert len(model_metrics.scored_rows(preds, "temporal")) == 20  # fold mean: one row per clip
    table = model_metrics.auroc_table({"m": preds})
    a = table[(table["pattern"] == "A-lines")]
    assert a.set_index("set").loc["validation", "auroc"] == 1.0 and a.set_index("set").loc["temporal", "n"] == 20
    assert np.isnan(a.set_index("set").loc["internal_test", "auroc"])  # no such rows: no number
    curves = model_metrics.curves(preds, "m", "validation")
    roc = curves["roc"][curves["roc"]["pattern"] == "A-lines"]
    assert roc["fpr"].iloc[0] == 0 and roc["tpr"].iloc[-1] == 1
    cal = curves["calibration"]
    assert set(cal.columns) >= {"mean_prob", "frac_positive", "n", "model", "pattern"}
    spread = model_metrics.fold_spread({"m": preds})
    assert sorted(spread.loc[spread["set"] == "validation", "fold"].unique()) == [0, 1, 2, 3, 4]


def test_agreement_tables_read_the_labels_stage_json(app_project):
    agreement = json.loads((app_project / "artifacts" / "labels" / "agreement.json").read_text())
    stats = agreement_tables.agreement_stats(agreement, "clip")
    assert set(stats["statistic"]) == {"percent agreement", "fleiss kappa", "krippendorff alpha"}
    assert (stats["ci_low"] <= stats["value"]).all() and (stats["value"] <= stats["ci_high"]).all()
    assert not agreement_tables.pairwise_kappa(agreement, "clip").empty
    scores = agreement_tables.annotator_scores(agreement, "vs_gold", "clip")
    assert set(scores["metric"]) >= {"sensitivity", "specificity"}
    labels = pd.read_parquet(app_project / "artifacts" / "labels" / "clip_labels.parquet")
    confusion = agreement_tables.pairwise_confusion(labels)
    one = confusion[confusion["pattern"] == "A-lines"].groupby("pair")["count"].sum()
    both = labels.pivot_table(index="clip_id", columns="annotator", values="A-lines", aggfunc="first")
    for pair, total in one.items():
        a, b = pair.split(" vs ")
        assert total == both[[a, b]].dropna().shape[0]  # every clip both rated, counted once


def test_cohort_and_quarantine_tables_show_no_paths(app_project):
    splits = pd.read_parquet(app_project / "artifacts" / "splits" / "splits.parquet")
    cons = pd.read_parquet(app_project / "artifacts" / "labels" / "consensus.parquet")
    table = data_tables.role_summary(splits, cons).set_index("role")
    assert table.loc["all", "clips"] == splits["clip_id"].nunique()
    assert table.drop("all")["patients"].sum() == splits["patient_id"].nunique()  # grouped by patient
    quarantine = pd.DataFrame({"source_path": ["/data/raw/secret/x.dcm"], "file_label": ["dcm:1"],
                               "reason": ["truncated"], "message": ["cut short"]})
    assert "source_path" not in data_tables.quarantine_view(quarantine).columns


def test_browser_supplied_names_never_escape_artifacts(app_project, tmp_path):
    project = load_project(app_project)
    for bad in ("../params.yaml", "/etc/passwd", "videos/../../params.yaml"):
        with pytest.raises(ValueError):
            project.artifact(bad)
    for bad in ("../x", "a/b", "", "x.mp4/..", "a b", None):
        with pytest.raises(ValueError):
            checked_id(bad)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    link = app_project / "artifacts" / "eval" / "figures" / "escape.png"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    try:
        with pytest.raises(ValueError, match="resolves outside"):
            project.artifact("eval/figures/escape.png")
        from labeling.app import loaders

        assert link not in loaders.eval_files(project, "**/*.png")
    finally:
        link.unlink()
    assert project.video_path(f"{V}").name == f"{V}.mp4"


def test_test_clips_are_blind_in_the_queue_and_on_the_clip_page():
    """Blind adjudication: an internal-test or temporal clip shows no model number or model reason anywhere, a
    test row queued only for the model disappears, and a decision on such a page is recorded as not model-assisted."""
    q = Q.assign(reasons=["readers disagree", "model says present (p=0.20, threshold 0.50)",
                          "likely label error (score 0.80, rank 1 for B-lines)",
                          "annotators disagree; model says absent (p=0.20, threshold 0.50)"])
    out = queue_logic.protect(q).set_index(["clip_id", "pattern"])
    fold_row, test_row = out.loc[(f"{V}_c000", "A-lines")], out.loc[(f"{V}_c002", "Consolidation")]
    assert fold_row["prob"] == 0.2 and fold_row["model_disagreement"]  # fold clips keep the model's view
    assert (f"{V}_c001", "B-lines") not in out.index  # temporal, queued for a label-error flag only: dropped
    assert np.isnan(test_row["prob"]) and np.isnan(test_row["label_error_score"]) and np.isnan(test_row["threshold"])
    assert not test_row["model_disagreement"] and test_row["reasons"] == "annotators disagree"
    clip = f"{V}_c002"
    row = pd.Series(prediction(clip, "internal_test", -1, 0.9, None))
    for role in ("internal_test", "temporal", None, "unassigned"):
        blind = clip_logic.is_blind(role)
        assert blind and not clip_logic.model_shown(blind, row, q[q["clip_id"] == clip])
        table = clip_logic.evidence_table(clip, None, None, row, q, reviews.latest_decisions(decisions([])), blind)
        assert not set(clip_logic.MODEL_ROWS) & set(table[""])
    assert not clip_logic.is_blind("fold3") and clip_logic.model_shown(False, None, q[q["clip_id"] == f"{V}_c000"])
    assert not clip_logic.model_shown(False, None, None)  # nothing of a model exists yet


def test_models_page_tables_of_label_views_provenance_and_interval_support():
    """The Models page's 'Test labels & intervals' tab from a real evaluation's metrics (simulated study)."""
    import json

    from tests.training.evaluation import simulate
    from training.evaluation import protected, tables, views
    from training.evaluation.scoring import Bootstrap

    clips = simulate.study(2, n_fold_patients=10, n_test=5, n_temporal=5)
    rows = pd.concat(simulate.predictions(clips, "luvnet", 1.5, seed=1).values(), ignore_index=True)
    label_views = protected.label_views(simulate.consensus_views(clips, changed=0.3))
    rows = protected.relabel(tables.check_predictions(rows, "sim"), label_views, "blind_label")
    rows = pd.concat([rows.assign(n_models=1), tables.ensemble(rows)], ignore_index=True)
    settings = views.ViewSettings(Bootstrap(n_boot=50, min_class_patients=3))
    result = protected.add_label_views(views.score_model(rows, settings), rows, label_views, settings)
    metrics = json.loads(json.dumps(result))  # as the page reads it from metrics.json
    both = model_metrics.test_label_views({"luvnet": metrics})
    assert set(both["set"]) == {"internal_test", "temporal"} and len(both) == 2 * 5
    macro = both[(both["set"] == "internal_test") & (both["pattern"] == "macro")].iloc[0]
    assert macro["auroc_after_review"] == metrics["internal_test"]["clip"]["ensemble"]["macro"]["auroc"]
    assert macro["auroc_before_review"] < macro["auroc_after_review"]  # 30 % of reader labels changed by review
    prov = model_metrics.label_provenance(metrics)
    assert len(prov) == 8 and (prov["changed by blind review"] > 0).any()
    assert (prov["label as the readers gave it"] + prov["changed by blind review"] == prov["clips"]).all()
    support = model_metrics.interval_support(metrics)
    assert set(support["set"]) == {"validation", "internal_test", "temporal"}
    assert (support["valid replicates"] + support["single-class replicates"] == 50).all()
    few = support[support["positive patients"] < 3]
    assert few["CI withheld because"].str.contains("min_class_patients_ci=3").all()
    assert model_metrics.test_label_views({"luvnet": {"internal_test": {"clip": {"label_note": "x"}}}}).empty
