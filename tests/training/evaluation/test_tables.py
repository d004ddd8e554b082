"""Prediction tables: contract checks, the fold ensemble, video pooling (hand examples)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from luskit.schema import PATTERN_SLUGS
from tests.training.evaluation import simulate
from training.evaluation import tables


def rows(values: list[dict]) -> pd.DataFrame:
    """Prediction rows with every contract column; per-pattern values default to those of a_lines."""
    base = {"clip_id": "c", "video_id": "v", "patient_id": "p", "period": "development", "role": "internal_test",
            "set": "internal_test", "fold": 0, "model": "luvnet", "n_real_frames": 4}
    out = []
    for v in values:
        row = {**base, **{k: v[k] for k in base if k in v}}
        for s in PATTERN_SLUGS:
            for prefix, default in (("prob", 0.5), ("label", 0), ("thr", 0.5), ("attention", None)):
                row[f"{prefix}_{s}"] = v.get(f"{prefix}_{s}", v.get(f"{prefix}_a_lines", default))
        out.append(row)
    frame = pd.DataFrame(out)
    for s in PATTERN_SLUGS:
        frame[f"label_{s}"] = frame[f"label_{s}"].astype("Int8")
    return frame


def test_video_pooling_by_max_and_mean_with_the_label_rules():
    table = rows([
        {"clip_id": "a1", "video_id": "A", "prob_a_lines": 0.2, "label_a_lines": 0, "thr_a_lines": 0.4},
        {"clip_id": "a2", "video_id": "A", "prob_a_lines": 0.8, "label_a_lines": 1, "thr_a_lines": 0.4},
        {"clip_id": "a3", "video_id": "A", "prob_a_lines": 0.5, "label_a_lines": pd.NA, "thr_a_lines": 0.4},
        {"clip_id": "b1", "video_id": "B", "prob_a_lines": 0.1, "label_a_lines": 0, "thr_a_lines": 0.4},
        {"clip_id": "b2", "video_id": "B", "prob_a_lines": 0.3, "label_a_lines": 0, "thr_a_lines": 0.4},
        {"clip_id": "c1", "video_id": "C", "prob_a_lines": 0.6, "label_a_lines": 0, "thr_a_lines": 0.4},
        {"clip_id": "c2", "video_id": "C", "prob_a_lines": 0.4, "label_a_lines": pd.NA, "thr_a_lines": 0.4},
        {"clip_id": "a1", "video_id": "A", "fold": 1, "prob_a_lines": 0.9, "label_a_lines": 0, "thr_a_lines": 0.2},
    ])
    by_max = tables.pool_videos(table, "max").set_index(["fold", "video_id"])
    by_mean = tables.pool_videos(table, "mean").set_index(["fold", "video_id"])
    assert by_max["prob_a_lines"].to_dict() == {(0, "A"): 0.8, (0, "B"): 0.3, (0, "C"): 0.6, (1, "A"): 0.9}
    assert by_mean.loc[(0, "A"), "prob_a_lines"] == pytest.approx(0.5)
    assert by_mean.loc[(0, "B"), "prob_a_lines"] == pytest.approx(0.2)
    # any positive clip -> 1 (even with an NA clip); all 0 -> 0; no positive but an NA clip -> unknown
    assert by_max.loc[(0, "A"), "label_a_lines"] == 1 and by_max.loc[(0, "B"), "label_a_lines"] == 0
    assert pd.isna(by_max.loc[(0, "C"), "label_a_lines"])
    assert by_max.loc[(1, "A"), "thr_a_lines"] == 0.2  # fold models are pooled separately
    assert by_max["n_clips"].to_dict() == {(0, "A"): 3, (0, "B"): 2, (0, "C"): 2, (1, "A"): 1}
    with pytest.raises(ValueError, match="pooling"):
        tables.pool_videos(table, "median")


def test_ensemble_averages_probabilities_thresholds_and_attention_over_folds():
    att = [np.array([0.5, 0.5, 0, 0], np.float32), np.array([1.0, 0, 0, 0], np.float32),
           np.array([0.2, 0.2, 0.6, 0], np.float32)]
    table = rows([
        {"clip_id": "t1", "fold": k, "prob_a_lines": p, "thr_a_lines": t, "attention_a_lines": a}
        for k, (p, t, a) in enumerate(zip([0.2, 0.5, 0.8], [0.3, 0.4, 0.8], att))
    ] + [{"clip_id": "v1", "set": "validation", "role": "fold0", "fold": 0, "prob_a_lines": 0.9}])
    ens = tables.ensemble(table)
    assert len(ens) == 1  # validation rows are never ensembled (each clip has one out-of-fold model)
    row = ens.iloc[0]
    assert row["fold"] == tables.ENSEMBLE_FOLD and row["n_models"] == 3 and row["set"] == "internal_test"
    assert row["prob_a_lines"] == pytest.approx(0.5) and row["thr_a_lines"] == pytest.approx(0.5)
    assert tables.ensemble(table, threshold="median").iloc[0]["thr_a_lines"] == pytest.approx(0.4)
    np.testing.assert_allclose(row["attention_a_lines"], [17 / 30, 7 / 30, 0.2, 0.0], rtol=1e-6)
    assert row["attention_a_lines"].sum() == pytest.approx(1.0)
    assert row["attention_b_lines"] is not None  # defaults copy a_lines' attention in this helper
    no_att = rows([{"clip_id": "t1", "fold": k} for k in range(2)])
    assert tables.ensemble(no_att).iloc[0]["attention_a_lines"] is None


def test_check_predictions_names_the_file_and_the_fix():
    clips = simulate.study(1, n_fold_patients=5, n_test=1, n_temporal=1)
    table = simulate.predictions(clips, "luvnet", 1.0, 0)[0]
    assert tables.check_predictions(table, "x.parquet")["fold"].dtype.kind == "i"
    with pytest.raises(ValueError, match=r"x.parquet: column\(s\) \['thr_b_lines'\] missing: rerun the train"):
        tables.check_predictions(table.drop(columns=["thr_b_lines"]), "x.parquet")
    bad = table.copy()
    bad.loc[0, "prob_a_lines"] = 1.5
    with pytest.raises(ValueError, match="outside"):
        tables.check_predictions(bad, "x.parquet")
    with pytest.raises(ValueError, match="duplicated"):
        tables.check_predictions(pd.concat([table, table.iloc[:1]]), "x.parquet")
    odd = table.assign(set="test")
    with pytest.raises(ValueError, match="unknown set"):
        tables.check_predictions(odd, "x.parquet")
