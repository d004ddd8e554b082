"""Patient-grouped stratified splits: no leakage on random studies, better balance than the seed's
patient KFold, temporal separation, internal test size, determinism, stability, guards, the stage."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luskit import paths
from luskit.schema import PATTERNS
from training.splits import frozen, grouped, guards, report, stage

REPO = Path(__file__).resolve().parents[2]
FOLDS = [grouped.fold_role(k) for k in range(5)]


def make_clips(seed: int, n_dev: int, n_temporal: int = 0, clips: tuple[int, int] = (1, 12), skew: float = 0.0,
               nan_rate: float = 0.0, prevalence=(0.5, 0.4, 0.3, 0.1), mixed: int = 0) -> pd.DataFrame:
    """A clip_table: per-patient prevalence drawn around `prevalence` (skew > 0: a few patients carry
    most positives, as in real wards) and lognormal-ish clip counts when skew > 0."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_dev + n_temporal):
        n = int(rng.integers(clips[0], clips[1] + 1))
        if skew:
            n = int(min(clips[1], rng.lognormal(np.log(max(clips[0], 1) * 4), skew))) + clips[0]
            p = np.clip(np.asarray(prevalence) * rng.gamma(1 / skew, skew, 4), 0, 0.95)
        else:
            p = np.asarray(prevalence)
        labels = (rng.random((n, 4)) < p).astype(float)
        labels[rng.random((n, 4)) < nan_rate] = np.nan
        for c in range(n):
            period = "temporal" if i >= n_dev or (i < mixed and c == 0) else "development"
            rows.append((f"P{i:03d}_V{c // 4}_c{c:03d}", f"P{i:03d}_V{c // 4}{'t' if period == 'temporal' else ''}",
                         f"P{i:03d}", period, *labels[c]))
    return pd.DataFrame(rows, columns=["clip_id", "video_id", "patient_id", "period", *PATTERNS])


def roles_by_patient(splits: pd.DataFrame) -> pd.Series:
    return splits.drop_duplicates("patient_id").set_index("patient_id")["role"]


def spread_of(clips: pd.DataFrame, splits: pd.DataFrame) -> float:
    labelled = clips.assign(role=splits.set_index("clip_id")["role"].reindex(clips["clip_id"]).to_numpy())
    stats = report.role_stats(labelled, PATTERNS, 5)
    return report.spread(stats, PATTERNS, 5)["max_abs_dev_mean"]


# ---- leakage and roles on random studies ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_dev=st.integers(1, 30), n_temporal=st.integers(0, 4),
       max_clips=st.integers(1, 15), n_folds=st.integers(2, 6), test_fraction=st.floats(0.01, 0.45),
       nan_rate=st.sampled_from([0.0, 0.2, 1.0]), skew=st.sampled_from([0.0, 1.0]),
       prevalence=st.tuples(*[st.sampled_from([0.0, 0.05, 0.5, 1.0])] * 4))
def test_every_clip_one_role_and_no_patient_overlap(seed, n_dev, n_temporal, max_clips, n_folds, test_fraction,
                                                   nan_rate, skew, prevalence):
    clips = make_clips(seed, n_dev, n_temporal, (1, max_clips), skew, nan_rate, prevalence)
    n_test = grouped.n_internal_test(n_dev, test_fraction)
    search = grouped.Search(iterations=50, restarts=2)
    if n_dev < n_test + n_folds:
        with pytest.raises(ValueError, match=r"need \d+ or more; lower split.n_folds"):
            grouped.make_split(clips, PATTERNS, n_folds, test_fraction, seed, search)
        return
    splits, _ = grouped.make_split(clips, PATTERNS, n_folds, test_fraction, seed, search)
    assert sorted(splits["clip_id"]) == sorted(clips["clip_id"])  # every clip exactly once
    assert splits.groupby("patient_id")["role"].nunique().max() == 1  # zero patient overlap
    folds = [grouped.fold_role(k) for k in range(n_folds)]
    assert set(splits["role"]) == {grouped.INTERNAL_TEST, *folds} | ({"temporal"} if n_temporal else set())
    assert (splits.loc[splits["period"] == "temporal", "role"] == "temporal").all()
    assert (splits.loc[splits["period"] == "development", "role"] != "temporal").all()
    assert (roles_by_patient(splits) == grouped.INTERNAL_TEST).sum() == n_test
    assert not [f for f in guards.role_conflicts(splits) + guards.period_conflicts(splits)
                if f.severity == "error"]


