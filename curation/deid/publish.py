"""Publish or withhold one de-identified video (fail closed), and the withheld videos' thumbnails.

A video is published (its MP4 moved into artifacts/videos) only when its proof is clean:
- no planted PHI read in it (demo; a failure, the stage exits 1),
- the text search covered every frame (coverage 1.0) and read no token outside the allow-list,
  or a person released exactly this output (release.py: bound to the MP4's sha256).
Otherwise it is WITHHELD: no MP4 is written; the report lists it by video_id with the reason, the frame
ranges and the COUNT of tokens (never the text read: it may be a name) and the sha256 of the MP4 it would
have published (what a release signs); a pixelated thumbnail (text unreadable) goes to
artifacts/deid/withheld/<video_id>.png for the person who decides.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from curation.deid import encode, proof, release
from luskit import paths
from luskit.atomic import write_atomic

WITHHELD = paths.DEID_WITHHELD.name  # folder under artifacts/deid (luskit/paths.py)
DEID_COLUMNS = {
    "video_id": "string", "patient_id": "string", "period": "string", "n_frames": "int64", "fps": "float64",
    "height": "int64", "width": "int64", "action": "string", "kept_fraction": "float64",
    "crop_x0": "int64", "crop_y0": "int64", "crop_x1": "int64", "crop_y1": "int64",
}
_PIXEL_COLUMNS = 12  # the thumbnail keeps this many blocks across: shapes stay, glyphs cannot


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pixelated(thumb: np.ndarray, columns: int = _PIXEL_COLUMNS) -> np.ndarray:
    """(h, w, 3) uint8 -> the same size in blocks of about w/columns pixels (area-averaged): a reviewer
    sees where the image and the overlays are, no text can be read."""
    h, w = thumb.shape[:2]
    rows = max(1, round(columns * h / w))
    small = cv2.resize(thumb, (columns, rows), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def is_published(result: dict) -> bool:
    return result["failure"] is None and result.get("withheld") is None


def decide(job, tmp: Path, ready: dict, found, coverage: np.ndarray, planted_kinds: set[str],
           releases: dict) -> dict:
    """The result of one video whose output `tmp` was written and searched: published, withheld or failed.

    job: stage.Job; ready: stage._prepare output; found: text_search.TextFindings; coverage: (n,) bool.
    """
    base = {"video_id": job.video_id, "patient_id": job.patient_id, "period": job.period, "action": "failed",
            "failure": None, "kept_fraction": None, "withheld": None}
    action, box, done = ready["action"], ready["box"], ready["done"]
    frac = float(coverage.mean()) if coverage.size else 0.0
    checks = {"ocr_frames": int(coverage.sum()), "ocr_images": ready["checks"]["ocr_images"],
              "text_coverage": frac, "text_tokens": found.tokens, "text_unexplained": found.unexplained,
              "ocr_tokens_outside_fan": found.outside_fan, "ocr_tokens_inside_fan": found.inside_fan,
              "ocr_phi_kinds": sorted(planted_kinds), "mp4": ready["checks"]["mp4"]}
    if checks["ocr_phi_kinds"] or checks["mp4"]["phi_kinds"]:
        # Never publish a video in which planted PHI was read; the report still counts it.
        tmp.unlink(missing_ok=True)
        return {**base, **checks, "failure": {"reason": "planted_phi_in_output", "message":
                f"planted PHI read in the output ({action}): withheld. The image box covers burned-in text: "
                "check the index's tissue region or deidentify.manual_regions, then rerun"}}
    sha = file_sha256(tmp)
    h, w = encode.even_shape(box[3] - box[1] + 1, box[2] - box[0] + 1)
    written = {"action": action, "n_frames": job.n_frames, "fps": job.fps, "height": h, "width": w, "crop": box,
               "kept_fraction": done["kept"] / done["total"] if done["total"] else None,
               "output_sha256": sha, "released": False}
    reason = "incomplete_search" if frac < 1.0 else "unexplained_text" if found.unexplained else None
    if reason and release.released(releases, job.video_id, sha):
        reason, written["released"] = None, True
    if reason:
        tmp.unlink(missing_ok=True)
        uncovered = int((~coverage).sum())
        withheld = {"video_id": job.video_id, "reason": reason, "action": action, "tokens": found.unexplained,
                    "inside_fan": found.inside_fan, "outside_fan": found.outside_fan,
                    "frames": [list(f) for f in found.frames], "frames_uncovered": uncovered,
                    "text_coverage": frac, "output_sha256": sha}
        # the middle frame's thumbnail (a 2-frame video has only first and last: stage._write's `show`)
        thumb = next(t for t in (done["after"][1], done["after"][2], done["after"][0]) if t is not None)
        return {**base, **checks, **written, "withheld": withheld, "pixelated": pixelated(thumb)}
    tmp.replace(Path(job.videos_dir) / f"{job.video_id}.mp4")
    return {**base, **checks, **written, "before": done["before"], "after": done["after"]}


def write_withheld(folder: Path, results: list[dict]) -> list[str]:
    """Write <video_id>.png for every withheld result (removing those of videos no longer withheld);
    returns the file names written. Pops the thumbnails from the results."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for r in results:
        thumb = r.pop("pixelated", None)
        if r.get("withheld") is None or thumb is None:
            continue
        name = f"{r['video_id']}.png"
        write_atomic(folder / name, lambda tmp, thumb=thumb: Image.fromarray(thumb).save(tmp, format="PNG"))
        r["withheld"]["thumbnail"] = f"{WITHHELD}/{name}"
        names.append(name)
    for old in folder.glob("*.png"):
        if old.name not in names:
            old.unlink()
    return names


