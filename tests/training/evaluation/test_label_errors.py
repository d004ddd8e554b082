"""Label-error ranking: recall of flipped labels on simulated data, hand examples, the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from luskit.schema import PATTERN_SLUGS, PATTERNS
from tests.training.evaluation import simulate
from training.evaluation import label_errors as le


def simulated(seed: int, n: int, prevalence: float, separation: float, shift: float = 0.0):
    """Truth, held-out probabilities of a decent model (posterior of a two-Gaussian problem, AUROC ~0.97),
    and labels with 5 % flipped at random."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < prevalence
    x = rng.normal(np.where(truth, separation, -separation), 1.0)
    prob = 1 / (1 + np.exp(-(2 * separation * x + np.log(prevalence / (1 - prevalence)) + shift)))
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, n // 20, replace=False)] = True
    return prob, truth ^ flipped, flipped


@pytest.mark.parametrize("method", ["self_confidence", "adjusted_self_confidence"])
def test_flipped_labels_rank_in_the_top_ten_percent(method):
    """Four patterns (prevalences as in the paper's development set), 2000 clips each, 5 % flipped: at
    least 80 % of the flipped (clip, pattern) labels are in the top 10 % of their pattern's ranking."""
    found, total = 0, 0
    for k, prevalence in enumerate((0.5, 0.4, 0.3, 0.2)):
        prob, given, flipped = simulated(k, 2000, prevalence, separation=1.5)
        _, _, rank = le.rank_label_errors(prob, given, method)
        found += int((rank[flipped] <= len(prob) // 10).sum())
        total += int(flipped.sum())
    assert found / total >= 0.8, found / total


def test_hand_example_of_thresholds_scores_and_the_confident_joint():
    prob = np.array([0.9, 0.7, 0.2, 0.1, 0.3, 0.6])
    label = np.array([1, 1, 1, 0, 0, 0])
    # t1 = mean p over labelled 1 = (.9 + .7 + .2) / 3 = .6; t0 = mean (1 - p) over labelled 0 = (.9 + .7 + .4) / 3
    np.testing.assert_allclose(le.class_thresholds(prob, label), [2 / 3, 0.6])
    score, likely, rank = le.rank_label_errors(prob, label, "self_confidence")
    np.testing.assert_allclose(score, [0.1, 0.3, 0.8, 0.1, 0.3, 0.6])  # 1 - p(given label)
    assert rank.tolist() == [5, 3, 1, 6, 4, 2]  # ties keep input order
    # confident joint: clip 2 (label 1, p .2): 1 - p = .8 >= t0 and p < t1 -> class 0: off-diagonal;
    # clip 5 (label 0, p .6): p = .6 >= t1 = .6, 1 - p = .4 < t0 -> class 1: off-diagonal.
    assert likely.tolist() == [False, False, True, False, False, True]
    adjusted = le.label_quality(prob, label, "adjusted_self_confidence")
    t0, t1 = 2 / 3, 0.6  # q = p - t + max(t), renormalised; clip 0: q1 = .9 - .6 + 2/3, q0 = .1 - 2/3 + 2/3
    assert adjusted[0] == pytest.approx((0.9 - t1 + t0) / ((0.9 - t1 + t0) + 0.1))
    with pytest.raises(ValueError, match="method"):
        le.label_quality(prob, label, "margin")


def test_table_keeps_no_consensus_rows_and_ranks_within_each_pattern():
    rng = np.random.default_rng(0)
    n = 30
    rows = pd.DataFrame({"clip_id": [f"c{i:02d}" for i in range(n)][::-1], "video_id": "v", "patient_id": "p",
                         "period": "development", "role": "fold0", "set": "validation"})
    for s in PATTERN_SLUGS:
        rows[f"prob_{s}"] = rng.random(n)
        rows[f"label_{s}"] = pd.array(rng.integers(0, 2, n), dtype="Int8")
        rows[f"thr_{s}"] = 0.5
    rows.loc[3, "label_b_lines"] = pd.NA
    table = le.label_error_table(rows)
    assert list(table.columns) == list(le.TABLE_COLUMNS) and len(table) == 4 * n
    assert table["pattern"].unique().tolist() == list(PATTERNS)
    missing = table[(table["pattern"] == "B-lines") & table["label"].isna()]
    assert len(missing) == 1 and pd.isna(missing["rank"].iloc[0]) and not missing["likely_label_error"].iloc[0]
    b = table[(table["pattern"] == "B-lines") & table["label"].notna()]
    assert sorted(b["rank"].astype(int)) == list(range(1, n))
    assert b.loc[b["rank"] == 1, "label_error_score"].iloc[0] == b["label_error_score"].max()
    assert table["clip_id"].iloc[0] == "c00"  # rows sorted by clip id: ties rank deterministically


def test_each_ranked_list_uses_one_source_of_probabilities():
    """Out-of-fold (one model) and fold-ensemble (averaged) probabilities are ranked in separate lists: an
    ensemble clip never pushes an out-of-fold clip down its list, and ranks restart at 1 per source."""
    rng = np.random.default_rng(1)
    n = 20
    rows = pd.DataFrame({"clip_id": [f"c{i:02d}" for i in range(2 * n)], "video_id": "v", "patient_id": "p",
                         "period": "development", "role": ["fold0"] * n + ["internal_test"] * n,
                         "set": ["validation"] * n + ["internal_test"] * n})
    for s in PATTERN_SLUGS:
        y = rng.integers(0, 2, 2 * n)
        # the ensemble rows are confidently wrong everywhere: in one mixed list they would take every top rank
        rows[f"prob_{s}"] = np.where(np.arange(2 * n) < n, rng.random(2 * n), 1.0 - y * 0.99)
        rows[f"label_{s}"] = pd.array(y, dtype="Int8")
        rows[f"thr_{s}"] = 0.5
    table = le.label_error_table(rows)
    for source, part in table[table["pattern"] == "A-lines"].groupby("source"):
        assert sorted(part["rank"].astype(int)) == list(range(1, n + 1)), source
        assert part["rank_fraction"].max() == 1.0
    assert set(table["source"]) == {"out_of_fold", "fold_ensemble"}
    oof = table[(table["source"] == "out_of_fold") & (table["pattern"] == "A-lines")]
    alone = le.label_error_table(rows[rows["set"] == "validation"])
    np.testing.assert_array_equal(oof["rank"].astype(int), alone[alone["pattern"] == "A-lines"]["rank"].astype(int))


def _bench():
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "bench" / "bench_label_errors.py"
    spec = importlib.util.spec_from_file_location("bench_label_errors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_label_error_benchmark_logic_on_simulated_data_over_seeds():
    """bench/bench_label_errors.py without the retraining: flip 5% of the fold-clip labels per seed, rank the
    out-of-fold probabilities (one source), recall in the top 10%, mean ± SD over 3 seeds, and the report."""
    import argparse

    bench = _bench()
    clips = simulate.study(4, n_fold_patients=40, n_test=4, n_temporal=2, clips=(4, 8))
    folds = simulate.predictions(clips, "luvnet", 2.0, seed=1)
    oof = pd.concat(folds.values(), ignore_index=True)
    consensus = pd.concat([clips[["clip_id"]].assign(pattern=p, label=clips[f"label_{s}"])
                           for p, s in zip(PATTERNS, PATTERN_SLUGS)], ignore_index=True)
    splits = clips[["clip_id", "role"]]
    results = []
    for seed in (5, 6, 7):
        flipped_cons, flipped = bench.flip_labels(consensus, splits, 0.05, np.random.default_rng(seed))
        assert set(flipped["clip_id"]) <= set(clips.loc[clips["role"].str.startswith("fold"), "clip_id"])
        rows = oof[oof["set"] == "validation"].copy()
        for p, s in zip(PATTERNS, PATTERN_SLUGS):  # the labels the retrained model would be scored against
            lookup = flipped_cons[flipped_cons["pattern"] == p].set_index("clip_id")["label"]
            rows[f"label_{s}"] = rows["clip_id"].map(lookup).astype("Int8")
        results.append(bench.recall_in_top(rows, flipped, 0.10))
    assert all(r["all"] > 0.6 for r in results)  # a 2-SD-separated model finds most flips in its top 10 %
    summary = bench.summarise(results)
    assert summary["all"][0] == pytest.approx(np.mean([r["all"] for r in results]))
    assert summary["all"][1] == pytest.approx(np.std([r["all"] for r in results], ddof=1))
    args = argparse.Namespace(model="luvnet", fraction=0.05, seeds=[5, 6, 7], folds=[0, 1, 2, 3, 4], top=0.10)
    text = bench.report(args, results, 1.0)
    assert f"**{summary['all'][0]:.2f} ± {summary['all'][1]:.2f}**" in text and "| 7 |" in text
    with pytest.raises(ValueError, match="out-of-fold rows only"):  # never a list mixing sources
        bench.recall_in_top(oof, flipped, 0.10)