def test_fewer_patients_than_folds_is_a_clear_error():
    clips = make_clips(0, n_dev=5, n_temporal=3)
    with pytest.raises(ValueError, match=r"5 development patient\(s\) cannot fill .* 1 and 5 folds.*need 6"):
        grouped.make_split(clips, PATTERNS, 5, 0.1, 1)
    with pytest.raises(ValueError, match="need 6"):
        grouped.seed_kfold_roles(grouped.patient_matrix(clips, PATTERNS), 5, 0.1, 1)
    with pytest.raises(ValueError, match="need"):
        grouped.make_split(make_clips(0, n_dev=0, n_temporal=2), PATTERNS, 2, 0.1, 1)


def test_patient_with_both_periods_goes_to_temporal_whole():
    clips = make_clips(3, n_dev=12, n_temporal=2, mixed=2)
    splits, notes = grouped.make_split(clips, PATTERNS, 5, 0.1, 3)
    assert set(roles_by_patient(splits)[["P000", "P001"]]) == {"temporal"}
    assert any("development and temporal" in n for n in notes)
    found = guards.period_conflicts(splits)
    assert {f.kind for f in found} == {"development_in_temporal"} and all(f.severity == "warning" for f in found)


@pytest.mark.parametrize("n_dev", [8, 10, 23, 41, 77])
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3])
def test_internal_test_size_within_one_patient(n_dev, fraction):
    if n_dev < grouped.n_internal_test(n_dev, fraction) + 5:
        pytest.skip("too few patients for 5 folds")
    splits, _ = grouped.make_split(make_clips(n_dev, n_dev, 2), PATTERNS, 5, fraction, 0,
                                   grouped.Search(iterations=30, restarts=0))
    n_test = (roles_by_patient(splits) == grouped.INTERNAL_TEST).sum()
    assert n_test >= 1 and abs(n_test - fraction * n_dev) <= 1


# ---- balance -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prevalence_spread_clearly_better_than_patient_kfold(seed):
    clips = make_clips(seed, n_dev=60, n_temporal=5, clips=(2, 60), skew=1.0, prevalence=(0.5, 0.35, 0.2, 0.06))
    splits, _ = grouped.make_split(clips, PATTERNS, 5, 0.1, seed)
    pm = grouped.patient_matrix(clips, PATTERNS)
    baseline = grouped.clip_roles(clips, pm.patients, grouped.seed_kfold_roles(pm, 5, 0.1, seed))
    ours, seeds = spread_of(clips, splits), spread_of(clips, baseline)
    assert ours <= 0.5 * seeds, (ours, seeds)
    sizes = splits[splits["role"].isin(FOLDS)].groupby("role").size()
    assert sizes.max() <= 1.5 * sizes.min()  # balanced prevalence not bought with lopsided folds


def test_report_compares_with_seed_kfold_and_covers_pairs():
    clips = make_clips(5, n_dev=40, n_temporal=4, clips=(2, 40), skew=1.0)
    splits, notes = grouped.make_split(clips, PATTERNS, 5, 0.1, 5)
    pm = grouped.patient_matrix(clips, PATTERNS)
    baseline = grouped.clip_roles(clips, pm.patients, grouped.seed_kfold_roles(pm, 5, 0.1, 5))
    body = report.build_report(clips, splits, baseline, PATTERNS, 5, 5, [], notes)
    json.dumps(body, allow_nan=False)  # a valid DVC metric file
    assert body["spread_ratio"] < 1
    roles = body["stratified"]["roles"]
    assert sum(roles[f]["clips"] for f in FOLDS) == roles[report.POOL]["clips"]
    assert roles["temporal"]["patients"] == 4 and roles[grouped.INTERNAL_TEST]["patients"] == 4
    for pair, entry in body["stratified"]["pairs"].items():
        assert entry["folds_with_pair"] >= body["seed_kfold"]["pairs"].get(pair, {"folds_with_pair": 0})[
            "folds_with_pair"] - 1
    md = report.to_markdown(body, PATTERNS)
    assert "seed KFold: max dev" in md and "| fold4 |" in md and "A-lines + B-lines" in md


