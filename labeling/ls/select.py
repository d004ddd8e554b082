"""`luskit label select`: which unlabelled videos a reader should see next, from `luskit predict`'s output.

Reads OUT/predictions/videos.parquet (the fold ensemble per video: prob_<slug>, thr_<slug>) and
videos_folds.parquet (each fold model per video). Strategies, each a score per video (higher = pick first):
- ``uncertainty``: how close the ensemble's video probability is to the development threshold, for the pattern
  where it is closest: max over patterns of 1 - |p - thr| / (thr if p < thr else 1 - thr), in [0, 1];
- ``disagreement``: how much the fold models disagree: max over patterns of the standard deviation of the fold
  models' video probabilities (needs 2 or more fold models);
- ``random``: a seeded random order (the baseline any active-learning claim should beat).
Videos already labelled (named by a Label Studio snapshot, a folder of them, or a list) are left out. The
output is a CSV (video_id, rank, strategy, score) that `luskit label push --videos` takes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from luskit.atomic import write_bytes_atomic
from luskit.schema import PATTERN_SLUGS

STRATEGIES = ("uncertainty", "disagreement", "random")
SELECTION_COLUMNS = ("video_id", "rank", "strategy", "score")


class SelectError(ValueError):
    """Bad input for select; the message names the file and the fix."""


def uncertainty(videos: pd.DataFrame) -> pd.Series:
    """(video_id-indexed) max over patterns of the normalised closeness of prob to thr (module doc)."""
    parts = []
    for s in PATTERN_SLUGS:
        p, t = videos[f"prob_{s}"].to_numpy(np.float64), videos[f"thr_{s}"].to_numpy(np.float64)
        room = np.where(p < t, t, 1.0 - t)
        parts.append(1.0 - np.abs(p - t) / np.maximum(room, 1e-9))
    return pd.Series(np.clip(np.max(parts, axis=0), 0.0, 1.0), index=videos["video_id"].to_numpy())


def disagreement(video_folds: pd.DataFrame) -> pd.Series:
    """(video_id-indexed) max over patterns of the SD (ddof 0) of the fold models' video probabilities."""
    if video_folds["fold"].nunique() < 2:
        raise SelectError("disagreement needs predictions of 2 or more fold models; use uncertainty or random")
    sd = video_folds.groupby("video_id", sort=True)[[f"prob_{s}" for s in PATTERN_SLUGS]].std(ddof=0)
    return sd.max(axis=1)


def random_scores(video_ids: list[str], seed: int) -> pd.Series:
    """A seeded random score per video (its order is a random permutation)."""
    ids = sorted(video_ids)
    return pd.Series(np.random.default_rng(seed).random(len(ids)), index=ids)


def rank(scores: pd.Series, n: int, strategy: str, exclude: set[str]) -> pd.DataFrame:
    """The top n of the unlabelled videos by score (ties: video_id), as SELECTION_COLUMNS."""
    left = scores[~scores.index.isin(exclude)]
    frame = pd.DataFrame({"video_id": left.index.astype(str), "score": left.to_numpy(np.float64)})
    frame = frame.sort_values(["score", "video_id"], ascending=[False, True], kind="stable").head(n)
    frame["rank"], frame["strategy"] = np.arange(1, len(frame) + 1), strategy
    return frame[list(SELECTION_COLUMNS)].reset_index(drop=True)


def labelled_ids(path: Path) -> set[str]:
    """Video ids already labelled: a snapshot (.json), a folder of snapshots, or a CSV/TXT list (video_id column
    or one id per line)."""
    from labeling import annotations

    path = Path(path)
    if path.is_dir():
        records, _, _ = annotations.read_annotations(path, "all")
        return set(records["video_id"])
    if path.suffix.lower() == ".json":
        records, _ = annotations.parse_export(annotations.load_snapshot(path), path.name)
        return set(records["video_id"])
    return set(read_list(path))


def read_list(path: Path) -> list[str]:
    """Video ids from a CSV with a video_id column (what select writes) or a plain list, one per line."""
    path = Path(path)
    if not path.exists():
        raise SelectError(f"{path.name} not found")
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if lines and "video_id" in lines[0].split(","):
        return pd.read_csv(path, dtype=str)["video_id"].dropna().tolist()
    return lines


def scores_for(strategy: str, predictions: Path, seed: int) -> pd.Series:
    folder = Path(predictions)
    videos_path, folds_path = folder / "videos.parquet", folder / "videos_folds.parquet"
    if not videos_path.exists():
        raise SelectError(f"{videos_path} not found: pass the predictions folder of `luskit predict` (OUT/predictions)")
    videos = pd.read_parquet(videos_path)
    if strategy == "uncertainty":
        return uncertainty(videos)
    if strategy == "disagreement":
        if not folds_path.exists():
            raise SelectError(f"{folds_path} not found: rerun `luskit predict` with this luskit version")
        return disagreement(pd.read_parquet(folds_path))
    if strategy == "random":
        return random_scores(videos["video_id"].astype(str).tolist(), seed)
    raise SelectError(f"--strategy {strategy!r}: use one of {STRATEGIES}")


def select(predictions: Path, strategy: str, n: int, out: Path, exclude: list[Path] = (),
           seed: int = 0) -> pd.DataFrame:
    """Write and return the selection (module doc)."""
    if n < 1:
        raise SelectError(f"--n {n}: pick at least 1 video")
    done: set[str] = set()
    for path in exclude:
        done |= labelled_ids(path)
    chosen = rank(scores_for(strategy, predictions, seed), n, strategy, done)
    write_bytes_atomic(Path(out), chosen.to_csv(index=False, lineterminator="\n").encode())
    return chosen
