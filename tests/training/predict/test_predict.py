"""`luskit predict` on real POCUS videos with a tiny trained fold ensemble: outputs, contracts, PHI, rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from labeling.ls import push
from luskit.pseudonym import KEY_ENV, KEY_FILE_ENV
from luskit.schema import PATTERN_SLUGS, PATTERNS
from tests.training.predict.conftest import BROKEN, BURNED, BURNED_TEXT, POCUS, TRAIN_LENGTH, pocus_rows
from training.predict import outputs
from training.predict.ensemble import EnsembleError, load_ensemble
from training.predict.stage import predict


def test_every_good_video_is_predicted_by_every_fold_model(predicted):
    root, out, result = predicted
    folder = out / "predictions"
    clips, folds = pd.read_parquet(folder / "clips.parquet"), pd.read_parquet(folder / "clips_folds.parquet")
    videos = pd.read_parquet(folder / "videos.parquet")
    manifest = pd.read_parquet(out / "clips" / "manifest.parquet")
    assert len(videos) == len(POCUS) and videos["video_id"].is_unique
    assert sorted(clips["clip_id"]) == sorted(manifest["clip_id"])
    assert (clips["n_models"] == 3).all() and sorted(folds["fold"].unique()) == [0, 1, 2]
    assert len(folds) == 3 * len(clips)
    for slug in PATTERN_SLUGS:
        mean = folds.groupby("clip_id")[f"prob_{slug}"].mean()
        assert np.allclose(clips.set_index("clip_id")[f"prob_{slug}"].reindex(mean.index), mean, atol=1e-6)
        pooled = clips.groupby("video_id")[f"prob_{slug}"].max()
        assert np.allclose(videos.set_index("video_id")[f"prob_{slug}"].reindex(pooled.index), pooled)
        att = clips[f"attention_{slug}"].map(lambda a: float(np.sum(a)))
        assert np.allclose(att, 1.0, atol=1e-4)  # per-frame attention over each clip's real frames


def test_thresholds_and_preprocessing_come_from_the_checkpoints(predicted):
    root, out, _ = predicted
    ckpts = [torch.load(root / "artifacts" / "models" / "luvnet" / f"fold{k}" / "checkpoint.pt", weights_only=True)
             for k in (0, 1, 2)]
    clips = pd.read_parquet(out / "predictions" / "clips.parquet")
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        expected = np.mean([c["thresholds"][pattern] for c in ckpts])
        assert np.allclose(clips[f"thr_{slug}"], expected)
        assert (clips[f"positive_{slug}"] == (clips[f"prob_{slug}"] >= clips[f"thr_{slug}"])).all()
    used = yaml.safe_load((out / "predict_params.yaml").read_text())["clips"]
    assert used["length"] == TRAIN_LENGTH != 30  # the project's params now say 30: the checkpoint wins
    assert used["size"] == ckpts[0]["preprocessing"]["size"] != 64
    manifest = pd.read_parquet(out / "clips" / "manifest.parquet")
    assert manifest["n_real_frames"].max() == TRAIN_LENGTH
    assert (manifest["end"] - manifest["start"]).max() <= TRAIN_LENGTH
    cache = np.load(out / "clips" / manifest["cache_file"].iloc[0], mmap_mode="r")
    assert cache.shape[1:] == (used["size"], used["size"])  # grayscale, letterboxed square


def test_label_studio_table_is_what_push_reads(predicted):
    _, out, _ = predicted
    folder = out / "predictions"
    videos = push.read_videos(out / "deid" / "videos.parquet")
    table = push.read_predictions(folder / "ls_predictions.parquet", videos)
    clips = pd.read_parquet(folder / "clips.parquet")
    expected = sum(int(clips[f"positive_{s}"].sum()) for s in PATTERN_SLUGS)
    assert len(table) == expected and table["model_version"].nunique() == 1
    payloads = push.prediction_payloads(table)
    assert set(payloads) == set(table["video_id"])


def test_report_names_positive_videos_with_their_top_frames(predicted):
    _, out, _ = predicted
    folder = out / "predictions"
    report = (folder / "report.md").read_text()
    videos = pd.read_parquet(folder / "videos.parquet")
    tops = pd.read_csv(folder / "top_frames.csv")
    positive = {v for s in PATTERN_SLUGS for v in videos.loc[videos[f"positive_{s}"], "video_id"]}
    assert set(tops["video_id"]) == positive
    n = videos.set_index("video_id")["n_clips"]
    for r in tops.itertuples(index=False):
        frames = [int(f) for f in str(r.frames).split("; ")]
        assert all(1 <= f <= 200 for f in frames) and len(frames) <= 5
        assert r.video_id in report
    for video_id in positive:
        assert (folder / "figures" / f"{video_id}.png").exists()
    assert len(n) == len(POCUS)


def test_bad_input_is_reported_by_safe_label_and_no_phi_leaves_the_input(predicted, pocus_input):
    _, out, _ = predicted
    report = (out / "predictions" / "report.md").read_text()
    assert "quarantined by ingest" in report and "Not predicted" in report
    index = pd.read_parquet(out / "index" / "videos.parquet")
    published = set(pd.read_parquet(out / "deid" / "videos.parquet")["video_id"])
    (withheld,) = set(index["video_id"]) - published  # the clip with a name burned into the image
    assert f"| {withheld} | withheld" in report
    assert not (out / "videos" / f"{withheld}.mp4").exists()
    for table in ("clips.parquet", "ls_predictions.parquet", "videos.parquet"):
        assert withheld not in set(pd.read_parquet(out / "predictions" / table)["video_id"])
    names = [name for _, name in POCUS] + [BROKEN[1], BURNED[1], "pat7", "pat40", "20200101", str(pocus_input),
                                            *BURNED_TEXT, "4471902"]
    stems = [Path(n).stem for n in names]
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".csv", ".json", ".yaml", ".parquet"):
            text = path.read_bytes().decode("latin-1")
            leaked = [s for s in stems if s in text]
            assert not leaked, f"{path.relative_to(out)} holds {leaked}"
    assert not any(p.is_symlink() for p in out.rglob("*"))


def test_real_data_without_a_key_stops_before_anything_is_predicted(trained, pocus_input, tmp_path, monkeypatch):
    from luskit.config import ConfigError

    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    params = yaml.safe_load((trained / "params.yaml").read_text())
    params["ingest"]["demo_key"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="key"):
        predict(trained / "artifacts" / "models" / "luvnet", pocus_input, tmp_path / "out", tmp_path / "params.yaml",
                demo_key=None, progress=False)
    assert not (tmp_path / "out" / "predictions").exists()


def test_output_inside_the_input_is_refused(trained, pocus_input):
    from training.predict.prepare import PrepareError

    with pytest.raises(PrepareError, match="outside"):
        predict(trained / "artifacts" / "models" / "luvnet", pocus_input, pocus_input / "out",
                trained / "params.yaml", demo_key=True, progress=False)


def test_output_in_data_is_refused(trained, pocus_input, tmp_path, monkeypatch):
    from training.predict.prepare import PrepareError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(PrepareError, match="data/"):
        predict(trained / "artifacts" / "models" / "luvnet", pocus_input, tmp_path / "data" / "pred",
                trained / "params.yaml", demo_key=True, progress=False)
    assert not (tmp_path / "data").exists()


def test_old_checkpoints_without_preprocessing_are_refused(trained, tmp_path):
    models = tmp_path / "luvnet"
    shutil.copytree(trained / "artifacts" / "models" / "luvnet", models)
    path = models / "fold1" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    del ckpt["preprocessing"]
    torch.save(ckpt, path)
    with pytest.raises(EnsembleError, match="retrain"):
        load_ensemble(models)
    assert len(load_ensemble(trained / "artifacts" / "models" / "luvnet").folds) == 3


def test_pocus_labels_match_the_predicted_videos(predicted, external_dir):
    """The pseudonymous ids map back to the POCUS files only through the source hash ingest recorded."""
    _, out, _ = predicted
    index = pd.read_parquet(out / "index" / "videos.parquet")
    published = set(pd.read_parquet(out / "deid" / "videos.parquet")["video_id"])
    by_sha = {r["sha256"]: r for r in pocus_rows(external_dir).values()}
    found = sorted(Path(by_sha[sha]["file"]).name for v, sha in zip(index["video_id"], index["source_sha256"])
                   if v in published)
    assert found == sorted(name for _, name in POCUS)
    assert outputs.LS_COLUMNS == push.PREDICTION_COLUMNS
