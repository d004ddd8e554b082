"""Headerless video files (MP4/MOV, AVI, MPEG-2 PS, GIF, MKV) -> SourceInfo and (H, W, 3) uint8 RGB frames.

The container is chosen by content, not by name (some .avi files hold MP4). Before FFmpeg sees a
file, its first bytes must match a known video signature: that keeps playlists (HLS/concat text
files that make FFmpeg open other paths) and random bytes away from the demuxers.

`probe_video` demuxes every packet of the video stream without decoding (cheap): the packet count
is the frame count, which also covers MPEG-2 program streams whose container states none; their
timestamps tell constant from variable frame rate. It decodes the first frame only, to prove the
codec works. `iter_video` decodes; a variable-rate source is resampled to its average rate by
nearest-timestamp selection, so it yields exactly probe's `n_frames` either way.

No FFmpeg/PyAV exception text is passed on: it names the path, which holds MRNs under data/raw.
Container metadata (title, comment, creation_time) is never read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from curation.exact_pixels import ExactReformatter
from curation.readers import (
    FPS_RANGE, VFR_TOLERANCE, SourceInfo, UnreadableInput, relative_spread, resample_nearest,
)

FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2", "avi", "gif", "mpeg", "mpegvideo", "mpegts", "matroska,webm"}
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_STILLS = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*")


def signature(head: bytes) -> str | None:
    """The family of a file from its first 376 bytes: a video container, 'still', or None."""
    if head[4:8] in _ISO_BOXES:
        return "isobmff"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpegts"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head.startswith(_STILLS) and len(head) >= 8:
        return "still"
    return None


def _open(path: Path) -> av.container.InputContainer:
    with open(path, "rb") as fh:
        head = fh.read(376)
    family = signature(head)
    if family is None:
        raise UnreadableInput("not_media", "no DICOM preamble and no known video signature" if head else "empty file")
    if family == "still":
        raise UnreadableInput("single_frame_image", "a still image file")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except Exception as err:
        if family == "isobmff":
            # An MP4 whose index (moov) sits at the end loses it when the copy is cut short.
            raise UnreadableInput("truncated", f"MP4/MOV container cannot be opened ({type(err).__name__})") from None
        raise UnreadableInput("not_media", f"{family} container cannot be opened ({type(err).__name__})") from None


def probe_video(path: Path, default_fps: float, max_frames: int, max_side: int) -> SourceInfo:
    """Classify and describe one video file; raises UnreadableInput (see readers.REASONS)."""
    with _open(path) as container:
        fmt = container.format.name
        if fmt not in FORMATS or not container.streams.video:
            raise UnreadableInput("not_media", f"container '{fmt}' with no supported video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name if stream.codec_context else None
        if not codec:
            raise UnreadableInput("unsupported_codec", "video stream without a decoder")
        declared = int(stream.frames or 0)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width > max_side or height > max_side:  # refuse before decoding a giant frame
            raise UnreadableInput("absurd_dimensions", f"{width}x{height} pixels above {max_side} (ingest.max_side)")
        times, last_duration = _demux_times(container, stream, max_frames)
        technical = {"container": fmt, "codec": codec, "pix_fmt": stream.codec_context.pix_fmt,
                     "frames_declared": declared}
        if stream.average_rate:
            technical["average_rate"] = round(float(stream.average_rate), 4)
        rate_candidates = (stream.average_rate, stream.guessed_rate)
        time_base = float(stream.time_base) if stream.time_base else 0.0
    n = len(times)
    if n == 0:
        raise UnreadableInput("zero_frames", "the video stream holds no frame packets")
    if declared > n:
        raise UnreadableInput("truncated", f"container declares {declared} frames, {n} are present")
    if n == 1:
        raise UnreadableInput("single_frame_image", "a one-frame video")
    height, width = _first_frame_size(path)
    if not (0 < height <= max_side and 0 < width <= max_side):
        raise UnreadableInput("absurd_dimensions", f"{width}x{height} pixels outside 1..{max_side} (ingest.max_side)")
    fps, source, vfr, spread = _frame_rate(times, last_duration, time_base, rate_candidates, default_fps)
    if spread is not None:
        technical["duration_spread"] = round(spread, 4)
    return SourceInfo(kind="video", height=height, width=width, n_frames=n, fps=fps, fps_source=source,
                      variable_frame_rate=vfr, technical=technical)


def _demux_times(container, stream, max_frames: int) -> tuple[list[float | None], float]:
    """Presentation times (s) of every frame packet in order of time, and the last packet's duration (s)."""
    times: list[float | None] = []
    last_duration = 0.0
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue  # flush packets, and frames an MP4 edit list cuts away (the decoder drops them too)
            times.append(float(packet.pts * packet.time_base) if packet.pts is not None else None)
            if packet.duration and packet.time_base:
                last_duration = float(packet.duration * packet.time_base)
            if len(times) > max_frames:
                raise UnreadableInput("absurd_dimensions", f"more than {max_frames} frames (ingest.max_frames)")
    except UnreadableInput:
        raise
    except Exception as err:
        detail = f"container damaged after {len(times)} packets ({type(err).__name__})"
        raise UnreadableInput("decode_error", detail) from None
    if all(t is not None for t in times):
        times.sort()
    return times, last_duration


