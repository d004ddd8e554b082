"""Read ultrasound sources (multi-frame DICOM and video files) one frame at a time.

CONTRACT (filled in by the ingest work; deidentify and the tests code against it):

    probe(path) -> SourceInfo            # cheap: header/container only, decodes at most what it must
    iter_frames(path, info) -> Iterator[np.ndarray]   # (H, W, 3) uint8 RGB, constant frame rate
    class UnreadableInput(Exception)     # .reason: one of REASONS; str(err) never contains PHI

SourceInfo carries PHI-bearing identifiers (patient_key, instance_key, acquired) in memory only:
callers turn them into pseudonyms/periods and must never write them out.

The format work lives in `readers_dicom.py` (pydicom, frame-by-frame decoding) and
`readers_video.py` (PyAV); this module holds the contract, the header allow-list, sniffing and the
constant-frame-rate resampler both share. DICOM is recognised by its 'DICM' preamble, never by
extension: scanner exports often have no extension at all (IM00001), and a video may be named .avi
while holding an MP4.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

REASONS = {
    "not_media": "neither DICOM nor a readable video: remove it from data/raw or convert it",
    "single_frame_image": "a still image, not a cine loop: images are excluded (as the seed did)",
    "no_ultrasound_region": "no Sequence of Ultrasound Regions with a tissue region (e.g. a patient-information screen)",
    "truncated": "file is cut short: re-export it from the scanner/PACS",
    "zero_frames": "no decodable frames",
    "unsupported_codec": "pixel data/codec cannot be decoded with the pinned plugins: re-export uncompressed or JPEG",
    "decode_error": "frames fail to decode (corrupt data): re-export the file",
    "absurd_dimensions": "implausible image size or frame count: check the export",
    "not_ultrasound": "DICOM modality/SOP class is not ultrasound",
    "missing_identity": "no patient identifier (PatientID, or the folder name for headerless videos)",
    "duplicate_instance": "same SOP Instance UID as an earlier file (kept the first; nothing deleted)",
    "duplicate_pixels": "same decoded pixels as an earlier file (kept the first; nothing deleted)",
    "unreadable": "the file cannot be read (vanished while the stage ran, permissions, an I/O error, not a regular "
                  "file): check it and rerun; `luskit ingest --show-paths` shows which local file it is",
    "worker_died": "the process reading this file died, also when retried alone (killed for memory or a crash "
                   "inside a decoder): check the file's size and format, re-export it, or give ingest more memory",
    "oversized_header": "the DICOM header holds implausibly large values outside the pixel data: re-export the "
                        "file without them (e.g. private or overlay data) or check it is not crafted",
}

# Defaults equal params.yaml's ingest section; ingest passes its own values.
DEFAULT_FPS = 30.0
MAX_FRAMES = 20000
MAX_SIDE = 4096
# A frame rate outside this range is a header error, not a scanner setting: fall through to the next source.
FPS_RANGE = (0.5, 1000.0)
# Relative spread of frame durations above which a source counts as variable-frame-rate.
VFR_TOLERANCE = 0.05

# The only header/container fields that may leave the reader in `SourceInfo.technical` (and from there
# reach videos.parquet). Everything here describes the device or the encoding, never the patient, the
# study, the operator, a date or an instance. Anything not listed is dropped, however harmless it looks.
ALLOWED_HEADER_FIELDS: tuple[str, ...] = (
    # --- DICOM (keywords) ---
    "Modality",  # "US": shows why a file passed the not_ultrasound check
    "SOPClassName",  # the SOP class's standard *name* (not a UID): image vs multi-frame storage
    "TransferSyntaxUID",  # a public standard constant naming the codec; explains decode errors
    "Manufacturer",  # device maker: per-device manual regions, domain-shift analysis by scanner
    "ManufacturerModelName",  # scanner model: same reason
    "Rows",  # frame height in pixels
    "Columns",  # frame width in pixels
    "NumberOfFrames",  # cine length as the header states it
    "SamplesPerPixel",  # 1 grey / 3 colour: decoding path
    "PhotometricInterpretation",  # MONOCHROME2 / RGB / YBR_* / PALETTE COLOR: decoding path
    "PlanarConfiguration",  # colour-by-pixel vs colour-by-plane: decoding path
    "BitsAllocated",  # container bit depth: decoding path
    "BitsStored",  # used bit depth: scaling to uint8
    "FrameTime",  # ms per frame: where fps came from
    "CineRate",  # frames/s as acquired: fps provenance
    "RecommendedDisplayFrameRate",  # frames/s for display: fps provenance
    "FrameTimeVectorSpread",  # derived: relative spread of Frame Time Vector entries (variable rate evidence)
    "LossyImageCompression",  # pixels were already lossy-compressed upstream: image-quality context
    "BurnedInAnnotation",  # the scanner says text is burned into the pixels: deidentify must mask
    "Regions",  # Sequence of Ultrasound Regions geometry, restricted to REGION_FIELDS below
    # --- video containers (PyAV); container metadata tags (title, creation_time, ...) are never read ---
    "container",  # demuxer name (mov,mp4 / avi / mpeg / gif): the file's real format, whatever its suffix
    "codec",  # h264 / mpeg4 / mpeg2video / gif: decoding path
    "pix_fmt",  # yuv420p / yuv444p / bgra: colour path
    "frames_declared",  # frame count the container states (0 when it states none, e.g. MPEG-2 PS)
    "average_rate",  # container average frame rate: fps provenance
    "duration_spread",  # derived: relative spread of frame durations (variable rate evidence)
)

# Geometry of one Sequence-of-Ultrasound-Regions item: where the image is, what it shows, its scale
# (cm per pixel) and the probe apex (ReferencePixelX0/Y0) that fan masking needs.
REGION_FIELDS: tuple[str, ...] = (
    "RegionSpatialFormat", "RegionDataType", "RegionFlags",
    "RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1", "RegionLocationMaxY1",
    "PhysicalUnitsXDirection", "PhysicalUnitsYDirection", "PhysicalDeltaX", "PhysicalDeltaY",
    "ReferencePixelX0", "ReferencePixelY0",
)


class UnreadableInput(Exception):
    """A source that cannot be used. `reason` is a key of REASONS; the message names no PHI."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {REASONS[reason]}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class Region:
    """One Sequence-of-Ultrasound-Regions item. Coordinates are inclusive pixel indices (DICOM)."""

    x0: int
    y0: int
    x1: int
    y1: int
    data_type: int  # RegionDataType: 1 = tissue
    spatial_format: int  # RegionSpatialFormat: 1 = 2D
    delta_x_cm: float | None = None
    delta_y_cm: float | None = None


