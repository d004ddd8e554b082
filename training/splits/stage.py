"""The `split` stage: consensus labels + clip manifest (+ frame cache) -> artifacts/splits/.

Outputs (paths.SPLITS):
- splits.parquet: clip_id, video_id, patient_id, period, role; one row per manifest clip; role is
  `temporal` (every patient with a temporal clip), `internal_test` (a stratified patient group of
  split.test_fraction of the development patients, at least one) or fold0..fold{n_folds-1}
  (stratified cross-validation folds of the rest). All clips of a patient share one role.
- report.json (a DVC metric) and report.md: per role and pattern counts, the fold prevalence
  spread next to the seed's patient KFold on the same data, pattern-pair coverage, guard findings.

Stability (frozen.py): `luskit split freeze` copies the patients' roles to a new
data/splits/roles-<UTC stamp>.parquet; with `split.previous: latest` (the default) the stage reads the
newest one, the patients it names keep their roles whatever their labels, and only new patients are
dealt by the stratifier. `split.previous` may also name a frozen file under data/ ("" = none).
`split.reshuffle: true` re-deals everyone. report.json's "stability" says how many patients kept
their frozen role, moved, or are new; without any frozen file the stage warns that a label change
may re-deal patients. The stratifier reads the readers' labels (consensus reader_label), never reviewer
decisions, so even before a freeze a review decision cannot move a patient.

Exit codes: 0 done; 1 a guard failed (a patient, video or near-duplicate video in two roles, a
temporal clip in a fold): splits.parquet is not written (a stale one is removed) and the report
says why; 2 bad params or inputs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from luskit import paths
from luskit.atomic import write_bytes_atomic, write_parquet_atomic
from luskit.config import ConfigError, load_section, require
from luskit.schema import PATTERNS
from luskit.tables import read_table
from training.splits import frozen, grouped, guards, report

CONSENSUS = paths.CONSENSUS
MANIFEST = paths.CLIP_MANIFEST
SPLITS_TABLE = "splits.parquet"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
OUTPUTS = (SPLITS_TABLE, REPORT_MD)
METRICS = REPORT_JSON


@dataclass(frozen=True)
class SplitParams:
    """The `split:` section of params.yaml."""

    seed: int = 1234  # the seed's random_state; drives tie-breaks, restarts and the KFold comparison
    n_folds: int = 5
    test_fraction: float = 0.1  # internal test share of development patients (at least one patient)
    reshuffle: bool = False  # true: ignore `previous` and re-split every patient
    previous: str = "latest"  # frozen roles whose patients keep them: latest (newest data/splits/roles-*.parquet,
    # written by `luskit split freeze`), a file under data/, or "" (none)
    near_duplicates: Literal["fail", "warn"] = "fail"  # near-duplicate videos in two roles
    phash_size: int = 16  # DCT block side: h*h-1 hash bits per frame (16 -> 255 bits)
    phash_frames: int = 16  # frames hashed per video, spread evenly
    phash_max_distance: float = 20.0  # chamfer Hamming bits (of 255) at or below which two videos are duplicates
    repair_iterations: int = 200  # local-search steps per start
    restarts: int = 4  # extra random starts of the local search
    size_weight: float = 0.5  # cost of fold clip-count imbalance against prevalence deviation
    pair_weight: float = 0.02  # cost per fold lacking a co-occurring pattern pair
    max_swaps: int = 20000  # swap candidates scored per step

    def __post_init__(self) -> None:
        require(self.n_folds >= 2, f"n_folds={self.n_folds}: use 2 or more")
        require(0.0 < self.test_fraction < 0.5, f"test_fraction={self.test_fraction}: use a share in (0, 0.5)")
        require(self.previous in ("", frozen.LATEST) or Path(self.previous).parts[:1] == (paths.DATA.name,),
                f"previous={self.previous!r}: name a frozen copy under data/ (e.g. data/splits/splits-DATE.parquet), "
                "never the stage's own artifacts/splits/splits.parquet (DVC would see a cycle)")
        require(4 <= self.phash_size <= 32, f"phash_size={self.phash_size}: use 4..32 (16: 255-bit hashes)")
        require(self.phash_frames >= 1, f"phash_frames={self.phash_frames}: use 1 or more")
        require(self.phash_max_distance >= 0, f"phash_max_distance={self.phash_max_distance}: use 0 or more")
        require(min(self.repair_iterations, self.restarts) >= 0, "repair_iterations and restarts: use 0 or more")
        require(min(self.size_weight, self.pair_weight) >= 0, "size_weight and pair_weight: use 0 or more")
        require(self.max_swaps >= 0, f"max_swaps={self.max_swaps}: use 0 or more")

    @property
    def search(self) -> grouped.Search:
        return grouped.Search(iterations=self.repair_iterations, size_weight=self.size_weight,
                              pair_weight=self.pair_weight, max_swaps=self.max_swaps, restarts=self.restarts)


@dataclass(frozen=True)
class Inputs:
    manifest: pd.DataFrame  # the clip manifest (clip_id, video_id, patient_id, period, cache_file, ...)
    consensus: pd.DataFrame  # long consensus labels
    previous: dict[str, str] | None  # patient_id -> role of a frozen split that locks roles, or None
    frozen: dict[str, str] | None = None  # the frozen roles (also under reshuffle: to count who moved)
    frozen_file: str = ""  # where they came from ("" = no frozen assignment)


def read_inputs(params: SplitParams, manifest: Path = MANIFEST, consensus: Path = CONSENSUS) -> Inputs:
    """Read the manifest, the consensus labels and (unless reshuffle) the frozen previous split."""
    clips = read_table(manifest, ["clip_id", "video_id", "patient_id", "period", "cache_file"],
                  "run the clips stage first (luskit clips / dvc repro)")
    labels = read_table(consensus, ["clip_id", "pattern", "label"], "run the labels stage first (luskit labels / dvc repro)")
    if "reader_label" in labels:  # stratify on the readers' labels: a review decision never re-deals patients
        labels = labels.assign(label=labels["reader_label"])
    found, roles = frozen.resolve(params.previous), None
    if found is not None:
        table = read_table(found, ["patient_id", "role"],
                           "run `luskit split freeze` to freeze the current roles, or set split.previous to \"\"")
        try:
            roles = grouped.previous_roles(table)
        except ValueError as err:
            raise ValueError(f"{found}: {err}") from None
    return Inputs(clips, labels, None if params.reshuffle else roles, roles, str(found or ""))


def sampled_frames(manifest: pd.DataFrame, clips_dir: Path, n: int, progress: bool = True) -> dict[str, np.ndarray]:
    """video_id -> (k <= n, H, W) uint8 frames spread over the video's cache (memory-mapped reads)."""
    videos = manifest.drop_duplicates("video_id")[["video_id", "cache_file"]].astype(str)
    out = {}
    for video, rel in tqdm(list(videos.itertuples(index=False)), desc="split: hash", unit="video",
                           disable=not progress):
        path = Path(clips_dir) / rel
        if not path.exists():
            raise FileNotFoundError(f"{path} not found (frame cache of {video}): rerun the clips stage")
        cache = np.load(path, mmap_mode="r")
        out[video] = np.asarray(cache[guards.sample_indices(len(cache), n)])
    return out