def _first_frame_size(path: Path) -> tuple[int, int]:
    with _open(path) as container:
        try:
            for frame in container.decode(container.streams.video[0]):
                return frame.height, frame.width
        except Exception as err:
            raise UnreadableInput("decode_error", f"first frame does not decode ({type(err).__name__})") from None
    raise UnreadableInput("zero_frames", "no frame decodes")


def _frame_rate(times, last_duration: float, tick: float, candidates, default_fps: float):
    """(fps, fps_source, variable_frame_rate, duration spread or None) from timestamps and container rates."""
    lo, hi = FPS_RANGE
    spread = None
    if all(t is not None for t in times):
        durations = np.diff(np.asarray(times, dtype=float))
        spread = relative_spread(durations, tick)
        if spread > VFR_TOLERANCE and np.all(durations >= 0):
            last = last_duration if last_duration > 0 else float(np.median(durations))
            span = times[-1] - times[0] + last
            if span > 0 and lo <= len(times) / span <= hi:
                # Resampled to the average rate: as many output frames as input frames over the same span.
                return len(times) / span, "container", True, spread
    for rate in candidates:
        if rate and lo <= float(rate) <= hi:
            return float(rate), "container", False, spread
    return float(default_fps), "default", False, spread


def iter_video(path: Path, info: SourceInfo) -> Iterator[np.ndarray]:
    """Yield exactly `info.n_frames` (H, W, 3) uint8 RGB frames at `info.fps` (see module docstring)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        frames = _decode(container, stream)
        if info.variable_frame_rate:
            frames = resample_nearest(((f.time, f) for f in frames), info.fps, info.n_frames)
        count = 0
        reformatter = ExactReformatter()  # the same RGB on any CPU (curation/exact_pixels.py)
        for frame in frames:
            if count == info.n_frames:
                raise UnreadableInput("decode_error", f"more than the {info.n_frames} frames the container listed")
            arr = reformatter.array(frame, "rgb24")
            if arr.shape != (info.height, info.width, 3):
                raise UnreadableInput("decode_error", f"frame size changes mid-stream ({arr.shape[1]}x{arr.shape[0]})")
            count += 1
            yield arr
    if count < info.n_frames:  # packets the decoder could not turn into pictures
        raise UnreadableInput("decode_error", f"decoded {count} of the {info.n_frames} frames the container holds")


def _decode(container, stream) -> Iterator[av.VideoFrame]:
    """Decoded frames in presentation order; decoder errors become UnreadableInput('decode_error')."""
    it = container.decode(stream)
    while True:
        try:
            frame = next(it, None)
        except Exception as err:
            raise UnreadableInput("decode_error", f"frame decoding failed ({type(err).__name__})") from None
        if frame is None:
            return
        yield frame
