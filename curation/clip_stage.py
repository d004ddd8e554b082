"""The `clips` stage: de-identified videos -> artifacts/clips/ (manifest.parquet + uint8 frame cache).

Reads artifacts/deid/videos.parquet and artifacts/videos/<video_id>.mp4, writes one
cache/<video_id>.npy per video (every frame, resized; see curation.clip_cache) and the clip
manifest (one row per clip window; see curation.clips). Videos are processed in a small process
pool, one video per task: a worker streams a video, writes its cache and moves on, so memory stays
flat. A video that cannot be decoded, or decodes to a different frame count than the table says,
is reported by video_id and left out of the manifest; the stage goes on with the rest.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import pandas as pd
from tqdm import tqdm

from curation.clip_cache import FrameCountMismatch, write_cache
from curation.clips import ClipParams, build_manifest, cache_relpath
from luskit import paths
from luskit.atomic import write_parquet_atomic
from luskit.config import ConfigError, load_section

VIDEOS_TABLE = paths.DEID_VIDEOS_NAME
MANIFEST = paths.CLIP_MANIFEST_NAME
REQUIRED_COLUMNS = ("video_id", "patient_id", "period", "n_frames", "fps")


@dataclass(frozen=True)
class Job:
    video_id: str
    video_path: str
    cache_path: str
    n_frames: int
    params: ClipParams


@dataclass(frozen=True)
class Outcome:
    video_id: str
    ok: bool
    message: str = ""


def read_videos(deid_dir: Path) -> pd.DataFrame:
    """The de-identification table, checked and sorted by video_id (deterministic order)."""
    path = Path(deid_dir) / VIDEOS_TABLE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the deidentify stage first (luskit deidentify / dvc repro)")
    videos = pd.read_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in videos.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}: rerun the deidentify stage with this luskit version")
    duplicated = videos["video_id"][videos["video_id"].duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"{path}: video_id(s) listed more than once: {duplicated[:5]}; rerun the deidentify stage")
    return videos.sort_values("video_id", kind="stable").reset_index(drop=True)


def process_video(job: Job) -> Outcome:
    """Worker: decode one video into its cache. Failures come back as a message, never a crash."""
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would only contend
    video = Path(job.video_path)
    if not video.exists():
        return Outcome(job.video_id, False, f"{video} is missing: rerun the deidentify stage")
    try:
        write_cache(video, Path(job.cache_path), job.n_frames, job.params)
    except FrameCountMismatch as err:
        return Outcome(job.video_id, False, f"{err}; rerun deidentify for this video or check its file")
    except (av.FFmpegError, OSError) as err:
        return Outcome(job.video_id, False, f"cannot decode {video.name} ({type(err).__name__}: {err}); "
                                            "rerun deidentify for this video")
    return Outcome(job.video_id, True)


def run_jobs(jobs: list[Job], workers: int = 2, progress: bool = True) -> list[Outcome]:
    """Outcomes in job order (the pool's map keeps order, so the result is deterministic)."""
    bar = dict(total=len(jobs), desc="clips", unit="video", disable=not progress)
    if workers <= 1 or len(jobs) <= 1:
        return [process_video(j) for j in tqdm(jobs, **bar)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(process_video, jobs), **bar))


def make_jobs(videos: pd.DataFrame, params: ClipParams, videos_dir: Path, out_dir: Path) -> list[Job]:
    return [Job(str(v), str(Path(videos_dir) / f"{v}.mp4"), str(Path(out_dir) / cache_relpath(str(v))),
                int(n), params)
            for v, n in zip(videos["video_id"], videos["n_frames"])]


def main(params_path: Path = paths.PARAMS, deid_dir: Path = paths.DEID,
         videos_dir: Path = paths.VIDEOS, out_dir: Path = paths.CLIPS) -> int:
    """Run the stage; returns the exit code (0 done, also when some videos were skipped; 2 bad input)."""
    try:
        params = load_section(Path(params_path), "clips", ClipParams)
        videos = read_videos(Path(deid_dir))
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = Path(out_dir)
    outcomes = run_jobs(make_jobs(videos, params, Path(videos_dir), out_dir), workers=params.workers)
    skipped = [o for o in outcomes if not o.ok]
    for o in skipped:
        print(f"clips: skipped video {o.video_id}: {o.message}", file=sys.stderr)
    done = {o.video_id for o in outcomes if o.ok}
    manifest = build_manifest(videos[videos["video_id"].isin(done)], params)
    write_parquet_atomic(out_dir / MANIFEST, manifest)
    print(f"clips: {len(done)} videos, {len(manifest)} clips of {params.length} frames "
          f"({params.tail} tail), {len(skipped)} skipped -> {out_dir / MANIFEST}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
