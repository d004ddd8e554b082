"""Stage `ingest`: data/raw/** (DICOM and video, PHI) -> artifacts/index/{videos,quarantine}.parquet.

Every file under raw_dir is probed and fully decoded once (in a process pool), which proves it
readable, counts its frames and hashes its pixels. Then, in sorted path order, each readable file
gets a pseudonymous identity (keyed HMAC of PatientID and SOP Instance UID, or of the folder name and
the file hash for headerless videos), a period (development | temporal) from its true acquisition
date, and is either kept or quarantined as a duplicate. Nothing is deleted or moved. The key is a real
one except for the synthetic demo or on request (curation/ingest_key.py: without one, real data stops
before the scan); its kind is recorded in pseudonym_key.json. A file that cannot be read, or whose
reader process dies, is quarantined like any other bad input and the rest goes on.

The tables are de-identified from the first byte: no paths (folder names are MRNs and dates), no
dates, no UIDs, no header text beyond readers.ALLOWED_HEADER_FIELDS. A kept video is found again by
its `source_sha256` (`locate_sources`); a quarantined one by `luskit ingest --show-paths`, which
prints local paths to the terminal only.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from curation.ingest_key import check_key_before_scan, choose_key, demo_identities, write_key_record
from curation.readers import (
    ALLOWED_HEADER_FIELDS, FPS_RANGE, REASONS, SourceInfo, UnreadableInput, iter_frames, probe, tissue_region,
)
from curation.safe_pool import map_surviving_deaths
from luskit import paths
from luskit.atomic import write_parquet_atomic
from luskit.config import load_section, require
from luskit.pseudonym import environment_key, patient_pseudonym, path_tag, video_pseudonym

VIDEOS_TABLE = paths.INDEX_VIDEOS_NAME
QUARANTINE_TABLE = "quarantine.parquet"
VIDEO_COLUMNS = {
    "video_id": "string", "patient_id": "string", "period": "string", "date_missing": "bool", "kind": "string",
    "n_frames": "int64", "fps": "float64", "fps_source": "string", "variable_frame_rate": "bool",
    "height": "int64", "width": "int64", "region_x0": "Int64", "region_y0": "Int64", "region_x1": "Int64",
    "region_y1": "Int64", "source_sha256": "string", "pixel_sha256": "string", "technical": "string",
    "manufacturer_model": "string",
}
QUARANTINE_COLUMNS = {"source_sha256": "string", "file_label": "string", "reason": "string", "message": "string",
                      "duplicate_of": "string"}
_MAX_LISTED = 20  # quarantined files named one by one on stderr; the rest are counted
# Extensions a quarantine label may show: media types only. Anything else after a dot can be a name or an
# ID (`KIM.MINJI`, `DOE.20230101`) and is shown as "other".
MEDIA_EXTENSIONS = frozenset({"dcm", "dicom", "dic", "ima", "mp4", "m4v", "mov", "avi", "mpg", "mpeg", "gif",
                              "mkv", "webm", "ts", "wmv", "mts"})


@dataclass(frozen=True)
class IngestParams:
    """The `ingest:` section of params.yaml."""

    ignore: tuple[str, ...] = ("*.json", "*.txt", "*.csv", "*.md", "*.xlsx", ".*", "DICOMDIR")
    temporal_cutoff: str = "2024-01-01"  # ISO date; acquisitions on/after it are "temporal"
    default_fps: float = 30.0
    path_pattern: str = r"^(?P<patient>[^/]+)/(?P<date>\d{8})/[^/]+$"
    strict: bool = False
    max_frames: int = 20000
    max_side: int = 4096
    workers: int = 2
    demo_key: bool = False  # true: the PUBLIC demo key on any data (public data sets only; never patients)

    def __post_init__(self) -> None:
        try:
            date.fromisoformat(self.temporal_cutoff)
        except ValueError:
            require(False, f"temporal_cutoff {self.temporal_cutoff!r} is not a YYYY-MM-DD date")
        try:
            pattern = re.compile(self.path_pattern)
        except re.error as err:
            raise ValueError(f"path_pattern is not a valid regular expression ({err})") from None
        require("patient" in pattern.groupindex, "path_pattern needs a named group (?P<patient>...)")
        require(FPS_RANGE[0] <= self.default_fps <= FPS_RANGE[1], f"default_fps must lie in {FPS_RANGE}")
        require(2 <= self.max_frames <= 10_000_000, "max_frames must be between 2 and 10,000,000")
        require(16 <= self.max_side <= 65535, "max_side must be between 16 and 65535")
        require(1 <= self.workers <= 256, "workers must be between 1 and 256")

    @property
    def cutoff(self) -> date:
        return date.fromisoformat(self.temporal_cutoff)


@dataclass(frozen=True)
class Scan:
    """What one worker learned about one file. `info` holds PHI (memory only, never written)."""

    relpath: str
    source_sha256: str
    info: SourceInfo | None = None
    pixel_sha256: str | None = None
    reason: str | None = None
    message: str | None = None


# ---------------------------------------------------------------- files (I/O edge)

def is_ignored(relpath: str, ignore: tuple[str, ...]) -> bool:
    """True if any component of the '/'-separated relative path matches one of the `ignore` globs."""
    return any(fnmatch.fnmatchcase(part, pattern) for part in relpath.split("/") for pattern in ignore)


def walk(raw_dir: Path, ignore: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every regular file under raw_dir, sorted by relative path."""
    raw_dir = Path(raw_dir)
    found = []
    for path in raw_dir.rglob("*"):
        rel = path.relative_to(raw_dir).as_posix()
        try:
            regular = path.is_file()  # FIFOs, sockets, folders and broken links are not files to read
        except OSError:  # e.g. no permission to stat it: listed, so that the scan quarantines it by label
            regular = True
        if regular and not is_ignored(rel, ignore):
            found.append((rel, path))
    return sorted(found)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_sources(files: list[tuple[str, Path]]) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """({source_sha256: path}, [(relpath, error type)] of files that could not be read) for listed files.

    The first path in the given order wins for identical copies. A file that vanished after listing, or
    cannot be read (permissions, I/O error), is skipped and returned with its error's type name only.
    """
    found: dict[str, Path] = {}
    unreadable: list[tuple[str, str]] = []
    for rel, path in files:
        try:
            found.setdefault(file_sha256(path), path)
        except OSError as err:  # never its text: it holds the path (MRNs, dates)
            unreadable.append((rel, type(err).__name__))
    return found, unreadable


