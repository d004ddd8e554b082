"""Simulated prediction tables that follow the contract (artifacts/models/<m>/fold<k>/predictions.parquet),
generated from known labels and probabilities, and a temporary project laid out for the evaluate stage.

A study: patients with roles (fold0..fold{K-1}, internal_test, temporal), videos per patient, clips per
video; per clip and pattern a true label (patient-level prevalence, so clips of a patient are
correlated) and a consensus label (= truth, NA for a share of clips). A model with `separation` d
scores logit = d * (2y - 1) + patient effect + clip noise (shared by its fold models: a hard clip is
hard for all of them) + fold noise; fold model k scores fold k and both test sets; thresholds are per fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from luskit.schema import PATTERN_SLUGS

T = 8  # frames per clip (tiny)
SIZE = 16  # frame side in the simulated cache


def study(seed: int = 0, n_fold_patients: int = 10, n_test: int = 3, n_temporal: int = 3, n_folds: int = 5,
          videos: tuple[int, int] = (1, 3), clips: tuple[int, int] = (2, 5), prevalence=(0.5, 0.4, 0.3, 0.2),
          na_rate: float = 0.03) -> pd.DataFrame:
    """One row per clip: ids, role, window (start, end, n_real_frames), truth_<slug> (0/1), label_<slug> (Int8)."""
    rng = np.random.default_rng(seed)
    roles = [f"fold{i % n_folds}" for i in range(n_fold_patients)]
    roles += ["internal_test"] * n_test + ["temporal"] * n_temporal
    rows = []
    for p, role in enumerate(roles):
        patient = f"P{p:03d}"
        period = "temporal" if role == "temporal" else "development"
        prev = np.clip(rng.beta(2, 2, len(prevalence)) * 0.6 + np.asarray(prevalence) * 0.7 - 0.15, 0.02, 0.98)
        for v in range(int(rng.integers(videos[0], videos[1] + 1))):
            video = f"{patient}_V{v:02d}"
            n_clips = int(rng.integers(clips[0], clips[1] + 1))
            for c in range(n_clips):
                start = c * (T - 2)
                n_real = T if c < n_clips - 1 else int(rng.integers(2, T + 1))
                truth = (rng.random(len(prevalence)) < prev).astype(int)
                rows.append({"clip_id": f"{video}_c{c:03d}", "video_id": video, "patient_id": patient,
                             "period": period, "role": role, "clip_index": c, "start": start,
                             "end": start + n_real, "n_real_frames": n_real,
                             **{f"truth_{s}": t for s, t in zip(PATTERN_SLUGS, truth)}})
    out = pd.DataFrame(rows)
    for s in PATTERN_SLUGS:
        label = out[f"truth_{s}"].astype("Int8")
        label[rng.random(len(out)) < na_rate] = pd.NA
        out[f"label_{s}"] = label
    return out


def attention_vectors(n_real: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """(T,) float32 per clip: Dirichlet over the real frames, exactly 0 on padded frames."""
    out = []
    for n in n_real:
        w = np.zeros(T, dtype=np.float32)
        w[:n] = rng.dirichlet(np.ones(n))
        out.append(w)
    return out


def predictions(clips: pd.DataFrame, model: str, separation: float, seed: int, n_folds: int = 5,
                attention: bool = True, patient_sd: float = 0.7) -> dict[int, pd.DataFrame]:
    """fold k -> the fold model's prediction table (validation fold k + internal_test + temporal rows)."""
    rng = np.random.default_rng(seed)
    patients = clips["patient_id"].unique()
    effect = dict(zip(patients, rng.normal(0, patient_sd, len(patients))))  # the model's view of a patient
    clip_noise = {s: dict(zip(clips["clip_id"], rng.normal(0, 1.0, len(clips)))) for s in PATTERN_SLUGS}
    out = {}
    for k in range(n_folds):
        rows = clips[clips["role"].isin([f"fold{k}", "internal_test", "temporal"])].reset_index(drop=True)
        table = rows[["clip_id", "video_id", "patient_id", "period", "role"]].copy()
        table["set"] = np.where(rows["role"].str.startswith("fold"), "validation", rows["role"])
        table["fold"] = k
        table["model"] = model
        table["n_real_frames"] = rows["n_real_frames"].to_numpy()
        pe = rows["patient_id"].map(effect).to_numpy()
        for s in PATTERN_SLUGS:
            y = rows[f"truth_{s}"].to_numpy()
            # hard clips are hard for every fold model (shared noise); fold models differ a little
            logit = (separation * (2 * y - 1) + pe + rows["clip_id"].map(clip_noise[s]).to_numpy()
                     + rng.normal(0, 0.4, len(rows)) - 0.3)
            table[f"prob_{s}"] = (1 / (1 + np.exp(-logit))).astype(np.float32)
            table[f"label_{s}"] = rows[f"label_{s}"].astype("Int8").to_numpy()
            table[f"thr_{s}"] = float(rng.uniform(0.3, 0.6))
            table[f"attention_{s}"] = (attention_vectors(rows["n_real_frames"].to_numpy(), rng) if attention
                                       else [None] * len(rows))
        out[k] = table
    return out


