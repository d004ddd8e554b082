"""Rank clips whose consensus label is likely wrong, per pattern, from held-out probabilities. No I/O.

Confident learning (Northcutt, Jiang & Chuang 2021, JAIR 70:1373) treats each pattern as its own
binary problem (a clip can show several patterns: multi-label = one binary problem per pattern) with
class probabilities [1 - p, p] from a model that did NOT train on the clip (out-of-fold for fold
clips, the fold ensemble for test clips). Per pattern:

- per-class thresholds t_c = mean probability of class c over the clips labelled c (the model's
  typical confidence for that class; makes the method robust to a model that is over- or
  under-confident for a rare pattern);
- label quality = self-confidence, the probability the model gives the GIVEN label (p for a clip
  labelled 1, 1 - p for one labelled 0); label_error_score = 1 - quality (higher = more likely wrong).
  For two classes the normalized margin (p_given - p_other = 2 quality - 1) ranks identically.
  Method "adjusted_self_confidence" first subtracts the class thresholds (Kuan & Mueller 2022,
  "Model-agnostic label quality scoring": q_c = p_c - t_c + max(t), renormalised), for a model that
  is systematically over- or under-confident about one class. On simulated data (tests) both rank at
  least 94 % of randomly flipped labels in the top 10 %; self-confidence is the default, as in cleanlab;
- likely_label_error = the clip falls off the diagonal of the confident joint: among the classes
  whose probability reaches its threshold (p_c >= t_c), the most probable is not the given label.

Why not cleanlab: its multi-label `find_label_issues` is AGPL-3.0, which would bind luskit's licence
(Apache-2.0) for a few lines of arithmetic; this module implements the published method directly and
adds no dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS, PATTERNS

Method = Literal["adjusted_self_confidence", "self_confidence"]


def class_thresholds(prob: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(2,) [t_0, t_1]: mean P(class c) over clips labelled c (NaN for a class without clips)."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(label).astype(bool)
    t0 = float(np.mean(1.0 - p[~y])) if (~y).any() else np.nan
    t1 = float(np.mean(p[y])) if y.any() else np.nan
    return np.array([t0, t1])


def label_quality(prob: np.ndarray, label: np.ndarray, method: Method = "self_confidence") -> np.ndarray:
    """(n,) in [0, 1]: how much the model believes the given label (module doc). prob, label (n,)."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(label).astype(bool)
    probs = np.column_stack([1.0 - p, p])
    if method == "adjusted_self_confidence":
        t = class_thresholds(p, y)
        t = np.where(np.isfinite(t), t, 0.0)  # a class nobody has: no adjustment for it
        probs = probs - t + t.max()
        probs = probs / probs.sum(axis=1, keepdims=True)
    elif method != "self_confidence":
        raise ValueError(f"label-error method {method!r}: use adjusted_self_confidence or self_confidence")
    return probs[np.arange(len(p)), y.astype(int)]


def off_diagonal(prob: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(n,) bool: the confident-joint class differs from the given label (module doc)."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(label).astype(bool)
    probs = np.column_stack([1.0 - p, p])
    t = class_thresholds(p, y)
    confident = probs >= np.where(np.isfinite(t), t, np.inf)  # (n, 2): class c is a confident candidate
    masked = np.where(confident, probs, -np.inf)
    has = confident.any(axis=1)
    return has & (masked.argmax(axis=1) != y.astype(int))


def rank_label_errors(prob: np.ndarray, label: np.ndarray, method: Method = "self_confidence"
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pattern: (score (n,) float, likely (n,) bool, rank (n,) int, 1 = most likely wrong).

    Ties in score are broken by input order (stable), so callers sort their rows first (e.g. clip_id).
    """
    score = 1.0 - label_quality(prob, label, method)
    likely = off_diagonal(prob, label)
    order = np.argsort(-score, kind="stable")
    rank = np.empty(len(score), dtype=np.int64)
    rank[order] = np.arange(1, len(score) + 1)
    return score, likely, rank


TABLE_COLUMNS = ("clip_id", "video_id", "patient_id", "period", "role", "set", "source", "pattern", "label", "prob",
                 "threshold", "label_quality", "label_error_score", "likely_label_error", "rank", "rank_fraction")
SOURCES = {"validation": "out_of_fold", "internal_test": "fold_ensemble", "temporal": "fold_ensemble"}


def label_error_table(rows: pd.DataFrame, method: Method = "self_confidence", patterns: Sequence[str] = PATTERNS,
                      slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """Per (clip, pattern), the label-error ranking of one model's held-out rows (one row per clip:
    out-of-fold for fold clips, the fold ensemble for test clips) -> DataFrame of TABLE_COLUMNS.

    Rows whose consensus is NA are kept (prob and threshold filled, the score NaN, rank NA): the queue
    shows them for "no consensus". Each ranked list uses ONE source of probabilities (`source`:
    out_of_fold = one fold model per clip, fold_ensemble = the average of all fold models, which is
    smoother and better calibrated, so mixing both in one list would rank by source as much as by
    label): rank counts within a (source, pattern) (1 = most likely wrong); rank_fraction = rank /
    labelled clips of that source and pattern. The class thresholds of confident learning are per list too.
    """
    base = rows.sort_values("clip_id", kind="stable").reset_index(drop=True)
    base["source"] = base["set"].map(SOURCES)
    parts = [_source_table(part, method, patterns, slugs) for _, part in base.groupby("source", sort=True)]
    if not parts:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(TABLE_COLUMNS)]


def _source_table(base: pd.DataFrame, method: Method, patterns: Sequence[str], slugs: Sequence[str]) -> pd.DataFrame:
    """label_error_table's rows for the clips of one probability source (base: sorted by clip_id)."""
    base = base.reset_index(drop=True)
    parts = []
    for name, slug in zip(patterns, slugs):
        label = base[f"label_{slug}"].astype("Int8")
        known = label.notna().to_numpy()
        prob = base[f"prob_{slug}"].to_numpy(np.float64)
        part = base[["clip_id", "video_id", "patient_id", "period", "role", "set", "source"]].copy()
        part["pattern"] = name
        part["label"] = label
        part["prob"] = prob
        part["threshold"] = base[f"thr_{slug}"].to_numpy(np.float64)
        quality = np.full(len(base), np.nan)
        likely = np.zeros(len(base), dtype=bool)
        rank = pd.array([pd.NA] * len(base), dtype="Int64")
        if known.any():
            y = label[known].to_numpy(dtype=int)
            score, flags, r = rank_label_errors(prob[known], y, method)
            quality[known], likely[known] = 1.0 - score, flags
            rank[np.flatnonzero(known)] = r
        part["label_quality"] = quality
        part["label_error_score"] = 1.0 - quality
        part["likely_label_error"] = likely
        part["rank"] = rank
        part["rank_fraction"] = rank.astype("Float64") / max(int(known.sum()), 1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