def locate_sources(raw_dir: Path, ignore: tuple[str, ...] | list[str]) -> dict[str, Path]:
    """source_sha256 -> path of every readable file under raw_dir (the first in sorted order for copies).

    For deidentify: videos.parquet names no paths, so a video's source is found again by its hash. A file
    that cannot be read is named on stderr by a PHI-free label (its type and a keyed hash of its path) and
    skipped: a video whose source it was is then reported by deidentify as missing, the others go on.
    """
    found, unreadable = hash_sources(walk(raw_dir, tuple(ignore)))
    if unreadable:
        # Labels are stable across runs with a key set; without one they only tell this run's files apart.
        key = environment_key()
        salt = key[0] if key is not None else os.urandom(32)
        for rel, error in unreadable:
            print(f"skipped {file_label(rel, '', salt)}: {REASONS['unreadable']} ({error})", file=sys.stderr)
        print(f"{len(unreadable)} file(s) under the raw folder could not be read and were skipped; "
              "`luskit ingest --show-paths` shows which local files they are.", file=sys.stderr)
    return found


def scan_file(job: tuple[str, str, float, int, int]) -> Scan:
    """Hash, probe and fully decode one file (runs in a worker process). Never raises."""
    relpath, path, default_fps, max_frames, max_side = job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library warnings can quote header values (PHI)
        try:
            sha = file_sha256(Path(path))
        except OSError as err:
            unreadable = UnreadableInput("unreadable", type(err).__name__)
            return Scan(relpath, "", reason="unreadable", message=str(unreadable))
        try:
            info = probe(Path(path), default_fps=default_fps, max_frames=max_frames, max_side=max_side)
            return Scan(relpath, sha, info=info, pixel_sha256=pixel_digest(Path(path), info))
        except UnreadableInput as err:
            return Scan(relpath, sha, reason=err.reason, message=str(err))
        except Exception as err:  # a reader bug or a library crash must not stop the stage
            unexpected = UnreadableInput("decode_error", f"unexpected {type(err).__name__} while reading")
            return Scan(relpath, sha, reason="decode_error", message=str(unexpected))


def pixel_digest(path: Path, info: SourceInfo) -> str:
    """sha256 over every decoded (H, W, 3) uint8 frame, in order; equal pixels <=> equal digest."""
    digest = hashlib.sha256(f"{info.height}x{info.width}x3\n".encode())
    for frame in iter_frames(path, info):
        digest.update(np.ascontiguousarray(frame))  # the same bytes as frame.tobytes(), without copying them
    return digest.hexdigest()


