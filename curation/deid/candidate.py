"""Re-create one video's candidate output locally, so a person can look at a withheld video before releasing it.

The deidentify stage never publishes a withheld video (it is not in artifacts/videos). `luskit deid show`
runs the stage's own per-video steps (stage._prepare: probe, mask, crop, encode, verify) for that one
video from data/raw, into a file the person names outside the project's data/ and artifacts/. The
encoder is deterministic (one thread, bit-exact flags: encode.py), so with the same raw file and params
the candidate's sha256 equals the report's `output_sha256`, the hash a release is bound to.

The candidate may show identifiable text (that is why it was withheld): keep it on this machine and
delete it after looking.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from curation.deid import stage
from curation.ingest import file_sha256
from luskit import paths
from luskit.config import load_section


class CandidateError(ValueError):
    """The candidate cannot be made (unknown video, bad output path, source gone); the message says why."""


def check_out_path(out: Path, root: Path) -> Path:
    """`out` resolved; refused inside the project's data/ or artifacts/ (DVC would track or publish it),
    when it exists already (never overwritten), or when it is not an .mp4 file name."""
    out = Path(out).resolve()
    for folder in (paths.DATA, paths.ARTIFACTS):
        inside = (Path(root).resolve() / folder)
        if out == inside or inside in out.parents:
            raise CandidateError(f"--out lies inside {folder}/: a candidate may show identifiable text and must "
                                 f"not be tracked or published; write it outside, e.g. /tmp/candidate.mp4")
    if out.suffix.lower() != ".mp4":
        raise CandidateError("--out must name an .mp4 file")
    if out.exists():
        raise CandidateError(f"{out.name} exists already: name a new file (luskit never overwrites one)")
    if not out.parent.is_dir():
        raise CandidateError("the folder of --out does not exist: create it first")
    return out


def render_candidate(video_id: str, out: Path, params_path: Path = paths.PARAMS, index_dir: Path = paths.INDEX,
                     raw_dir: Path = paths.RAW) -> dict:
    """Write the candidate MP4 of `video_id` to `out` (checked by the caller); returns {sha256, action, crop,
    n_frames}. Raises CandidateError (unknown video, source missing) or stage.DeidFailure (the video
    cannot be de-identified: the same reason the stage gives)."""
    cfg = load_section(Path(params_path), "deidentify", stage.DeidParams)
    index = stage.read_index(Path(index_dir))
    rows = index[index["video_id"] == video_id]
    if rows.empty:
        raise CandidateError(f"{video_id!r} is not in {paths.INDEX_VIDEOS}: check the id (report.json's "
                             "`withheld` list) or rerun ingest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library warnings can quote header values (PHI)
        sources = stage._locate(Path(raw_dir), stage._ingest_ignore(Path(params_path)))
    job = stage.make_jobs(pd.DataFrame(rows), sources, cfg, out.parent, planted=None)[0]
    tmp = out.parent / f".{out.name}.tmp"
    try:
        ready = stage._prepare(job, tmp)
        os.link(tmp, out)  # link, not rename: a file that appeared meanwhile is never replaced
    finally:
        tmp.unlink(missing_ok=True)
    return {"sha256": file_sha256(out), "action": ready.get("action"), "crop": ready.get("box"),
            "n_frames": job.n_frames}
