"""Stage `deidentify`: artifacts/index + data/raw -> artifacts/videos/<video_id>.mp4 + artifacts/deid/.

This is the PHI boundary. For every indexed video the source is found again by its sha256, decoded
frame by frame, everything outside the ultrasound image is blacked out and the frame cropped to it
(masking.py), and the result written as metadata-free H.264 (encode.py). Then the output is decoded
again and checked (proof.py): exact frame count, a text search of every frame (text_search.py), header/tag
scan, planted PHI. A video with text outside the allow-list, or not searched whole, is withheld (publish.py).

How the image is found, per video, first that applies (the `action` column):
- region-cropped: the index has a DICOM tissue region box (region_x0..y1); inside it the tissue is
                  found from the pixels as below (UI panels in the box go black);
- auto-masked:    no region: the fan found from the pixels (temporal variation + intensity);
- manual-region:  no fan found: `deidentify.manual_regions[key]`, key = the index's `manufacturer_model`
                  ("<Manufacturer> <ManufacturerModelName>", e.g. "DemoSonics HS-60 DEMO") or, for
                  headerless videos, the frame size "<width>x<height>" (e.g. "480x368");
- failed:         none of these, or the source does not decode: listed in the report, skipped.

Outputs: artifacts/videos/*.mp4, artifacts/deid/videos.parquet (one row per written video),
artifacts/deid/report.json (DVC metric), artifacts/deid/qc/contact_sheet_NNN.png and
artifacts/deid/withheld/<video_id>.png (pixelated thumbnails of withheld videos).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from curation import readers, safe_pool
from curation.deid import encode, masking, proof, publish, release, text_search
from curation.deid.params import DeidParams
from curation.exact_pixels import ExactReformatter
from curation.ingest_key import read_key_kind
from curation.deid.publish import ContactSheets, deid_table, remove_stale  # noqa: F401 (stage.X in tests)
from luskit import paths
from luskit.atomic import write_bytes_atomic, write_parquet_atomic
from luskit.config import load_section, read_params

REPORT = "report.json"
TABLE = paths.DEID_VIDEOS_NAME
QC = "qc"
WITHHELD_EXIT = 3  # exit status when videos were withheld (fail closed: a person decides)
OCR_BATCH = 4  # videos whose OCR proof one tesseract process reads (see process_videos)
PLANTED = paths.PLANTED_PHI.name  # demo only: the strings the synth planted, next to the raw files

# ---------------------------------------------------------------- one video (runs in a worker process)

@dataclass(frozen=True, repr=False)
class Job:
    """Everything a worker needs for one video; `source` is a raw path (PHI: never written or printed, so
    the repr names the video only)."""

    video_id: str
    patient_id: str
    period: str
    n_frames: int
    fps: float
    height: int
    width: int
    region: tuple[int, int, int, int] | None
    model: str | None
    source: str | None
    videos_dir: str
    manual_regions: dict
    crf: int
    gop: int
    rules: text_search.TextRules
    planted: proof.PlantedPhi | None
    releases: dict = field(default_factory=dict)  # {video_id: {output_sha256}} signed off (release.py)

    def __repr__(self) -> str:
        return f"Job({self.video_id})"


class DeidFailure(Exception):
    """A video that cannot be de-identified: `reason` is a short key; the message names no PHI and says what
    to do (the report and the terminal line put the video_id in front of it)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _frames(job: Job, info) -> Iterator[np.ndarray]:
    """The source's (H, W, 3) uint8 frames, checked against the index (a reader error becomes DeidFailure)."""
    try:
        for frame in readers.iter_frames(Path(job.source), info):
            if frame.shape != (job.height, job.width, 3):
                raise DeidFailure("source_changed", f"a frame is {frame.shape[1]}x{frame.shape[0]}, "
                                  f"the index says {job.width}x{job.height}: rerun ingest")
            yield frame
    except readers.UnreadableInput as err:
        raise DeidFailure(err.reason, str(err)) from None