@dataclass(frozen=True)
class SourceInfo:
    kind: str  # "dicom" | "video"
    height: int
    width: int
    n_frames: int  # exact (counted by decoding where the container does not say)
    fps: float  # output (constant) frame rate
    # "FrameTime" | "FrameTimeVector" | "CineRate" | "RecommendedDisplayFrameRate" | "container" | "default"
    fps_source: str
    variable_frame_rate: bool  # input timestamps were irregular: iter_frames resamples to `fps`
    regions: tuple[Region, ...] = ()
    # PHI, memory only:
    patient_key: str | None = None  # DICOM PatientID (None for headerless video)
    instance_key: str | None = None  # SOP Instance UID (None for headerless video)
    acquired: date | None = None  # Acquisition/Content/Series/Study date, first present
    # Allow-listed technical header fields (safe to write): see ALLOWED_HEADER_FIELDS
    technical: dict = field(default_factory=dict)


def probe(
    path: Path,
    *,
    default_fps: float = DEFAULT_FPS,
    max_frames: int = MAX_FRAMES,
    max_side: int = MAX_SIDE,
) -> SourceInfo:
    """Read the header/container of `path` and classify it; raises UnreadableInput with a reason.

    DICOM: header and pixel-data layout only (no frame is decoded). Video: demuxes every packet
    (timestamps, count) and decodes the first frame to prove the codec works.
    `default_fps` is used only when neither header nor container gives a frame rate.
    """
    path = Path(path)
    try:
        kind = sniff(path)
        if kind == "dicom":
            from curation import readers_dicom

            return readers_dicom.probe_dicom(path, default_fps, max_frames, max_side)
        from curation import readers_video

        return readers_video.probe_video(path, default_fps, max_frames, max_side)
    except OSError as err:  # vanished or unreadable: the OS message holds the path (PHI), so only its type
        raise UnreadableInput("unreadable", type(err).__name__) from None