def consensus_views(clips: pd.DataFrame, changed: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """The labels stage's consensus.parquet for a study: label = blind_label = the study's labels; reader_label
    differs from them on a `changed` share of the labelled test-clip pairs (what blind review changed)."""
    from luskit.schema import PATTERNS

    rng = np.random.default_rng(seed)
    parts = []
    for name, slug in zip(PATTERNS, PATTERN_SLUGS):
        label = clips[f"label_{slug}"].astype("Int8")
        reader = label.copy()
        flip = (clips["role"].isin(["internal_test", "temporal"]) & label.notna()).to_numpy() & (
            rng.random(len(clips)) < changed)
        reader[flip] = 1 - reader[flip]
        parts.append(pd.DataFrame({"clip_id": clips["clip_id"], "pattern": name, "label": label,
                                   "provenance": np.where(flip, "review (absent: x)", "majority"),
                                   "reader_label": reader, "blind_label": label, "n_assisted": 0}))
    return pd.concat(parts, ignore_index=True)


def write_project(root: Path, clips: pd.DataFrame, models: dict[str, float], seed: int = 0,
                  evaluate: dict | None = None, attention_models: tuple[str, ...] = ("luvnet",),
                  consensus: pd.DataFrame | None = None) -> Path:
    """A project folder with params.yaml, artifacts/models/<m>/fold<k>/predictions.parquet, the clip manifest
    and a tiny frame cache; models: name -> separation. Returns root."""
    root = Path(root)
    for i, (model, sep) in enumerate(models.items()):
        for k, table in predictions(clips, model, sep, seed + 100 * i, attention=model in attention_models).items():
            path = root / "artifacts" / "models" / model / f"fold{k}" / "predictions.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            table.to_parquet(path, index=False)
    cache = root / "artifacts" / "clips" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    manifest = clips[["clip_id", "video_id", "patient_id", "period", "clip_index", "start", "end",
                      "n_real_frames"]].copy()
    manifest["cache_file"] = "cache/" + manifest["video_id"] + ".npy"
    for video, part in manifest.groupby("video_id"):
        np.save(cache / f"{video}.npy", rng.integers(0, 256, (int(part["end"].max()), SIZE, SIZE), dtype=np.uint8))
    manifest.to_parquet(root / "artifacts" / "clips" / "manifest.parquet", index=False)
    if consensus is not None:
        (root / "artifacts" / "labels").mkdir(parents=True, exist_ok=True)
        consensus.to_parquet(root / "artifacts" / "labels" / "consensus.parquet", index=False)
    params = {"clips": {"length": T, "size": SIZE},
              "evaluate": {"models": list(models), "primary_model": next(iter(models)), "bootstrap": 200,
                           "measure_costs": False, **(evaluate or {})}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root