@dataclass(frozen=True)
class Result:
    splits: pd.DataFrame
    report: dict
    findings: list[guards.Finding]


def run(inputs: Inputs, params: SplitParams, frames: dict[str, np.ndarray]) -> Result:
    """All of the stage's computation on read inputs; frames: sampled_frames (video_id -> frames)."""
    clips = grouped.clip_table(inputs.manifest, inputs.consensus, PATTERNS)
    pm = grouped.patient_matrix(clips, PATTERNS)
    roles, notes = grouped.assign_roles(pm, params.n_folds, params.test_fraction, params.seed, params.search,
                                        inputs.previous)
    splits = grouped.clip_roles(clips, pm.patients, roles)
    baseline = grouped.clip_roles(clips, pm.patients,
                                  grouped.seed_kfold_roles(pm, params.n_folds, params.test_fraction, params.seed))
    video_roles = splits.drop_duplicates("video_id").set_index("video_id")["role"].to_dict()
    hashes = guards.video_hashes(frames, params.phash_size)
    severity = "error" if params.near_duplicates == "fail" else "warning"
    findings = [*guards.role_conflicts(splits), *guards.period_conflicts(splits),
                *guards.coverage(splits, inputs.manifest["clip_id"]),
                *guards.near_duplicates(hashes, video_roles, params.phash_max_distance, severity),
                *guards.one_class_roles(clips, splits, PATTERNS)]
    body = report.build_report(clips, splits, baseline, PATTERNS, params.n_folds, params.seed, findings, notes)
    body["stability"] = {"frozen_file": inputs.frozen_file, "reshuffle": params.reshuffle,
                         **frozen.movement(inputs.frozen or {}, frozen.patient_roles(splits))}
    return Result(splits, body, findings)