def scan_all(files: list[tuple[str, Path]], params: IngestParams) -> list[Scan]:
    """Scan every file in worker processes (params.workers); results in the order of `files`.

    Always in child processes, also with one worker: a file that gets its reader killed (out of memory, a
    decoder crash) is quarantined as worker_died and the others go on. Forked workers (safe_pool) work from
    scripts and notebooks without a __main__ guard; the parent has decoded nothing yet, so no decoder
    state is inherited.
    """
    jobs = [(rel, str(path), params.default_fps, params.max_frames, params.max_side) for rel, path in files]
    return map_surviving_deaths(scan_file, jobs, params.workers, _worker_died, desc="ingest", unit="file")


def _worker_died(job: tuple) -> Scan:
    relpath, path = job[0], job[1]
    try:
        sha = file_sha256(Path(path))
    except OSError:
        sha = ""
    return Scan(relpath, sha, reason="worker_died", message=str(UnreadableInput("worker_died")))


# ---------------------------------------------------------------- identity and duplicates (pure)

def file_label(relpath: str, sha: str, key: bytes = b"") -> str:
    """A PHI-free label "<kind>:<12 hex>": a known media extension (else "noext" or "other": what follows a dot
    can be a name, `KIM.MINJI`), then the file's sha256 prefix, or for a file that could not be read a keyed
    hash of its path ("unread-..."; the path itself holds MRNs and dates)."""
    name = relpath.rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""
    kind = suffix if suffix in MEDIA_EXTENSIONS else ("other" if suffix else "noext")
    return f"{kind}:{sha[:12]}" if sha else f"{kind}:unread-{path_tag(key, relpath)}"


def path_identity(relpath: str, pattern: str) -> tuple[str | None, date | None]:
    """(patient identifier, acquisition date) from a headerless video's folder names (PHI: memory only)."""
    match = re.search(pattern, relpath)
    if match is None or not (match.groupdict().get("patient") or "").strip():
        return None, None
    digits = match.groupdict().get("date") or ""
    try:
        when = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) if len(digits) == 8 else None
    except ValueError:
        when = None
    return match.group("patient").strip(), when


@dataclass(frozen=True)
class Resolved:
    videos: list[dict]  # videos.parquet rows
    quarantine: list[dict]  # quarantine.parquet rows
    quarantined_paths: list[str]  # relative paths (PHI) parallel to `quarantine`: terminal only


def identity(scan: Scan, params: IngestParams) -> tuple[str | None, date | None, str]:
    """(patient identifier, acquisition date, fix when the identifier is missing) of a readable file (PHI)."""
    info = scan.info
    if info.kind == "dicom":
        return info.patient_key, info.acquired, "no PatientID in the DICOM header: fix the export"
    patient, acquired = path_identity(scan.relpath, params.path_pattern)
    return patient, acquired, "folders do not match ingest.path_pattern: file it as <patient>/<YYYYMMDD>/<file>"


def resolve(scans: list[Scan], params: IngestParams, key: bytes) -> Resolved:
    """Scans (sorted by path) -> table rows: identity, period, duplicates (first in path order is kept)."""
    videos: list[dict] = []
    quarantine: list[dict] = []
    paths: list[str] = []
    by_instance: dict[str, str] = {}
    by_pixels: dict[str, str] = {}
    for scan in scans:
        label = file_label(scan.relpath, scan.source_sha256, key)
        if scan.reason is not None:
            quarantine.append(_quarantine_row(scan, label, scan.reason, scan.message))
            paths.append(scan.relpath)
            continue
        info = scan.info
        patient, acquired, missing = identity(scan, params)
        if not patient:
            message = str(UnreadableInput("missing_identity", missing))
            quarantine.append(_quarantine_row(scan, label, "missing_identity", message))
            paths.append(scan.relpath)
            continue
        instance = info.instance_key or f"sha256:{scan.source_sha256}"
        patient_id = patient_pseudonym(key, patient)
        video_id = video_pseudonym(key, patient_id, instance)
        for reason, seen, value in (("duplicate_instance", by_instance, instance),
                                    ("duplicate_pixels", by_pixels, scan.pixel_sha256)):
            if value in seen:
                quarantine.append(_quarantine_row(scan, label, reason, str(UnreadableInput(reason)), seen[value]))
                paths.append(scan.relpath)
                break
        else:
            by_instance[instance], by_pixels[scan.pixel_sha256] = video_id, video_id
            videos.append(_video_row(scan, video_id, patient_id, acquired, params.cutoff))
    ids = [row["video_id"] for row in videos]
    if len(set(ids)) != len(ids):
        raise RuntimeError("two different videos got the same video_id (pseudonym collision): report this bug")
    return Resolved(videos, quarantine, paths)


def _quarantine_row(scan: Scan, label: str, reason: str, message: str | None, duplicate_of: str | None = None) -> dict:
    return {"source_sha256": scan.source_sha256, "file_label": label, "reason": reason,
            "message": message or REASONS[reason], "duplicate_of": duplicate_of}


