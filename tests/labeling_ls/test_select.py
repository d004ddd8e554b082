"""`luskit label select`: strategies on prediction tables whose answer is known, exclusions, and the list that
`luskit label push --videos` takes (no server needed)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from labeling import sheets
from labeling.ls import push, select
from luskit.schema import PATTERN_SLUGS

IDS = ("Paa_V0", "Pbb_V1", "Pcc_V2", "Pdd_V3")


def write_predictions(folder, probs: dict[str, float], fold_probs: dict[str, list[float]]):
    """videos.parquet (ensemble: B-lines prob per video, threshold 0.4, others far from theirs) and
    videos_folds.parquet (three fold models' B-lines probs per video)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for v in IDS:
        row = {"video_id": v, "patient_id": v[:3], "fold": -1}
        for s in PATTERN_SLUGS:
            row[f"prob_{s}"], row[f"thr_{s}"] = 0.01, 0.5
        row["prob_b_lines"], row["thr_b_lines"] = probs[v], 0.4
        rows.append(row)
    pd.DataFrame(rows).to_parquet(folder / "videos.parquet")
    folds = []
    for v in IDS:
        for k, p in enumerate(fold_probs[v]):
            folds.append({"video_id": v, "fold": k, **{f"prob_{s}": 0.01 for s in PATTERN_SLUGS}, "prob_b_lines": p})
    pd.DataFrame(folds).to_parquet(folder / "videos_folds.parquet")
    return folder


@pytest.fixture
def predictions(tmp_path):
    probs = {"Paa_V0": 0.95, "Pbb_V1": 0.41, "Pcc_V2": 0.05, "Pdd_V3": 0.30}
    folds = {"Paa_V0": [0.95, 0.95, 0.95], "Pbb_V1": [0.40, 0.42, 0.41], "Pcc_V2": [0.0, 0.1, 0.05],
             "Pdd_V3": [0.0, 0.3, 0.6]}
    return write_predictions(tmp_path / "predictions", probs, folds)


def test_uncertainty_picks_the_videos_nearest_the_threshold(predictions, tmp_path):
    chosen = select.select(predictions, "uncertainty", 2, tmp_path / "sel.csv")
    assert chosen["video_id"].tolist() == ["Pbb_V1", "Pdd_V3"]
    assert chosen["rank"].tolist() == [1, 2] and (chosen["score"] <= 1).all()


def test_disagreement_picks_the_videos_the_fold_models_split_on(predictions, tmp_path):
    chosen = select.select(predictions, "disagreement", 1, tmp_path / "sel.csv")
    assert chosen["video_id"].tolist() == ["Pdd_V3"]  # 0.0 / 0.3 / 0.6, though not the most uncertain


def test_random_is_seeded(predictions, tmp_path):
    a = select.select(predictions, "random", 4, tmp_path / "a.csv", seed=1)["video_id"].tolist()
    b = select.select(predictions, "random", 4, tmp_path / "b.csv", seed=1)["video_id"].tolist()
    orders = {tuple(select.select(predictions, "random", 4, tmp_path / "c.csv", seed=s)["video_id"]) for s in range(8)}
    assert a == b and sorted(a) == sorted(IDS) and len(orders) > 1


def test_labelled_videos_are_left_out(predictions, tmp_path):
    videos = pd.DataFrame({"video_id": ["Pbb_V1"], "patient_id": ["Pbb"], "fps": [30.0], "n_frames": [30]})
    parsed = sheets.parse_sheet(pd.DataFrame({"video_id": ["Pbb_V1"], "B-lines": ["3_9"]}))
    tasks = sheets.build_export(parsed, videos, "reader@x.invalid", "h", "2026-01-01T00:00:00Z")
    (tmp_path / "snap.json").write_text(json.dumps(tasks))
    chosen = select.select(predictions, "uncertainty", 2, tmp_path / "sel.csv", exclude=[tmp_path / "snap.json"])
    assert chosen["video_id"].tolist() == ["Pdd_V3", "Pcc_V2"]  # the nearest one, Pbb_V1, is labelled


def test_one_fold_model_cannot_disagree(tmp_path):
    folder = write_predictions(tmp_path / "p", {v: 0.5 for v in IDS}, {v: [0.5] for v in IDS})
    with pytest.raises(select.SelectError, match="2 or more"):
        select.select(folder, "disagreement", 1, tmp_path / "sel.csv")
    with pytest.raises(select.SelectError, match="strategy"):
        select.select(folder, "entropy", 1, tmp_path / "sel.csv")


def test_the_list_is_what_push_takes(predictions, tmp_path):
    from luskit.cli import app

    result = CliRunner().invoke(app, ["label", "select", "--predictions", str(predictions), "--strategy",
                                      "uncertainty", "--n", "3", "--out", str(tmp_path / "next.csv")])
    assert result.exit_code == 0, result.output
    listed = select.read_list(tmp_path / "next.csv")
    videos = pd.DataFrame({"video_id": list(IDS), "patient_id": [v[:3] for v in IDS], "period": "development",
                           "fps": 30.0})
    assert push.only(videos, listed)["video_id"].tolist() == sorted(listed)
    (tmp_path / "plain.txt").write_text("Pcc_V2\n\nPaa_V0\n")
    assert select.read_list(tmp_path / "plain.txt") == ["Pcc_V2", "Paa_V0"]
    with pytest.raises(push.PushError, match="not among"):
        push.only(videos, ["Pzz_V9"])