def iter_frames(path: Path, info: SourceInfo) -> Iterator[np.ndarray]:
    """Yield exactly `info.n_frames` frames of `path`, each (H, W, 3) uint8 RGB, at `info.fps`.

    Streams: holds at most two decoded frames. Raises UnreadableInput when the file does not
    decode to what `probe` promised (a truncated or corrupt file).
    """
    path = Path(path)
    if info.kind == "dicom":
        from curation import readers_dicom

        return _unreadable_as_input_error(readers_dicom.iter_dicom(path, info))
    from curation import readers_video

    return _unreadable_as_input_error(readers_video.iter_video(path, info))


def _unreadable_as_input_error(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The frames; an OSError (file gone or unreadable mid-way) becomes UnreadableInput without the path."""
    try:
        yield from frames
    except OSError as err:
        raise UnreadableInput("unreadable", type(err).__name__) from None


def sniff(path: Path) -> str:
    """'dicom' if the file has the DICOM Part 10 preamble ('DICM' at byte 128), else 'video'."""
    with open(path, "rb") as fh:
        head = fh.read(132)
    return "dicom" if len(head) == 132 and head[128:132] == b"DICM" else "video"


def tissue_region(regions: Iterable[Region], height: int, width: int) -> tuple[int, int, int, int] | None:
    """The largest 2D tissue region clipped to the frame: (x0, y0, x1, y1) inclusive, or None.

    Scanners sometimes state a box one pixel past the image (x1 == Columns): clipping keeps it usable.
    """
    best, best_area = None, 0
    for r in regions:
        if r.data_type != 1 or r.spatial_format not in (0, 1):
            continue
        x0, y0 = max(0, r.x0), max(0, r.y0)
        x1, y1 = min(width - 1, r.x1), min(height - 1, r.y1)
        area = (x1 - x0 + 1) * (y1 - y0 + 1) if x1 >= x0 and y1 >= y0 else 0
        if area > best_area:
            best, best_area = (x0, y0, x1, y1), area
    return best


def relative_spread(durations: np.ndarray, tick: float = 0.0) -> float:
    """(max - min) / median of frame durations, forgiving one time-base tick of rounding; 0 if < 2."""
    d = np.asarray(durations, dtype=float)
    if d.size < 2:
        return 0.0
    med = float(np.median(d))
    if med <= 0:
        return float("inf")
    return max(0.0, float(d.max() - d.min()) - tick) / med


T = TypeVar("T")


def resample_nearest(timed: Iterable[tuple[float, T]], fps: float, n_out: int) -> Iterator[T]:
    """Constant-rate selection from timestamped items (seconds, increasing).

    Yields exactly `n_out` items (when the input has at least one): for each target time
    t0 + k / fps the input item with the nearest timestamp (ties: the earlier one). Holds only the
    two items around the current target, so memory stays flat for any length.
    """
    it = iter(timed)
    prev = next(it, None)
    if prev is None:
        return
    t0 = prev[0]
    nxt = next(it, None)
    for k in range(n_out):
        target = t0 + k / fps
        while nxt is not None and nxt[0] <= target:
            prev, nxt = nxt, next(it, None)
        if nxt is not None and (nxt[0] - target) < (target - prev[0]):
            yield nxt[1]
        else:
            yield prev[1]


def to_rgb_uint8(arr: np.ndarray, bits_stored: int = 8, invert: bool = False) -> np.ndarray:
    """Any decoded grey (H,W) / colour (H,W,3) array -> (H,W,3) uint8 RGB, C-contiguous.

    Deeper-than-8-bit data is shifted down to its top 8 stored bits; `invert` serves MONOCHROME1.
    """
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        shift = max(0, min(bits_stored, a.dtype.itemsize * 8) - 8)
        a = np.clip(a.astype(np.int64) >> shift, 0, 255).astype(np.uint8)
    if invert:
        a = 255 - a
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        # Grey -> RGB by copying the plane into 3 channels: OpenCV does it 14x faster than np.repeat.
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_GRAY2RGB)
    elif a.ndim != 3 or a.shape[2] not in (3, 4):
        raise UnreadableInput("decode_error", f"unexpected decoded shape {tuple(a.shape)}")
    return np.ascontiguousarray(a[:, :, :3])


def json_safe(value: Any) -> Any:
    """pydicom/PyAV values (IS, DSfloat, MultiValue, Fraction) -> plain JSON types."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):  # pydicom IS subclasses int
        return int(value)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [json_safe(v) for v in value]
    try:
        return float(value)  # DSfloat, Fraction, numpy floats
    except (TypeError, ValueError):
        return str(value)
