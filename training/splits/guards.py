"""Leakage guards on a split. Pure functions on tables and frame arrays, no I/O.

A leak between roles makes cross-validation and test numbers optimistic (the POCUS repository's
warning: frame-level splits make the task "trivial"). Checked:
- a patient or a video in two roles, a clip listed twice or missing, a temporal clip outside the
  temporal set (errors);
- near-duplicate videos in two roles: the same loop exported twice, or under two pseudonyms (a
  patient registered twice), caught by a perceptual hash of the de-identified frames;
- a role whose labelled clips of a pattern are all one class (warning: AUROC and a validation
  threshold are undefined there; happens with few positive patients, e.g. on POCUS subsets).

The hash: frames are area-resized to a (4h, 4h) grid, the mean frame of all hashed videos is
subtracted (every lung-ultrasound video shares the bright fan and black surround, which otherwise
dominate the low frequencies and make different patients look alike), then the sign of the
(h, h) lowest 2-D DCT coefficients against their median (DC left out) gives h*h - 1 bits per frame.
Two videos' distance is the symmetric chamfer distance of their frame hashes (each frame to the
other video's nearest frame, averaged; the larger direction), so trimmed or re-encoded copies stay
close. On the synthetic demo (h=16, 255 bits, 16 frames) distinct videos of different patients
are >= 37 bits apart, copies with added noise and blur 13-15, exact copies 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import scipy.fft

from training.splits.grouped import TEMPORAL


@dataclass(frozen=True)
class Finding:
    """One guard result; severity 'error' fails the stage, 'warning' is reported."""

    kind: str  # patient_in_two_roles | video_in_two_roles | clip_duplicated | clip_missing | temporal_outside | ...
    subject: str  # the pseudonymous id(s) concerned
    detail: str
    severity: str = "error"


def role_conflicts(splits: pd.DataFrame) -> list[Finding]:
    """Patients and videos with clips in more than one role, and clip_ids listed more than once."""
    found = []
    for key, kind in (("patient_id", "patient_in_two_roles"), ("video_id", "video_in_two_roles")):
        roles = splits.groupby(key)["role"].unique()
        for subject, values in roles[roles.map(len) > 1].items():
            found.append(Finding(kind, str(subject), f"roles {sorted(map(str, values))}"))
    for clip in splits.loc[splits["clip_id"].duplicated(), "clip_id"].unique():
        found.append(Finding("clip_duplicated", str(clip), "listed more than once"))
    return found


def period_conflicts(splits: pd.DataFrame) -> list[Finding]:
    """Temporal clips outside the temporal set (error); development clips inside it (warning: a patient
    with both periods goes to temporal whole)."""
    found = []
    temporal = splits["period"].astype(str) == TEMPORAL
    outside = splits[temporal & (splits["role"] != TEMPORAL)]
    for video, rows in outside.groupby("video_id"):
        found.append(Finding("temporal_outside", str(video),
                             f"{len(rows)} temporal clip(s) in {sorted(set(rows['role']))}"))
    inside = splits[~temporal & (splits["role"] == TEMPORAL)]
    for patient, rows in inside.groupby("patient_id"):
        found.append(Finding("development_in_temporal", str(patient),
                             f"{len(rows)} development clip(s) in the temporal set (patient has both periods)",
                             "warning"))
    return found


def coverage(splits: pd.DataFrame, clip_ids: pd.Series) -> list[Finding]:
    """Every manifest clip has a role and the split names no other clip."""
    have, want = set(splits["clip_id"].astype(str)), set(clip_ids.astype(str))
    found = [Finding("clip_missing", c, "manifest clip without a role") for c in sorted(want - have)[:20]]
    found += [Finding("clip_unknown", c, "split clip not in the manifest") for c in sorted(have - want)[:20]]
    return found


def one_class_roles(clips: pd.DataFrame, splits: pd.DataFrame, patterns: tuple[str, ...]) -> list[Finding]:
    """Warnings where a role's labelled clips of a pattern are all negative or all positive.

    clips: grouped.clip_table (one float column per pattern, NaN = no label); splits: clip_id, role.
    There AUROC is undefined and a validation-fold threshold (Youden) cannot be chosen: few positive
    patients for that pattern (small or real-world data), not a leak.
    """
    table = clips[["clip_id", *patterns]].merge(splits[["clip_id", "role"]], on="clip_id")
    found = []
    for role, rows in table.groupby("role", sort=True):
        for pattern in patterns:
            labels = rows[pattern].dropna()
            if len(labels) and labels.nunique() == 1:
                lacking = "positive" if labels.iloc[0] == 0 else "negative"
                found.append(Finding("one_class_role", f"{role} {pattern}", f"{len(labels)} labelled clip(s), no "
                                     f"{lacking}: AUROC and a validation threshold are undefined there", "warning"))
    return found


def sample_indices(n_frames: int, n: int) -> np.ndarray:
    """(min(n, n_frames),) int frame indices spread evenly over a video of n_frames."""
    return np.unique(np.linspace(0, max(n_frames - 1, 0), min(n, max(n_frames, 1))).round().astype(int))


def _grid(frames: np.ndarray, hash_size: int) -> np.ndarray:
    """(n, H, W) uint8 -> (n, 4h, 4h) float32 area-resized frames."""
    side = 4 * hash_size
    return np.stack([cv2.resize(f.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA) for f in frames])


def video_hashes(frames: Mapping[str, np.ndarray], hash_size: int = 16) -> dict[str, np.ndarray]:
    """video_id -> (n, H, W) uint8 sampled frames  =>  video_id -> (n, ceil((h*h-1)/8)) uint8 packed hashes."""
    grids = {v: _grid(np.asarray(f), hash_size) for v, f in frames.items() if len(f)}
    if not grids:
        return {}
    mean = np.concatenate(list(grids.values())).mean(axis=0)
    out = {}
    for video, grid in grids.items():
        coeffs = scipy.fft.dctn(grid - mean, axes=(1, 2), norm="ortho")[:, :hash_size, :hash_size]
        coeffs = coeffs.reshape(len(grid), -1)[:, 1:]
        bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
        out[video] = np.packbits(bits, axis=1)
    return out


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> float:
    """(n, B) and (m, B) packed frame hashes -> symmetric chamfer Hamming distance in bits."""
    d = np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=-1)  # (n, m)
    return float(max(d.min(axis=1).mean(), d.min(axis=0).mean()))


def _stack(hashes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """V videos' (n_v, B) packed hashes -> ((V, n, ceil(B/8)) uint64, (V, n) bool real frames).

    Shorter videos are padded with copies of their first frame: a copy never changes a nearest-frame
    minimum, and the padded rows get no weight in the means. Bytes are regrouped into 64-bit words
    (8x fewer popcounts).
    """
    n, n_bytes = max(len(h) for h in hashes), hashes[0].shape[1]
    stacked = np.zeros((len(hashes), n, -(-n_bytes // 8) * 8), np.uint8)
    valid = np.zeros((len(hashes), n), bool)
    for i, h in enumerate(hashes):
        stacked[i, :, :n_bytes], valid[i, :len(h)] = h[0], True
        stacked[i, :len(h), :n_bytes] = h
    return stacked.view(np.uint64), valid


def _chamfer_row(stacked: np.ndarray, valid: np.ndarray, i: int) -> np.ndarray:
    """Chamfer distances of video i to videos i+1.. as (V-i-1,) float (vectorised chamfer_distance)."""
    d = np.bitwise_count(stacked[i][None, :, None, :] ^ stacked[i + 1:, None, :, :]).sum(axis=-1, dtype=np.uint16)
    own, other = valid[i], valid[i + 1:]  # (n,), (R, n)
    a = (d.min(axis=2) * own).sum(axis=1) / own.sum()  # each own frame to the other video's nearest frame
    b = (d.min(axis=1) * other).sum(axis=1) / other.sum(axis=1)
    return np.maximum(a, b)


def near_duplicates(hashes: Mapping[str, np.ndarray], roles: Mapping[str, str], max_distance: float,
                    severity: str = "error") -> list[Finding]:
    """Pairs of videos in different roles whose chamfer distance is <= max_distance.

    hashes: video_id -> packed hashes (video_hashes); roles: video_id -> role. O(V^2) pairs, one
    vectorised row per video: ~0.3 s for 200 videos, ~25 s for 2,000 (16 frames, 2 CPU cores).
    """
    videos = sorted(v for v in hashes if v in roles and len(hashes[v]))
    if len(videos) < 2:
        return []
    stacked, valid = _stack([hashes[v] for v in videos])
    role = np.array([roles[v] for v in videos])
    found = []
    for i in range(len(videos) - 1):
        dist = _chamfer_row(stacked, valid, i)
        for j in np.flatnonzero((dist <= max_distance) & (role[i + 1:] != role[i])):
            b = videos[i + 1 + j]
            found.append(Finding("near_duplicate_videos", f"{videos[i]} | {b}",
                                 f"{dist[j]:.1f} bits apart, roles {role[i]} and {role[i + 1 + j]}", severity))
    return found


def findings_table(findings: list[Finding]) -> pd.DataFrame:
    return pd.DataFrame([f.__dict__ for f in findings], columns=["kind", "subject", "detail", "severity"])