def _probe(job: Job) -> readers.SourceInfo:
    if job.source is None:
        raise DeidFailure("source_missing", "no file under the raw folder has the indexed sha256 "
                          "(moved, edited or deleted since ingest): rerun ingest")
    try:
        # The index's fps as the default reproduces ingest's frame timing for files that state none.
        info = readers.probe(Path(job.source), default_fps=job.fps,
                             max_frames=max(readers.MAX_FRAMES, job.n_frames + 1),
                             max_side=max(readers.MAX_SIDE, job.height, job.width))
    except readers.UnreadableInput as err:
        raise DeidFailure(err.reason, str(err)) from None
    if (info.n_frames, info.height, info.width) != (job.n_frames, job.height, job.width):
        raise DeidFailure("source_changed", f"the file no longer matches the index ({info.n_frames} frames "
                          f"{info.width}x{info.height}): rerun ingest")
    return info


def choose_mask(job: Job, info) -> tuple[str, np.ndarray]:
    """(action, (H, W) bool mask) for one video: the tissue inside the region box, else the automatic fan,
    else a manual box. A region box is not trusted whole: scanners draw UI panels inside it."""
    shape = (job.height, job.width)
    region = None
    if job.region is not None:
        try:
            region = masking.clip_box(job.region, shape)
        except ValueError:
            raise DeidFailure("bad_region", f"the tissue region {list(job.region)} lies outside the "
                              f"{job.width}x{job.height} frame: rerun ingest or check the export") from None
    cfg = masking.AutoMaskConfig()
    wanted = set(masking.sample_indices(job.n_frames, cfg.max_samples).tolist())
    stats = masking.FrameStats()
    for i, frame in enumerate(_frames(job, info)):
        if i in wanted:
            stats.add(frame)
    _, std, peak = stats.result()
    if region is not None:
        return "region-cropped", masking.region_tissue_mask(peak, std, region, cfg)
    fan = masking.fan_mask_from_stats(peak, std, cfg)
    if fan is not None:
        return "auto-masked", fan
    try:
        manual = masking.manual_region(job.manual_regions, job.model, job.width, job.height)
    except ValueError as err:
        raise DeidFailure("bad_manual_region", f"deidentify.manual_regions: {err}: fix the box") from None
    if manual is not None:
        return "manual-region", masking.region_mask(shape, [manual[1]])
    key = job.model or f"{job.width}x{job.height}"
    raise DeidFailure("no_fan_found", "no ultrasound region in the header and no fan found in the "
                      f"pixels: add deidentify.manual_regions[{key!r}] = [x0, y0, x1, y1] to params.yaml")


