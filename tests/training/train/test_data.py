"""Clip table, dataset (cache, preload, resize), padding collate and clip-consistent augmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from luskit.schema import PATTERNS
from tests.training.train.project import LENGTH, make_project
from training.data.collate import pad_collate
from training.data.dataset import ClipDataset
from training.data.table import clip_table, fold_sets, labels_array, wide_labels
from training.data.transforms import augment_clips, augment_params, normalise, prepare_batch, resize_frames


def _item(n: int, value: int, labels=(1.0, 0.0, np.nan, 1.0)) -> dict:
    frames = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 1, 4, 4) + value
    raw = torch.tensor(labels)
    return {"frames": frames.clone(), "labels": torch.nan_to_num(raw), "known": ~torch.isnan(raw), "index": value}


def test_collate_pads_with_the_last_real_frame_and_masks_it():
    batch = pad_collate([_item(5, 10), _item(2, 50)], length=6)
    assert batch["frames"].shape == (2, 6, 1, 4, 4) and batch["frames"].dtype == torch.uint8
    assert batch["mask"].tolist() == [[True] * 5 + [False], [True, True] + [False] * 4]
    assert batch["n_real"].tolist() == [5, 2]
    assert batch["frames"][0, :, 0, 0, 0].tolist() == [10, 11, 12, 13, 14, 14]
    assert batch["frames"][1, :, 0, 0, 0].tolist() == [50, 51, 51, 51, 51, 51]
    assert batch["known"][0].tolist() == [True, True, False, True]
    assert batch["labels"][0].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert batch["index"].tolist() == [10, 50]
    assert pad_collate([_item(3, 0), _item(2, 1)])["frames"].shape[1] == 3  # no length: the longest clip


def test_collate_refuses_a_clip_longer_than_the_clip_length():
    with pytest.raises(ValueError, match="more than the clip length"):
        pad_collate([_item(7, 0)], length=6)


def test_clip_table_joins_roles_and_wide_labels_with_na(tmp_path):
    root = make_project(tmp_path)
    manifest = pd.read_parquet(root / "artifacts/clips/manifest.parquet")
    splits = pd.read_parquet(root / "artifacts/splits/splits.parquet")
    consensus = pd.read_parquet(root / "artifacts/labels/consensus.parquet")
    first = consensus["clip_id"].iloc[0]
    consensus.loc[(consensus["clip_id"] == first) & (consensus["pattern"] == PATTERNS[1]), "label"] = pd.NA
    dropped = consensus[~((consensus["clip_id"] == first) & (consensus["pattern"] == PATTERNS[2]))]
    table = clip_table(manifest, splits, dropped)
    assert len(table) == len(manifest) and table["label_a_lines"].dtype == "Int8"
    row = table.set_index("clip_id").loc[first]
    assert pd.isna(row["label_b_lines"]) and pd.isna(row["label_consolidation"])  # explicit NA and missing row
    assert np.isnan(labels_array(table[table["clip_id"] == first])[0, 1:3]).all()
    with pytest.raises(ValueError, match="stale"):
        clip_table(manifest.iloc[1:], splits, consensus)
    with pytest.raises(ValueError, match="unknown pattern"):
        wide_labels(consensus.assign(pattern="Pneumothorax"))


def test_fold_sets_train_on_other_folds_and_drop_unlabelled_training_clips(tmp_path):
    root = make_project(tmp_path)
    table = clip_table(pd.read_parquet(root / "artifacts/clips/manifest.parquet"),
                       pd.read_parquet(root / "artifacts/splits/splits.parquet"),
                       pd.read_parquet(root / "artifacts/labels/consensus.parquet"))
    unlabelled = table["role"].eq("fold1").idxmax()
    table.loc[unlabelled, [c for c in table if c.startswith("label_")]] = pd.NA
    sets = fold_sets(table, 0)
    assert set(sets["train"]["role"]) == {"fold1", "fold2"} and set(sets["validation"]["role"]) == {"fold0"}
    assert table.loc[unlabelled, "clip_id"] not in set(sets["train"]["clip_id"])
    assert len(sets["internal_test"]) == 6 and set(sets["temporal"]["role"]) == {"temporal"}
    with pytest.raises(ValueError, match="fold below split.n_folds"):
        fold_sets(table, 7)


def test_dataset_yields_real_frames_resized_identically_with_and_without_preload(tmp_path):
    root = make_project(tmp_path)
    table = clip_table(pd.read_parquet(root / "artifacts/clips/manifest.parquet"),
                       pd.read_parquet(root / "artifacts/splits/splits.parquet"),
                       pd.read_parquet(root / "artifacts/labels/consensus.parquet"))
    lazy = ClipDataset(table, root / "artifacts/clips", 12, preload=False)
    ram = ClipDataset(table, root / "artifacts/clips", 12, preload=True)
    for i in (0, 1, len(table) - 1):
        a, b = lazy[i], ram[i]
        assert a["frames"].shape == (table["n_real_frames"][i], 1, 12, 12) and a["frames"].dtype == torch.uint8
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["labels"], b["labels"])
    cache = np.load(root / "artifacts/clips" / table["cache_file"][1])
    full = ClipDataset(table, root / "artifacts/clips", 16)[1]["frames"][:, 0].numpy()
    assert np.array_equal(full, cache[table["start"][1]:table["end"][1]])  # same size: the cache's bytes
    batch = pad_collate([lazy[0], lazy[1]], LENGTH)
    assert batch["mask"].sum(1).tolist() == table["n_real_frames"][:2].tolist()


def test_resize_frames_keeps_uint8_range_and_mean():
    frames = torch.randint(0, 256, (3, 1, 64, 64), dtype=torch.uint8)
    small = resize_frames(frames, 16)
    assert small.shape == (3, 1, 16, 16) and small.dtype == torch.uint8
    assert abs(small.float().mean() - frames.float().mean()) < 2  # antialiased: the mean survives
    assert resize_frames(frames, 64) is frames


def test_normalise_uses_imagenet_statistics():
    white = torch.full((1, 1, 1, 2, 2), 255, dtype=torch.uint8)
    assert torch.allclose(normalise(white), torch.tensor((1 - 0.449) / 0.226), atol=1e-3)
    rgb = normalise(torch.zeros((1, 3, 2, 2), dtype=torch.uint8))
    assert torch.allclose(rgb[0, :, 0, 0], torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]))


def test_augmentation_is_the_same_for_every_frame_of_a_clip():
    torch.manual_seed(0)
    base = torch.rand(1, 1, 1, 24, 24)
    clip = base.expand(3, 6, 1, 24, 24).clone()  # 3 clips, 6 identical frames each
    flip, degrees = torch.tensor([True, False, True]), torch.tensor([0.0, 8.0, -6.5])
    out = augment_clips(clip, flip, degrees)
    for b in range(3):
        assert torch.equal(out[b], out[b, :1].expand_as(out[b]))  # every frame transformed identically
    assert torch.equal(out[0, 0], base[0, 0].flip(-1))  # flip only: exact
    for b in (1, 2):  # rotation = torchvision's rotate (counter-clockwise degrees) of each frame
        expected = TF.rotate(base[0, 0] if b == 1 else base[0, 0].flip(-1), float(degrees[b]),
                             interpolation=InterpolationMode.BILINEAR)
        assert torch.allclose(out[b, 3], expected, atol=1e-5)
    moving = torch.rand(2, 5, 1, 24, 24)
    per_frame = torch.stack([augment_clips(moving[:, t:t + 1], flip[:2], degrees[:2])[:, 0] for t in range(5)], 1)
    assert torch.allclose(augment_clips(moving, flip[:2], degrees[:2]), per_frame, atol=1e-6)


def test_augment_params_are_keyed_by_clip_not_by_batch():
    flip, degrees = augment_params(3, 1, torch.arange(2000), 0.5, 0.5, 10.0)
    alone = [augment_params(3, 1, torch.tensor([i]), 0.5, 0.5, 10.0) for i in (5, 1999)]
    assert [bool(f[0]) for f, _ in alone] == [bool(flip[5]), bool(flip[1999])]
    assert [float(d[0]) for _, d in alone] == [float(degrees[5]), float(degrees[1999])]
    assert 0.45 < flip.float().mean() < 0.55 and 0.45 < (degrees != 0).float().mean() < 0.55
    assert degrees.abs().max() <= 10.0 and degrees[degrees != 0].abs().min() < 1.0
    other_epoch, _ = augment_params(3, 2, torch.arange(2000), 0.5, 0.5, 10.0)
    assert not torch.equal(flip, other_epoch)
    frames = torch.randint(0, 256, (2, 3, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(prepare_batch(frames, torch.tensor([False, False]), torch.zeros(2)), prepare_batch(frames))