# ---- determinism and stability ------------------------------------------------------------------------------


def test_deterministic_and_independent_of_row_order():
    clips = make_clips(11, n_dev=30, n_temporal=3, skew=1.0)
    first, _ = grouped.make_split(clips, PATTERNS, 5, 0.1, 42)
    again, _ = grouped.make_split(clips, PATTERNS, 5, 0.1, 42)
    shuffled, _ = grouped.make_split(clips.sample(frac=1, random_state=3), PATTERNS, 5, 0.1, 42)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_series_equal(roles_by_patient(first).sort_index(), roles_by_patient(shuffled).sort_index())
    others = [roles_by_patient(grouped.make_split(clips, PATTERNS, 5, 0.1, s)[0]) for s in (1, 2, 3)]
    assert any(not o.equals(roles_by_patient(first)) for o in others)  # the seed matters


def test_existing_patients_keep_their_roles_when_patients_are_added():
    old = make_clips(7, n_dev=30, n_temporal=3, skew=1.0)
    first, _ = grouped.make_split(old, PATTERNS, 5, 0.1, 7)
    previous = grouped.previous_roles(first)
    grown = pd.concat([old, make_clips(8, n_dev=45, n_temporal=0, skew=1.0).iloc[::-1]
                      .assign(patient_id=lambda d: "N" + d["patient_id"], clip_id=lambda d: "N" + d["clip_id"],
                              video_id=lambda d: "N" + d["video_id"])])
    grown = grown[~grown["patient_id"].isin([f"NP{i:03d}" for i in range(30)])]  # 15 new patients
    second, notes = grouped.make_split(grown, PATTERNS, 5, 0.1, 7, previous=previous)
    after = roles_by_patient(second)
    assert (after[list(previous)] == pd.Series(previous)).all()
    new = after[after.index.str.startswith("N")]
    assert len(new) == 15 and set(new) <= {grouped.INTERNAL_TEST, *FOLDS}
    n_test = (after == grouped.INTERNAL_TEST).sum()
    assert n_test == grouped.n_internal_test(45, 0.1)  # 3 old + 2 new: the test group grows with the study
    reshuffled, _ = grouped.make_split(grown, PATTERNS, 5, 0.1, 7)
    assert not roles_by_patient(reshuffled).equals(after)


def test_previous_split_with_other_fold_count_asks_for_reshuffle():
    clips = make_clips(1, n_dev=20)
    first, _ = grouped.make_split(clips, PATTERNS, 5, 0.1, 1)
    with pytest.raises(ValueError, match="reshuffle"):
        grouped.make_split(clips, PATTERNS, 3, 0.1, 1, previous=grouped.previous_roles(first))
    leaky = first.copy()
    leaky.loc[leaky.index[:1], "role"] = "fold4" if leaky["role"].iloc[0] != "fold4" else "fold3"
    leaky = pd.concat([leaky, first.iloc[1:2].assign(role="internal_test")])
    with pytest.raises(ValueError, match="two roles"):
        grouped.previous_roles(leaky.assign(patient_id=first["patient_id"].iloc[0]))


# ---- guards -------------------------------------------------------------------------------------------------


def test_guards_catch_a_planted_patient_and_video_leak():
    clips = make_clips(2, n_dev=20, n_temporal=2)
    splits, _ = grouped.make_split(clips, PATTERNS, 5, 0.1, 2)
    assert guards.role_conflicts(splits) == [] and guards.coverage(splits, clips["clip_id"]) == []
    leak = splits.copy()
    row = leak.index[leak["role"] == "fold0"][0]
    leak.loc[row, "role"] = "fold1"
    kinds = {f.kind for f in guards.role_conflicts(leak)}
    assert kinds == {"patient_in_two_roles", "video_in_two_roles"}
    temporal = splits.copy()
    temporal.loc[temporal.index[temporal["period"] == "temporal"][:1], "role"] = "fold2"
    assert "temporal_outside" in {f.kind for f in guards.period_conflicts(temporal)}
    assert {f.kind for f in guards.coverage(splits.iloc[1:], clips["clip_id"])} == {"clip_missing"}