def write_outputs(result: Result, out_dir: Path = paths.SPLITS) -> None:
    """Reports always; the splits table only when no guard failed (a stale one is removed)."""
    out_dir = Path(out_dir)
    write_bytes_atomic(out_dir / REPORT_JSON, (json.dumps(result.report, indent=2) + "\n").encode())
    write_bytes_atomic(out_dir / REPORT_MD, report.to_markdown(result.report, PATTERNS).encode())
    if any(f.severity == "error" for f in result.findings):
        (out_dir / SPLITS_TABLE).unlink(missing_ok=True)
    else:
        write_parquet_atomic(out_dir / SPLITS_TABLE, result.splits)


def summary_line(result: Result) -> str:
    counts = result.splits.groupby("role")["patient_id"].nunique()
    ours, seed = result.report["stratified"]["spread"], result.report["seed_kfold"]["spread"]
    return (f"split: {len(result.splits)} clips, {counts.sum()} patients -> "
            + ", ".join(f"{r} {n}" for r, n in counts.items())
            + f"; fold prevalence spread (mean of max |dev|) {ours['max_abs_dev_mean']} vs seed KFold "
              f"{seed['max_abs_dev_mean']} -> {paths.SPLITS}/")


def main(params_path: Path = paths.PARAMS, progress: bool = True) -> int:
    """Run the stage from the project folder; 0 done, 1 a leakage guard failed, 2 bad params or input."""
    try:
        params = load_section(Path(params_path), "split", SplitParams)
        inputs = read_inputs(params)
        frames = sampled_frames(inputs.manifest, paths.CLIPS, params.phash_frames, progress)
        result = run(inputs, params, frames)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_outputs(result)
    for f in result.findings:
        print(f"split: {f.severity}: {f.kind} {f.subject}: {f.detail}", file=sys.stderr)
    errors = [f for f in result.findings if f.severity == "error"]
    if errors:
        print(f"error: {len(errors)} leakage guard(s) failed (see {paths.SPLITS / REPORT_MD}); "
              f"{paths.SPLITS / SPLITS_TABLE} was not written. Near-duplicate videos: check whether they are the "
              "same patient (merge the pseudonyms) or the same loop exported twice (drop one), or set "
              "split.near_duplicates: warn after review.", file=sys.stderr)
        return 1
    print(summary_line(result))
    print(stability_line(result.report["stability"]), file=sys.stderr if not result.report["stability"]
          ["frozen_file"] else sys.stdout)
    return 0


def stability_line(st: dict) -> str:
    """One line on how the roles relate to the frozen assignment."""
    if not st["frozen_file"]:
        return ("split: warning: roles are not frozen, so a label change or review decision may re-deal patients: "
                "run `luskit split freeze` once the split is accepted")
    how = "re-dealt (split.reshuffle: true)" if st["reshuffle"] else "kept"
    return (f"split: roles from {st['frozen_file']} {how}: {st['moved']} of {st['frozen_patients']} frozen "
            f"patient(s) moved ({st['moved_into_folds_from_test']} from a test role into a fold), {st['new']} new "
            "patient(s) placed by the stratifier")


def freeze_main() -> int:
    """`luskit split freeze` from the project folder: 0 done (or nothing new to freeze), 2 no split to freeze."""
    try:
        _, message = frozen.freeze(paths.SPLITS / SPLITS_TABLE)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(message)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
