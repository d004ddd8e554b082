"""Per-pattern, micro, macro scores of a table; sets and levels of a model; paired comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from luskit.schema import PATTERN_SLUGS
from tests.training.evaluation import simulate
from training.evaluation import compare, delong, tables, views
from training.evaluation.scoring import Bootstrap, fold_summary, score_table


@pytest.fixture(scope="module")
def model_rows() -> pd.DataFrame:
    clips = simulate.study(3, n_fold_patients=15, n_test=6, n_temporal=5)
    folds = simulate.predictions(clips, "luvnet", 1.2, seed=1)
    table = tables.check_predictions(pd.concat(folds.values(), ignore_index=True), "sim")
    return pd.concat([table.assign(n_models=1), tables.ensemble(table)], ignore_index=True)


def test_per_pattern_micro_and_macro_match_sklearn_after_dropping_na(model_rows):
    head = views.headline_rows(model_rows, "validation")
    assert head["label_b_lines"].isna().any()  # the simulation leaves some clips without consensus
    got = score_table(head, Bootstrap(n_boot=0))
    flat_y, flat_p = [], []
    for s in PATTERN_SLUGS:
        keep = head[f"label_{s}"].notna()
        y, p = head.loc[keep, f"label_{s}"].astype(int), head.loc[keep, f"prob_{s}"]
        flat_y.append(y), flat_p.append(p)
        block = got["patterns"][s]
        assert block["n"] == keep.sum() and block["n_pos"] == y.sum()
        assert block["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
        called = p >= head.loc[keep, f"thr_{s}"]
        assert block["sensitivity"] == pytest.approx((called & (y == 1)).sum() / (y == 1).sum(), abs=1e-6)
    assert got["micro"]["auroc"] == pytest.approx(roc_auc_score(pd.concat(flat_y), pd.concat(flat_p)), abs=1e-6)
    assert got["macro"]["auroc"] == pytest.approx(np.mean([got["patterns"][s]["auroc"] for s in PATTERN_SLUGS]),
                                                  abs=1e-6)
    assert got["n_patients"] == head["patient_id"].nunique() and "auroc_ci" not in got["patterns"]["a_lines"]


def test_cis_bracket_the_estimate_and_few_patients_give_a_reason(model_rows):
    head = views.headline_rows(model_rows, "validation")
    got = score_table(head, Bootstrap(n_boot=300, seed=1, min_patients=5))
    for block in [*got["patterns"].values(), got["micro"], got["macro"]]:
        low, high = block["auroc_ci"]
        assert low <= block["auroc"] <= high and high - low > 0.005
    one_patient = head[head["patient_id"] == head["patient_id"].iloc[0]]
    few = score_table(one_patient, Bootstrap(n_boot=300, min_patients=5))
    assert few["patterns"]["a_lines"]["auroc_ci"] is None
    assert "1 patient(s) < evaluate.min_patients_ci=5" in few["ci_note"]


def test_few_positive_patients_withhold_the_ci_with_counts_and_replicates(model_rows):
    head = views.headline_rows(model_rows, "validation").copy()
    patients = sorted(head["patient_id"].unique())
    # B-lines positive in exactly 3 patients (all their labelled clips), negative everywhere else
    positive = head["patient_id"].isin(patients[:3]).to_numpy()
    known = head["label_b_lines"].notna().to_numpy()
    head["label_b_lines"] = pd.array(np.where(known, positive.astype(int), pd.NA), dtype="Int8")
    boot = Bootstrap(n_boot=400, seed=4, min_patients=5, min_class_patients=5)
    got = score_table(head, boot)
    b_lines = got["patterns"]["b_lines"]
    assert (b_lines["n_pos_patients"], b_lines["n_neg_patients"]) == (3, len(patients) - 3)
    assert b_lines["auroc"] is not None and b_lines["auroc_ci"] is None and b_lines["sensitivity_ci"] is None
    assert "3 positive" in b_lines["ci_reason"] and "min_class_patients_ci=5" in b_lines["ci_reason"]
    # a replicate draws none of 3 positive patients out of 15 with probability (12/15)^15 = 3.5 %: counted
    assert b_lines["boot_valid"] + b_lines["boot_single_class"] == 400
    assert 0 < b_lines["boot_single_class"] < 40
    assert got["macro"]["auroc_ci"] is None and "b_lines" in got["macro"]["ci_reason"]
    a_lines = got["patterns"]["a_lines"]  # common pattern: enough patients of both classes, CI given
    assert a_lines["ci_reason"] == "" and a_lines["auroc_ci"] is not None and a_lines["n_pos_patients"] >= 5
    row = compare.compare_pair("validation", "usvn", "luvnet", "b_lines",
                               compare._aligned(head, head.assign(prob_b_lines=head["prob_a_lines"]), "b_lines"),
                               boot)
    assert np.isnan(row["boot_p"]) and "3 positive" in row["note"] and row["n_pos_patients"] == 3
    assert row["boot_valid"] + row["boot_single_class"] == 400


def test_delong_is_nan_with_a_single_positive_or_negative():
    rng = np.random.default_rng(0)
    a, b = rng.random(20), rng.random(20)
    for y in (np.r_[1, np.zeros(19)], np.r_[0, np.ones(19)]):
        test = delong.paired_test(a, b, y.astype(int))
        assert np.isnan(test.p) and np.isnan(test.z) and "single" in test.reason
        assert test.auc_a == pytest.approx(roc_auc_score(y, a))  # the AUROCs themselves are still reported
    assert np.isfinite(delong.paired_test(a, b, np.r_[1, 1, np.zeros(18)].astype(int)).p)


def test_a_pattern_with_one_class_is_undefined_not_a_crash(model_rows):
    head = views.headline_rows(model_rows, "internal_test").copy()
    head["label_pleural_effusion"] = pd.array([0] * len(head), dtype="Int8")
    got = score_table(head, Bootstrap(n_boot=100, min_patients=2, min_class_patients=2))
    effusion = got["patterns"]["pleural_effusion"]
    assert effusion["auroc"] is None and effusion["auroc_ci"] is None
    assert "one class" in effusion["undefined"]["auroc"] and effusion["specificity"] is not None
    assert got["macro"]["auroc_patterns"] == ["a_lines", "b_lines", "consolidation"]
    assert got["macro"]["auroc"] == pytest.approx(np.mean([got["patterns"][s]["auroc"] for s in PATTERN_SLUGS[:3]]),
                                                  abs=1e-6)
    assert got["macro"]["auroc_ci"] is not None


def test_sets_levels_folds_and_an_empty_temporal_set(model_rows):
    no_temporal = model_rows[model_rows["set"] != "temporal"]
    result = views.score_model(no_temporal, views.ViewSettings(Bootstrap(n_boot=50)))
    assert result["temporal"]["clip"] == {"n": 0, "note": views.empty_note("temporal")}
    assert views.headline(result, "temporal") is None
    val = result["validation"]["clip"]
    assert val["headline"] == "pooled" and sorted(val["folds"]) == ["0", "1", "2", "3", "4"]
    per_fold = [val["folds"][k]["patterns"]["a_lines"]["auroc"] for k in sorted(val["folds"])]
    summary = val["fold_summary"]["patterns"]["a_lines"]["auroc"]
    assert summary["mean"] == pytest.approx(np.mean(per_fold), abs=1e-5)
    assert summary["sd"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-5) and summary["n_folds"] == 5
    test = result["internal_test"]
    assert test["clip"]["headline"] == "ensemble" and test["clip"]["ensemble"]["n"] == (
        no_temporal[(no_temporal["set"] == "internal_test") & (no_temporal["fold"] == -1)].shape[0])
    videos = no_temporal.loc[no_temporal["set"] == "internal_test", "video_id"].nunique()
    assert test["video_max"]["ensemble"]["n"] == videos and test["video_mean"]["ensemble"]["n"] == videos
    assert fold_summary({}) == {}


def test_paired_comparison_is_delong_plus_patient_bootstrap_with_holm(model_rows):
    clips = simulate.study(3, n_fold_patients=15, n_test=6, n_temporal=5)
    weak = pd.concat(simulate.predictions(clips, "c3d", 0.3, seed=9).values(), ignore_index=True)
    per_model = {"luvnet": views.headline_rows(model_rows, "validation"),
                 "c3d": views.headline_rows(tables.check_predictions(weak, "sim"), "validation")}
    out = compare.compare_view("validation", per_model, "luvnet", Bootstrap(n_boot=300, seed=2, min_patients=5))
    assert list(out.columns) == list(compare.COLUMNS) and len(out) == 4 and set(out["model"]) == {"c3d"}
    merged = per_model["luvnet"].merge(per_model["c3d"], on="clip_id", suffixes=("", "_c3d"))
    keep = merged["label_a_lines"].notna()
    expected = delong.paired_test(merged.loc[keep, "prob_a_lines_c3d"].to_numpy(),
                                  merged.loc[keep, "prob_a_lines"].to_numpy(),
                                  merged.loc[keep, "label_a_lines"].astype(int).to_numpy())
    row = out.set_index("pattern").loc["a_lines"]
    assert row["delong_p"] == pytest.approx(expected.p) and row["difference"] == pytest.approx(expected.difference)
    np.testing.assert_allclose(out["delong_p_holm"], delong.holm(out["delong_p"].to_numpy()))
    assert (out["difference"] < 0).all() and (out["boot_ci_high"] < 0).all()  # the weak model is worse...
    assert (out["boot_p_holm"] < 0.05).all()  # ...and both tests say so
    assert compare.compare_view("temporal", {"luvnet": per_model["luvnet"].iloc[:0]}, "luvnet", Bootstrap()).empty