def fan_video(rng: np.random.Generator, n_frames: int = 40, size: int = 64) -> np.ndarray:
    """(T, size, size) uint8: a shared fan-shaped mask over video-specific speckle that drifts slowly
    (real speckle moves with the tissue, it is not new noise in every frame) plus a little noise."""
    yy, xx = np.mgrid[:size, :size]
    fan = (np.hypot(yy, xx - size / 2) < size * 0.95) & (np.abs(xx - size / 2) < yy * 0.9 + 3)
    tissue = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.5)
    tissue = (tissue - tissue.min()) / np.ptp(tissue)
    frames = []
    for t in range(n_frames):
        moving = np.roll(tissue, t // 4, axis=0) * 150 + rng.normal(0, 3, (size, size)) + 40
        frames.append(np.where(fan, np.clip(moving, 0, 255), 0))
    return np.stack(frames).astype(np.uint8)


def test_near_duplicate_guard_catches_a_copied_video_under_another_patient():
    rng = np.random.default_rng(0)
    videos = {f"P{i}_V{j}": fan_video(rng) for i in range(6) for j in range(2)}
    roles = {v: grouped.fold_role(int(v[1]) % 5) for v in videos}
    videos["P9_Vcopy"] = videos["P0_V0"].copy()  # the same loop under another patient, in another role
    noisy = np.clip(videos["P1_V1"][5:].astype(int) + rng.normal(0, 6, videos["P1_V1"][5:].shape), 0, 255)
    videos["P8_Vnoisy"] = noisy.astype(np.uint8)  # re-encoded, trimmed copy
    roles.update({"P9_Vcopy": grouped.INTERNAL_TEST, "P8_Vnoisy": grouped.TEMPORAL})
    sampled = {v: f[guards.sample_indices(len(f), 16)] for v, f in videos.items()}
    hashes = guards.video_hashes(sampled, 16)
    found = guards.near_duplicates(hashes, roles, 20.0)
    assert {f.subject for f in found} == {"P0_V0 | P9_Vcopy", "P1_V1 | P8_Vnoisy"}
    assert all(f.severity == "error" for f in found)
    assert guards.chamfer_distance(hashes["P0_V0"], hashes["P9_Vcopy"]) == 0
    roles["P9_Vcopy"] = roles["P0_V0"]  # same role: not a leak
    assert {f.subject for f in guards.near_duplicates(hashes, roles, 20.0, "warning")} == {"P1_V1 | P8_Vnoisy"}


# ---- the stage ----------------------------------------------------------------------------------------------


def _project(root: Path, clips: pd.DataFrame, **split) -> Path:
    """A project folder: manifest + frame cache + consensus for `clips`, and params.yaml."""
    rng = np.random.default_rng(0)
    (root / paths.CLIPS / "cache").mkdir(parents=True)
    for video in clips["video_id"].unique():
        np.save(root / paths.CLIPS / "cache" / f"{video}.npy", fan_video(rng, 12, 32))
    manifest = clips[["clip_id", "video_id", "patient_id", "period"]].assign(
        cache_file="cache/" + clips["video_id"] + ".npy")
    manifest.to_parquet(root / stage.MANIFEST, index=False)
    long = clips.melt(id_vars=["clip_id", "video_id", "patient_id", "period"], value_vars=list(PATTERNS),
                      var_name="pattern", value_name="label")
    long["label"] = pd.array(long["label"], dtype="Float64").astype("Int8")
    (root / paths.LABELS).mkdir(parents=True)
    long.assign(method="majority").to_parquet(root / stage.CONSENSUS, index=False)
    params = {**yaml.safe_load((REPO / "params.yaml").read_text())["split"], **split}
    (root / "params.yaml").write_text(yaml.safe_dump({"split": params}))
    return root


def test_stage_writes_split_and_report_then_fails_on_a_planted_duplicate(tmp_path, monkeypatch, capsys):
    clips = make_clips(4, n_dev=14, n_temporal=2, clips=(2, 10), skew=1.0)
    root = _project(tmp_path, clips)
    monkeypatch.chdir(root)
    assert stage.main(progress=False) == 0
    splits = pd.read_parquet(paths.SPLITS / stage.SPLITS_TABLE)
    assert list(splits.columns) == ["clip_id", "video_id", "patient_id", "period", "role"]
    assert splits.groupby("patient_id")["role"].nunique().max() == 1 and len(splits) == len(clips)
    body = json.loads((paths.SPLITS / stage.REPORT_JSON).read_text())
    assert body["guards"]["errors"] == 0 and body["seed_kfold"]["spread"]["max_abs_dev_mean"] is not None
    assert "seed KFold" in (paths.SPLITS / stage.REPORT_MD).read_text()
    # Plant: a video of a test-set patient copied under a fold patient.
    by_patient = roles_by_patient(splits)
    donor = splits[splits["role"] == grouped.INTERNAL_TEST].iloc[0]
    host = by_patient[by_patient == "fold0"].index[0]
    cache = paths.CLIPS / "cache"
    (cache / f"{host}_Vdup.npy").write_bytes((cache / f"{donor['video_id']}.npy").read_bytes())
    manifest = pd.read_parquet(stage.MANIFEST)
    extra = pd.DataFrame({"clip_id": [f"{host}_Vdup_c000"], "video_id": [f"{host}_Vdup"], "patient_id": [host],
                          "period": ["development"], "cache_file": [f"cache/{host}_Vdup.npy"]})
    pd.concat([manifest, extra]).to_parquet(stage.MANIFEST, index=False)
    assert stage.main(progress=False) == 1
    assert not (paths.SPLITS / stage.SPLITS_TABLE).exists()
    err = capsys.readouterr().err
    assert "near_duplicate_videos" in err and f"{host}_Vdup" in err and "split.near_duplicates: warn" in err
    body = json.loads((paths.SPLITS / stage.REPORT_JSON).read_text())
    assert body["guards"]["near_duplicate_pairs"] == 1
    _project_params(root, near_duplicates="warn")
    assert stage.main(progress=False) == 0 and (paths.SPLITS / stage.SPLITS_TABLE).exists()


def _project_params(root: Path, **split) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["split"].update(split)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_stage_bad_inputs_and_params_are_one_line_errors(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path, make_clips(1, n_dev=3, n_temporal=1))
    monkeypatch.chdir(root)
    assert stage.main(progress=False) == 2
    assert "lower split.n_folds" in capsys.readouterr().err
    _project_params(root, previous="artifacts/splits/splits.parquet")
    assert stage.main(progress=False) == 2
    assert "never the stage's own" in capsys.readouterr().err
    _project_params(root, previous="data/splits/frozen.parquet")
    assert stage.main(progress=False) == 2
    assert "data/splits/frozen.parquet not found" in capsys.readouterr().err
    (root / stage.CONSENSUS).unlink()
    assert stage.main(progress=False) == 2
    assert "run the labels stage" in capsys.readouterr().err


def test_stage_keeps_roles_from_a_frozen_previous_split(tmp_path, monkeypatch):
    clips = make_clips(6, n_dev=16, n_temporal=2)
    root = _project(tmp_path, clips)
    monkeypatch.chdir(root)
    assert stage.main(progress=False) == 0
    frozen = root / "data" / "splits" / "splits-1.parquet"
    frozen.parent.mkdir(parents=True)
    frozen.write_bytes((paths.SPLITS / stage.SPLITS_TABLE).read_bytes())
    before = roles_by_patient(pd.read_parquet(frozen))
    _project_params(root, previous="data/splits/splits-1.parquet", seed=99)
    assert stage.main(progress=False) == 0
    after = roles_by_patient(pd.read_parquet(paths.SPLITS / stage.SPLITS_TABLE))
    pd.testing.assert_series_equal(before.sort_index(), after.sort_index())


def _consensus_of(clips: pd.DataFrame) -> pd.DataFrame:
    long = clips.melt(id_vars=["clip_id", "video_id", "patient_id", "period"], value_vars=list(PATTERNS),
                      var_name="pattern", value_name="label")
    long["label"] = pd.array(long["label"], dtype="Float64").astype("Int8")
    return long


STABLE = make_clips(11, n_dev=30, n_temporal=3, clips=(2, 10), skew=1.0)
STABLE_SEARCH = grouped.Search(iterations=30, restarts=1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=st.integers(0, len(STABLE) - 1), column=st.sampled_from(PATTERNS), extra=st.integers(0, 3))
def test_flip_any_label_and_no_frozen_patient_moves(row, column, extra):
    """The property: once roles are frozen, flipping any clip-pattern label (and dealing up to 3 new patients)
    moves 0 of the frozen patients; the stage's movement count says so."""
    first, _ = grouped.make_split(STABLE, PATTERNS, 5, 0.1, 3, STABLE_SEARCH)
    frozen_roles = frozen.patient_roles(first)
    previous = dict(zip(frozen_roles["patient_id"], frozen_roles["role"]))
    flipped = STABLE.copy()
    value = flipped.loc[row, column]
    flipped.loc[row, column] = 1.0 if np.isnan(value) else 1.0 - value
    new = make_clips(50 + extra, n_dev=extra, clips=(2, 6)).assign(
        patient_id=lambda t: "N" + t["patient_id"], clip_id=lambda t: "N" + t["clip_id"],
        video_id=lambda t: "N" + t["video_id"])
    second, _ = grouped.make_split(pd.concat([flipped, new], ignore_index=True), PATTERNS, 5, 0.1, 3, STABLE_SEARCH,
                                   previous=previous)
    moved = frozen.movement(previous, frozen.patient_roles(second))
    assert moved["moved"] == 0 and moved["kept"] == len(previous) and moved["new"] == extra


def test_without_frozen_roles_one_label_change_can_re_deal_patients():
    """Why roles are frozen: without them the stratifier re-deals on a label change (the issue's finding)."""
    first, _ = grouped.make_split(STABLE, PATTERNS, 5, 0.1, 3, STABLE_SEARCH)
    before = frozen.patient_roles(first)
    moves = []
    for row in range(0, len(STABLE), max(1, len(STABLE) // 10)):
        flipped = STABLE.copy()
        flipped.loc[row, "B-lines"] = 1.0 - flipped.loc[row, "B-lines"]
        again, _ = grouped.make_split(flipped, PATTERNS, 5, 0.1, 3, STABLE_SEARCH)
        moves.append(frozen.movement(dict(zip(before["patient_id"], before["role"])),
                                     frozen.patient_roles(again))["moved"])
    assert max(moves) > 0, moves


def test_before_any_freeze_a_review_decision_moves_nobody(tmp_path, monkeypatch):
    """The stratifier reads reader_label: a reviewer's decision changes `label` only, so roles stay put."""
    clips = make_clips(6, n_dev=16, n_temporal=2)
    root = _project(tmp_path, clips)
    cons = pd.read_parquet(root / stage.CONSENSUS)
    cons.assign(reader_label=cons["label"]).to_parquet(root / stage.CONSENSUS, index=False)
    monkeypatch.chdir(root)
    assert stage.main(progress=False) == 0
    before = roles_by_patient(pd.read_parquet(paths.SPLITS / stage.SPLITS_TABLE))
    cons = pd.read_parquet(stage.CONSENSUS)
    cons["label"] = (1 - cons["label"]).astype("Int8")  # every decision flips a label: reader labels unchanged
    cons.to_parquet(stage.CONSENSUS, index=False)
    assert stage.main(progress=False) == 0
    after = roles_by_patient(pd.read_parquet(paths.SPLITS / stage.SPLITS_TABLE))
    pd.testing.assert_series_equal(before.sort_index(), after.sort_index())


def test_freeze_command_then_the_stage_keeps_roles_and_reports_who_moved(tmp_path, monkeypatch, capsys):
    clips = make_clips(6, n_dev=16, n_temporal=2)
    root = _project(tmp_path, clips)
    monkeypatch.chdir(root)
    assert stage.main(progress=False) == 0
    assert "roles are not frozen" in capsys.readouterr().err
    body = json.loads((paths.SPLITS / stage.REPORT_JSON).read_text())
    assert body["stability"]["frozen_file"] == "" and body["stability"]["new"] == clips["patient_id"].nunique()
    assert stage.freeze_main() == 0
    files = frozen.frozen_files()
    assert len(files) == 1 and files[0].name.startswith("roles-") and "split freeze:" in capsys.readouterr().out
    import subprocess
    import sys

    again = subprocess.run([sys.executable, "-m", "luskit.cli", "split", "freeze"], cwd=root, capture_output=True,
                           text=True, timeout=120)  # the command a person types
    assert again.returncode == 0 and "nothing written" in again.stdout, again.stderr[-2000:]
    assert len(frozen.frozen_files()) == 1  # same roles: nothing new written
    before = roles_by_patient(pd.read_parquet(paths.SPLITS / stage.SPLITS_TABLE))
    # every label of the first fold-0 patient flips, and the seed changes: nobody moves
    patient = before[before == "fold0"].index[0]
    cons = pd.read_parquet(stage.CONSENSUS)
    at = cons["patient_id"] == patient
    cons.loc[at, "label"] = (1 - cons.loc[at, "label"]).astype("Int8")
    cons.to_parquet(stage.CONSENSUS, index=False)
    _project_params(root, seed=99)
    assert stage.main(progress=False) == 0
    after = roles_by_patient(pd.read_parquet(paths.SPLITS / stage.SPLITS_TABLE))
    pd.testing.assert_series_equal(before.sort_index(), after.sort_index())
    st_ = json.loads((paths.SPLITS / stage.REPORT_JSON).read_text())["stability"]
    assert (st_["moved"], st_["kept"], st_["new"]) == (0, len(before), 0) and st_["frozen_file"] == str(files[0])
    assert "0 of 18 frozen patient(s) moved" in capsys.readouterr().out
    assert "## Stability" in (paths.SPLITS / stage.REPORT_MD).read_text()
    _project_params(root, reshuffle=True)  # re-dealing only on request, and the report counts who moved
    assert stage.main(progress=False) == 0
    st_ = json.loads((paths.SPLITS / stage.REPORT_JSON).read_text())["stability"]
    assert st_["reshuffle"] and st_["moved"] + st_["kept"] == len(before) and "re-dealt" in capsys.readouterr().out


def test_params_and_dvc_stage_agree_with_the_code():
    params = yaml.safe_load((REPO / "params.yaml").read_text())["split"]
    assert set(params) == {f.name for f in dataclasses.fields(stage.SplitParams)}
    assert stage.SplitParams(**params) == stage.SplitParams()  # the defaults are what params.yaml ships
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["split"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in dvc["outs"] + dvc["metrics"]}
    assert outs == {str(paths.SPLITS / n) for n in (*stage.OUTPUTS, stage.METRICS)}
    assert dvc["cmd"] == "luskit split" and dvc["params"] == ["split"]
    assert {str(p) for p in (stage.CONSENSUS, stage.MANIFEST, paths.CLIPS / "cache")} <= set(dvc["deps"])
    assert not any(d.startswith(str(paths.SPLITS)) for d in dvc["deps"])  # no cycle through a previous split



def test_one_class_roles_are_warned_not_failed():
    # Few positive patients (real small datasets): a role may hold no positive (or no negative) clip of a pattern,
    # which leaves AUROC and the validation threshold undefined there: a warning, never an error.
    effusion = {"P0": [1, 1], "P1": [0, 0], "P2": [1, 0], "P3": [np.nan, np.nan], "P4": [0, 0]}
    role = {"P0": "fold0", "P1": "fold1", "P2": "fold1", "P3": "internal_test", "P4": "fold2"}
    rows = [(f"{p}_V0_c{c}", f"{p}_V0", p, "development", c % 2, (c + 1) % 2, 1 - c % 2, y)
            for p, ys in effusion.items() for c, y in enumerate(ys)]
    clips = pd.DataFrame(rows, columns=["clip_id", "video_id", "patient_id", "period", *PATTERNS])
    splits = clips[["clip_id", "video_id", "patient_id", "period"]].assign(role=clips["patient_id"].map(role))
    found = guards.one_class_roles(clips, splits, PATTERNS)
    assert {(f.subject, f.detail.split(": ")[0]) for f in found} == {
        ("fold0 Pleural effusion", "2 labelled clip(s), no negative"),
        ("fold2 Pleural effusion", "2 labelled clip(s), no positive")}
    assert all(f.severity == "warning" and f.kind == "one_class_role" for f in found)
    assert not [f for f in guards.one_class_roles(clips.assign(**{"Pleural effusion": [1, 0] * 5}), splits, PATTERNS)
                if f.subject.endswith("effusion")]