def _video_row(scan: Scan, video_id: str, patient_id: str, acquired: date | None, cutoff: date) -> dict:
    info = scan.info
    box = tissue_region(info.regions, info.height, info.width) or (None, None, None, None)
    technical = {k: v for k, v in info.technical.items() if k in ALLOWED_HEADER_FIELDS}
    model = " ".join(str(technical[k]) for k in ("Manufacturer", "ManufacturerModelName") if technical.get(k))
    return {
        "video_id": video_id, "patient_id": patient_id,
        "period": "temporal" if acquired is not None and acquired >= cutoff else "development",
        "date_missing": acquired is None, "kind": info.kind, "n_frames": info.n_frames, "fps": float(info.fps),
        "fps_source": info.fps_source, "variable_frame_rate": bool(info.variable_frame_rate),
        "height": info.height, "width": info.width,
        "region_x0": box[0], "region_y0": box[1], "region_x1": box[2], "region_y1": box[3],
        "source_sha256": scan.source_sha256, "pixel_sha256": scan.pixel_sha256,
        "technical": json.dumps(technical, sort_keys=True, separators=(",", ":")),
        "manufacturer_model": model or None,
    }


def table(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """Rows -> a DataFrame with exactly `columns` (order and dtypes), also when empty."""
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(columns)


# ---------------------------------------------------------------- stage

def main(
    params_path: Path = paths.PARAMS,
    raw_dir: Path = paths.RAW,
    out_dir: Path = paths.INDEX,
    strict: bool | None = None,
    show_paths: bool = False,
    demo_key: bool | None = None,
) -> int:
    """Run the stage; 0 on success, 1 when strict (argument, else params) and anything was quarantined.

    show_paths: also print the local paths of quarantined files (terminal only; they hold PHI).
    demo_key: use the public demo key (argument, else ingest.demo_key); otherwise a key is required unless
    the data is the synthetic demo (pseudonym.PseudonymKeyError says how to make one).
    """
    params = load_section(Path(params_path), "ingest", IngestParams)
    strict = params.strict if strict is None else strict
    demo_requested = params.demo_key if demo_key is None else demo_key
    requested_by = "ingest.demo_key" if demo_key is None else "--demo-key"
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir} is not a folder: put the raw DICOM/video files there "
                                "(or run `luskit synth` for the demo) or pass --raw-dir")
    check_key_before_scan(raw_dir, demo_requested)
    files = walk(raw_dir, params.ignore)
    scans = scan_all(files, params)
    identities = [p for p in (identity(s, params)[0] for s in scans if s.reason is None) if p]
    key, key_record = choose_key(identities, demo_identities(raw_dir), demo_requested, requested_by)
    result = resolve(scans, params, key)
    write_parquet_atomic(Path(out_dir) / VIDEOS_TABLE, table(result.videos, VIDEO_COLUMNS))
    write_parquet_atomic(Path(out_dir) / QUARANTINE_TABLE, table(result.quarantine, QUARANTINE_COLUMNS))
    write_key_record(Path(out_dir), key_record)
    report(len(files), result.videos, result.quarantine, Path(out_dir), key_record)
    if show_paths:
        for row, relpath in zip(result.quarantine, result.quarantined_paths):
            print(f"{row['file_label']}  {row['reason']}  {raw_dir / relpath}")
    return 1 if strict and result.quarantine else 0


def report(n_files: int, videos: list[dict], quarantine: list[dict], out_dir: Path, key_record: dict) -> None:
    """The summary on stdout, quarantined files (label and reason only, no paths) on stderr."""
    periods = Counter(row["period"] for row in videos)
    print(f"ingest: {n_files} files -> {len(videos)} videos "
          f"({periods['development']} development, {periods['temporal']} temporal), "
          f"{len(quarantine)} quarantined; tables in {out_dir}/")
    print(f"  pseudonym key: {key_record['kind']} ({key_record['why']})")
    for reason, count in sorted(Counter(row["reason"] for row in quarantine).items()):
        print(f"  quarantined {reason}: {count}")
    if not quarantine:
        return
    for row in quarantine[:_MAX_LISTED]:
        print(f"quarantined {row['file_label']}: {row['reason']}", file=sys.stderr)
    if len(quarantine) > _MAX_LISTED:
        print(f"... and {len(quarantine) - _MAX_LISTED} more (see {out_dir / QUARANTINE_TABLE})", file=sys.stderr)
    print("Paths are not shown (they hold patient identifiers). To see which local files these are, run "
          "`luskit ingest --show-paths` (prints to this terminal only).", file=sys.stderr)