def _write(job: Job, info, mask: np.ndarray, box: masking.Box, tmp: Path) -> dict:
    """Pass over the source: mask, crop, encode. Returns kept-pixel counts, QC thumbnails, output stats."""
    n = job.n_frames
    show = {0: 0, n // 2: 1, n - 1: 2}
    before, after = [None] * 3, [None] * 3
    kept = total = 0
    wanted = set(masking.sample_indices(n, masking.AutoMaskConfig().max_samples).tolist())
    out_stats = masking.FrameStats()
    h, w = box[3] - box[1] + 1, box[2] - box[0] + 1
    mask_and_crop = masking.Masker(mask, box)
    with encode.Mp4Writer(tmp, h, w, job.fps, job.crf, job.gop) as writer:
        for i, frame in enumerate(_frames(job, info)):
            out = mask_and_crop(frame)
            writer.write(out)
            if i in wanted:  # the kept fraction is estimated on the sampled frames: counting every frame
                k, t = masking.nonblack_counts(frame, mask)  # cost as much as encoding it
                kept, total = kept + k, total + t
                out_stats.add(out)
            if i in show:
                before[show[i]] = proof.thumbnail(proof.obscure_outside(frame, mask))
                after[show[i]] = proof.thumbnail(out)
        written = writer.frames_written
    if written != n:
        raise DeidFailure("frame_count_mismatch", f"decoded {written} frames, the index says {n}: "
                          "rerun ingest; if it persists the file decodes differently each time (report it)")
    return {"kept": kept, "total": total, "before": before, "after": after, "out_stats": out_stats}


def _verify(job: Job, tmp: Path) -> tuple[dict, list, np.ndarray]:
    """Decode the written file: exact frame count, tag/byte scan, and the text search fed every frame.
    Returns the checks, the probes for OCR (read afterwards, several videos in one tesseract call) and
    the (n,) bool frames covered."""
    import av

    search = text_search.TextSearch(job.rules)
    rgb = ExactReformatter()  # the same pixels, so the same withhold decisions, on any CPU
    with av.open(str(tmp)) as container:
        for frame in container.decode(video=0):
            search.add(rgb.array(frame, "rgb24"))
    if search.n_frames != job.n_frames:
        raise DeidFailure("frame_count_mismatch", f"the written MP4 decodes to {search.n_frames} frames, "
                          f"expected {job.n_frames}: report this encoder bug")
    probes, covered = search.finish()
    return {"ocr_images": len(probes), "mp4": proof.scan_mp4(tmp, job.planted)}, probes, covered


def _proof_fan(out_stats: masking.FrameStats, mask: np.ndarray, box: masking.Box) -> np.ndarray:
    """The fan of the OUTPUT, found afresh from its pixels (an independent check of the mask); where that
    finds nothing (a dark clip) the applied mask. (h', w') bool at the padded output size."""
    _, std, peak = out_stats.result()
    fan = masking.fan_mask_from_stats(peak, std)
    if fan is None:
        fan = mask[box[1]:box[3] + 1, box[0]:box[2] + 1]
    h, w = encode.even_shape(*fan.shape)
    padded = np.zeros((h, w), bool)
    padded[: fan.shape[0], : fan.shape[1]] = fan
    return padded


def _failed(job: Job, tmp: Path, err: Exception) -> dict:
    """The result of a video that could not be de-identified (its temporary file removed)."""
    tmp.unlink(missing_ok=True)
    base = {"video_id": job.video_id, "patient_id": job.patient_id, "period": job.period, "action": "failed",
            "failure": None, "kept_fraction": None}
    if isinstance(err, DeidFailure):
        return {**base, "failure": {"reason": err.reason, "message": str(err)}}
    if os.environ.get("LUSKIT_DEBUG"):
        raise err
    # A library crash on one file must not stop the stage; its text may hold a path, so only the type is named.
    return {**base, "failure": {"reason": "unexpected_error", "message":
            f"unexpected {type(err).__name__} while de-identifying: rerun with LUSKIT_DEBUG=1 and "
            "deidentify.workers: 1 to see the traceback (it may show local paths: keep it local)"}}


def _prepare(job: Job, tmp: Path) -> dict:
    """Everything but the OCR: probe, mask, write `tmp`, verify it, plan the text search. Raises DeidFailure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library warnings can quote header values (PHI)
        info = _probe(job)
        action, mask = choose_mask(job, info)
        box = masking.mask_bbox(mask)
        done = _write(job, info, mask, box, tmp)
        checks, probes, covered = _verify(job, tmp)
        fan = _proof_fan(done["out_stats"], mask, box)
    return {"action": action, "box": box, "done": done, "checks": checks, "probes": probes,
            "covered": covered, "fan": fan}


def _judge(job: Job, ready: dict, tokens: list) -> tuple[text_search.TextFindings, set[str]]:
    """The text findings of one video (tokens: one list per probe), and the kinds of planted PHI read."""
    found = text_search.judge(ready["probes"], tokens, ready["fan"], job.rules)
    kinds = set()
    if job.planted:  # the joined text, and word by word (joining can hide a needle split by a misread)
        kinds = job.planted.in_text(" ".join(found.texts))
        for text in found.texts:
            kinds |= job.planted.in_text(text)
    return found, kinds


def process_videos(jobs: list[Job]) -> list[dict]:
    """De-identify a few videos (one worker task); never raises. Results in job order, by video_id only.

    The text-search probes of all of them are read by one tesseract process (its start-up, loading the
    model, costs as much as reading a page), each probe a page of its own (tesseract reads pages apart;
    on a page of many, its layout analysis lost words); each video is then published, withheld or failed
    on its own findings.
    """
    tmps = [Path(job.videos_dir) / f".{job.video_id}.mp4.tmp" for job in jobs]
    results: list[dict | None] = [None] * len(jobs)
    ready: dict[int, dict] = {}
    for k, (job, tmp) in enumerate(zip(jobs, tmps)):
        try:
            ready[k] = _prepare(job, tmp)
        except Exception as err:
            results[k] = _failed(job, tmp, err)
    images = [text_search.rgb(p.image) for k in ready for p in ready[k]["probes"]]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pages = iter(proof.ocr_tokens_many(images))
    except Exception as err:  # OCR failed: none of these videos has its proof, none is published
        for k in ready:
            results[k] = _failed(jobs[k], tmps[k], err)
        return results
    tokens = {k: [next(pages) for _ in ready[k]["probes"]] for k in ready}
    for k in ready:
        try:
            found, kinds = _judge(jobs[k], ready[k], tokens.get(k, []))
            results[k] = publish.decide(jobs[k], tmps[k], ready[k], found, ready[k]["covered"], kinds,
                                        jobs[k].releases)
        except Exception as err:
            results[k] = _failed(jobs[k], tmps[k], err)
    return results


def process_video(job: Job) -> dict:
    """De-identify one video; never raises. The result names the video by video_id only."""
    return process_videos([job])[0]


def _ingest_ignore(params_path: Path) -> tuple[str, ...]:
    """ingest.ignore (sidecar-file globs), so sources are located exactly as ingest found them."""
    return tuple(read_params(params_path).get("ingest", {}).get("ignore", ()))


def _locate(raw_dir: Path, ignore: tuple[str, ...]) -> dict[str, Path]:
    from curation.ingest import locate_sources

    return locate_sources(raw_dir, ignore)


def read_index(index_dir: Path) -> pd.DataFrame:
    path = Path(index_dir) / paths.INDEX_VIDEOS_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `luskit ingest` (or `dvc repro ingest`) first")
    return pd.read_parquet(path)


def make_jobs(index: pd.DataFrame, sources: dict[str, Path], cfg: DeidParams, videos_dir: Path,
              planted: proof.PlantedPhi | None, releases: dict | None = None) -> list[Job]:
    """One Job per index row (pure apart from the paths it is handed)."""
    jobs = []
    for row in index.itertuples(index=False):
        region = None
        if not any(pd.isna(getattr(row, f"region_{c}")) for c in ("x0", "y0", "x1", "y1")):
            region = tuple(int(getattr(row, f"region_{c}")) for c in ("x0", "y0", "x1", "y1"))
        model = getattr(row, "manufacturer_model", None)
        source = sources.get(row.source_sha256)
        jobs.append(Job(
            video_id=row.video_id, patient_id=row.patient_id, period=row.period, n_frames=int(row.n_frames),
            fps=float(row.fps), height=int(row.height), width=int(row.width), region=region,
            model=None if model is None or pd.isna(model) else str(model),
            source=None if source is None else str(source), videos_dir=str(videos_dir),
            manual_regions=dict(cfg.manual_regions), crf=cfg.crf, gop=cfg.gop,
            rules=cfg.rules(), planted=planted,
            releases={row.video_id: set((releases or {}).get(row.video_id, ()))}))
    return jobs


def batches(jobs: list[Job], workers: int, most: int = OCR_BATCH) -> list[list[Job]]:
    """Consecutive groups of jobs, one worker task each: up to `most` videos share a tesseract start-up.

    Groups shrink towards the end (half of what is left per worker, at least 1), so the last tasks
    are single videos and no worker idles long while another finishes a big last group.
    """
    out, start = [], 0
    while start < len(jobs):
        size = max(1, min(most, (len(jobs) - start) // (2 * max(workers, 1))))
        out.append(jobs[start:start + size])
        start += size
    return out


def run_jobs(jobs: list[Job], workers: int) -> Iterator[dict]:
    """process_videos over batches of jobs (a process pool when workers > 1), yielded lazily in job order.

    A worker that dies (killed for memory, a crash inside a decoder) breaks a ProcessPoolExecutor for every
    pending batch: the batches not yet yielded are then rerun by safe_pool, which retries the dead worker's
    batch alone and fails only the video whose worker dies again (`worker_died`); the others go on.
    """
    bar = tqdm(total=len(jobs), desc="deidentify", unit="video", disable=None, file=sys.stderr)
    groups = batches(jobs, workers)
    with bar:
        if workers <= 1 or len(groups) <= 1:
            done = (process_videos(group) for group in groups)
            for results in done:
                bar.update(len(results))
                yield from results
            return
        yielded = 0
        try:
            with ProcessPoolExecutor(workers) as pool:
                for results in pool.map(process_videos, groups):
                    bar.update(len(results))
                    yielded += 1
                    yield from results
        except BrokenProcessPool:
            for results in safe_pool.map_surviving_deaths(process_videos, groups[yielded:], workers, _died):
                bar.update(len(results))
                yield from results


def _died(group: list[Job]) -> list[dict]:
    """A batch whose worker died twice: each of its videos alone; a video whose own worker dies is failed."""
    if len(group) > 1:
        return [r for results in safe_pool.map_surviving_deaths(process_videos, [[job] for job in group], 1, _died)
                for r in results]
    job = group[0]
    return [_failed(job, Path(job.videos_dir) / f".{job.video_id}.mp4.tmp", DeidFailure(
        "worker_died", "the process de-identifying this video died, also when run alone (killed for memory or a "
        "crash inside a decoder): check the source's size and format, or give deidentify more memory"))]


def main(params_path: Path = paths.PARAMS, index_dir: Path = paths.INDEX, raw_dir: Path = paths.RAW,
         videos_dir: Path = paths.VIDEOS, deid_dir: Path = paths.DEID, reviews_dir: Path = paths.REVIEWS) -> int:
    """Run the stage. 0 on success; 1 when planted PHI survived (and fail_on_planted_phi); else
    WITHHELD_EXIT when videos were withheld (unless allow_withheld)."""
    cfg = load_section(Path(params_path), "deidentify", DeidParams)
    index_dir, raw_dir, videos_dir, deid_dir = map(Path, (index_dir, raw_dir, videos_dir, deid_dir))
    index = read_index(index_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir} is not a folder: the raw files ingest indexed must stay there "
                                "(or pass the raw folder they are in)")
    planted = proof.PlantedPhi.load(raw_dir / PLANTED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library warnings can quote header values (PHI)
        sources = _locate(raw_dir, _ingest_ignore(Path(params_path)))
    videos_dir.mkdir(parents=True, exist_ok=True)
    releases = release.load_releases(Path(reviews_dir) / paths.DEID_RELEASES.relative_to(paths.REVIEWS))
    jobs = sorted(make_jobs(index, sources, cfg, videos_dir, planted, releases), key=lambda j: j.video_id)
    qc = ContactSheets(deid_dir / QC, planted)
    results = [qc.add(result) for result in run_jobs(jobs, cfg.workers)]
    qc.flush()
    sheets, sheet_phi = qc.names, qc.kinds
    publish.write_withheld(deid_dir / publish.WITHHELD, results)
    remove_stale(videos_dir, {r["video_id"] for r in results if publish.is_published(r)})
    write_parquet_atomic(deid_dir / TABLE, deid_table(results))
    tables = proof.scan_artifact_tables([index_dir, deid_dir], planted, proof.allowed_header_fields())
    report = proof.build_report(results, tables, sheets, sheet_phi, planted, len(index))
    report["pseudonym_key"] = read_key_kind(index_dir) or "unrecorded"  # demo | env | file, never the key
    write_bytes_atomic(deid_dir / REPORT, (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
    for line in proof.summary_lines(report, deid_dir):
        print(line, file=sys.stderr if line.startswith(("FAILED", "WITHHELD", "PLANTED", "warning")) else sys.stdout)
    if report["planted_phi_found"] and cfg.fail_on_planted_phi:
        return 1
    return WITHHELD_EXIT if report["videos_withheld"] and not cfg.allow_withheld else 0
