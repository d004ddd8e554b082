"""The review queue: reasons, priorities and ranks on hand-made tables, flipped labels on simulated data,
and the stage's I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from labeling import queue as q
from luskit import paths
from luskit.config import load_section
from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.evaluation.label_errors import label_error_table

REPO = Path(__file__).resolve().parents[2]
IDS = {"video_id": "V1", "patient_id": "P1", "period": "development"}


def errors_row(clip, pattern, prob, label, score, likely=False, rank=5, fraction=0.5, thr=0.5, role="fold0"):
    return {"clip_id": clip, **IDS, "role": role, "set": "validation", "pattern": pattern, "label": label,
            "prob": prob, "threshold": thr, "label_quality": 1 - score, "label_error_score": score,
            "likely_label_error": likely, "rank": rank, "rank_fraction": fraction}


def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    errors = pd.DataFrame([
        errors_row("A", "B-lines", 0.8, 1, 0.2),  # readers disagree; model agrees with the consensus
        errors_row("B", "A-lines", 0.9, 0, 0.9, rank=1, fraction=0.01),  # model says present, consensus absent
        errors_row("C", "Consolidation", 0.3, 1, 0.7, likely=True, rank=2, fraction=0.02, thr=0.2),  # flagged
        errors_row("D", "Pleural effusion", 0.1, 0, 0.1),  # nothing to see
        errors_row("E", "B-lines", 0.9, 0, 0.9, rank=1, fraction=0.01),  # already reviewed
        errors_row("F", "A-lines", 0.6, 1, 0.4),  # consensus differs from gold
        errors_row("G", "A-lines", 0.2, 0, 0.2),  # consensus changed to 1 (a new annotation snapshot) since evaluation
        errors_row("H", "B-lines", 0.7, pd.NA, np.nan, rank=pd.NA, fraction=np.nan),  # no consensus
    ])
    errors["label"] = errors["label"].astype("Int8")
    errors["rank"] = errors["rank"].astype("Int64")
    consensus = pd.DataFrame({"clip_id": list("ABCDEFGH") + ["X"],
                              "pattern": ["B-lines", "A-lines", "Consolidation", "Pleural effusion", "B-lines",
                                          "A-lines", "A-lines", "B-lines", "A-lines"],
                              "label": pd.array([1, 0, 1, 0, 1, 1, 1, None, 1], dtype="Int8"),
                              "provenance": ["majority; tie -> positive", "majority", "majority", "majority",
                                             "review (1 present)", "majority", "majority", "majority", "majority"]})
    disagreements = pd.DataFrame({
        "clip_id": ["A", "E", "F", "H", "X"], **{k: [v] * 5 for k, v in IDS.items()},
        "pattern": ["B-lines", "B-lines", "A-lines", "B-lines", "A-lines"],
        "reason": ["annotators disagree", "annotators disagree", "consensus differs from gold", "no consensus",
                   "annotators disagree"],
        "reviewed": [False, True, False, False, False]})
    clip_labels = pd.DataFrame({"clip_id": ["A", "A", "B"], "annotator": ["r2@x", "r1@x", "r1@x"],
                                "A-lines": pd.array([0, 0, 0], dtype="Int8"),
                                "B-lines": pd.array([1, 0, 1], dtype="Int8"),
                                "Consolidation": pd.array([0, 0, None], dtype="Int8"),
                                "Pleural effusion": pd.array([0, 0, 0], dtype="Int8")})
    return errors, consensus, disagreements, clip_labels


def test_reasons_flags_priorities_and_ranks():
    out = q.build_queue(*tables(), q.QueueParams(label_error_top=0.0))
    assert list(out.columns) == list(q.QUEUE_COLUMNS)
    rows = out.set_index("clip_id")
    assert set(rows.index) == {"A", "B", "C", "F", "G", "H", "X"}  # D: no reason; E: already reviewed
    assert rows.loc["A", "annotator_disagreement"] and not rows.loc["A", "model_disagreement"]
    assert (rows.loc["A", "positive_by"], rows.loc["A", "negative_by"]) == ("r2@x", "r1@x")
    assert rows.loc["B", "model_disagreement"]
    assert "model says present (p=0.90, threshold 0.50)" in rows.loc["B", "reasons"]
    assert rows.loc["C", "likely_label_error"] and "likely label error (score 0.70, rank 2" in rows.loc["C", "reasons"]
    assert rows.loc["C", "model_disagreement"] is np.False_  # p .3 >= threshold .2: the model agrees
    assert rows.loc["F", "likely_label_error"] and rows.loc["F", "reasons"] == "consensus differs from gold"
    assert rows.loc["H", "annotator_disagreement"] and pd.isna(rows.loc["H", "consensus"])
    assert "changed since evaluation" in rows.loc["G", "reasons"] and rows.loc["G", "model_disagreement"]
    assert np.isnan(rows.loc["X", "prob"]) and rows.loc["X", "annotator_disagreement"]  # never scored: still queued
    w = q.Weights()
    assert rows.loc["B", "priority"] == pytest.approx(w.model + w.label_error * 0.9)
    assert rows.loc["H", "priority"] == pytest.approx(w.no_consensus)
    assert out["rank"].tolist() == list(range(1, len(out) + 1))
    assert out["priority"].is_monotonic_decreasing
    assert out["consensus"].dtype == "Int8" and out["annotator_disagreement"].dtype == bool


@pytest.mark.parametrize("role", ["internal_test", "temporal"])
def test_test_clips_are_queued_only_for_annotator_reasons_and_carry_no_model_output(role):
    errors, consensus, disagreements, clip_labels = tables()
    errors["role"] = role  # every clip of the hand-made study is a test clip now
    out = q.build_queue(errors, consensus, disagreements, clip_labels, q.QueueParams(label_error_top=1.0))
    rows = out.set_index("clip_id")
    # B (model disagrees), C (confident-joint flag), G (changed since evaluation) and the top-share rule are gone;
    # A, H and X (readers disagree / no consensus) and F (gold differs: a reader, not the model) stay
    assert set(rows.index) == {"A", "F", "H", "X"}
    assert not out["model_disagreement"].any()
    assert out[list(q.MODEL_COLUMNS)].isna().all().all()  # nothing of the model reaches the queue's reader
    for text in out["reasons"]:
        assert "model" not in text and "label-error" not in text and "likely label error" not in text
    fold = q.build_queue(*tables(), q.QueueParams(label_error_top=1.0))
    assert {"B", "C", "G"} <= set(fold["clip_id"])  # the same clips in folds are queued for the model's reasons


def test_reviewed_top_share_and_max_rows():
    with_reviewed = q.build_queue(*tables(), q.QueueParams(include_reviewed=True, label_error_top=0.0))
    assert "E" in set(with_reviewed["clip_id"])
    no_review = q.build_queue(*tables(), q.QueueParams(label_error_top=0.0))
    assert "E" not in set(no_review["clip_id"])
    errors, consensus, disagreements, clip_labels = tables()
    errors.loc[errors["clip_id"] == "D", ["rank_fraction", "rank"]] = [0.01, 1]
    top = q.build_queue(errors, consensus, disagreements, clip_labels, q.QueueParams(label_error_top=0.05))
    assert "label-error score 0.10 (rank 1 for Pleural effusion)" in top.set_index("clip_id").loc["D", "reasons"]
    assert len(q.build_queue(*tables(), q.QueueParams(max_rows=2))) == 2


def test_flipped_labels_come_first_in_the_queue():
    """Simulated held-out probabilities of a decent model, 5 % of consensus labels flipped: at least 80 % of the
    flipped (clip, pattern) pairs are in the first 10 % of the queue (no annotator disagreements here)."""
    rng = np.random.default_rng(4)
    n = 1000
    rows = pd.DataFrame({"clip_id": [f"c{i:04d}" for i in range(n)], **IDS, "role": "fold0", "set": "validation"})
    flipped = {}
    for s, prevalence in zip(PATTERN_SLUGS, (0.5, 0.4, 0.3, 0.2)):
        truth = rng.random(n) < prevalence
        x = rng.normal(np.where(truth, 1.5, -1.5), 1.0)
        rows[f"prob_{s}"] = 1 / (1 + np.exp(-(3.0 * x + np.log(prevalence / (1 - prevalence)))))
        flip = np.zeros(n, dtype=bool)
        flip[rng.choice(n, n // 20, replace=False)] = True
        rows[f"label_{s}"] = pd.array((truth ^ flip).astype(int), dtype="Int8")
        rows[f"thr_{s}"] = prevalence
        flipped[s] = flip
    errors = label_error_table(rows)
    consensus = errors[["clip_id", "pattern", "label"]].assign(provenance="majority")
    empty = pd.DataFrame(columns=["clip_id", "pattern", "reason", "reviewed"])
    labels = pd.DataFrame(columns=["clip_id", "annotator", *PATTERNS])
    out = q.build_queue(errors, consensus, empty, labels, q.QueueParams())
    first = set(zip(out["clip_id"].head(len(errors) // 10), out["pattern"].head(len(errors) // 10)))
    wanted = {(f"c{i:04d}", p) for s, p in zip(PATTERN_SLUGS, PATTERNS) for i in np.flatnonzero(flipped[s])}
    assert len(first & wanted) / len(wanted) >= 0.8, len(first & wanted) / len(wanted)


def test_stage_writes_the_queue_and_reports_missing_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"review_queue": {"label_error_top": 0.0}}))
    assert q.main() == 2  # nothing evaluated yet
    errors, consensus, disagreements, clip_labels = tables()
    for path, table in ((q.LABEL_ERRORS, errors), (paths.CONSENSUS, consensus), (paths.DISAGREEMENTS, disagreements),
                        (paths.CLIP_LABELS, clip_labels)):
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path, index=False)
    assert q.main() == 0
    written = pd.read_parquet(q.QUEUE)
    assert list(written.columns) == list(q.QUEUE_COLUMNS) and len(written) == 7
    assert str(written["consensus"].dtype) == "Int8" and written["rank"].iloc[0] == 1


def test_repository_params_load():
    params = load_section(REPO / "params.yaml", "review_queue", q.QueueParams)
    assert params.weights.annotators >= 0 and 0 <= params.label_error_top <= 1