class ContactSheets:
    """Writes QC pages as results arrive, so thumbnails never pile up (memory stays flat with data size)."""

    def __init__(self, qc_dir: Path, planted: proof.PlantedPhi | None, per_page: int = 20) -> None:
        self.qc_dir, self.planted, self.per_page = qc_dir, planted, per_page
        self.names: list[str] = []
        self.kinds: set[str] = set()
        self._rows: list = []
        qc_dir.mkdir(parents=True, exist_ok=True)
        for old in qc_dir.glob("contact_sheet*.png"):
            old.unlink()

    def add(self, result: dict) -> dict:
        """Queue one video's before/after thumbnails; returns the result without them."""
        before, after = result.pop("before", None), result.pop("after", None)
        if is_published(result):
            kept = result["kept_fraction"]
            label = f"{result['video_id']}\n{result['action']}" + (f"\nkept {kept:.3f}" if kept is not None else "")
            self._rows.append((label, before, after))
            if len(self._rows) == self.per_page:
                self.flush()
        return result

    def flush(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from PIL import Image

        pages = proof.contact_sheets(self._rows, per_page=self.per_page) if self._rows else []
        self._rows = []
        # The OCR of the pages (a tesseract process) runs while this thread compresses the PNGs: the last
        # flush comes after the workers are done, with the cores free.
        with ThreadPoolExecutor(1) as pool:
            reads = [pool.submit(proof.ocr_tokens, page) for page in pages] if self.planted is not None else []
            for page in pages:
                name = f"contact_sheet_{len(self.names) + 1:03d}.png"
                write_atomic(self.qc_dir / name, lambda tmp, page=page: Image.fromarray(page).save(tmp, format="PNG"))
                self.names.append(name)
            for read in reads:
                self.kinds |= self.planted.in_text(" ".join(t.text for t in read.result()))


def remove_stale(videos_dir: Path, keep: set[str]) -> int:
    """Delete MP4s (and leftover temporary files) of videos no longer produced; returns how many."""
    removed = 0
    for path in videos_dir.glob("*.mp4"):
        if path.stem not in keep:
            path.unlink()
            removed += 1
    for path in videos_dir.glob(".*.tmp"):
        path.unlink()
    return removed


def deid_table(results: list[dict]) -> pd.DataFrame:
    """artifacts/deid/videos.parquet rows: one per written video (crop box inclusive, source pixels)."""
    rows = [{**{k: r[k] for k in ("video_id", "patient_id", "period", "n_frames", "fps", "height", "width",
                                  "action", "kept_fraction")},
             **dict(zip(("crop_x0", "crop_y0", "crop_x1", "crop_y1"), r["crop"]))}
            for r in results if is_published(r)]
    return pd.DataFrame(rows, columns=list(DEID_COLUMNS)).astype(DEID_COLUMNS)
