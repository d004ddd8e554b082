"""Write de-identified frames as browser-ready H.264 MP4, with nothing in the file but the pictures.

Format choices and their reasons:
- H.264 High, yuv420p, even width/height (4:2:0 needs them: we pad with black, never scale, so pixel
  geometry and calibration stay those of the source), tagged BT.601 limited range (the matrix the
  RGB->YUV conversion uses), so browsers and PyAV decode the same grey levels.
- Constant frame rate: frame i has pts i in a 1/fps time base, no B-frames, so presentation starts at
  0 and Label Studio's frame index = time * fps holds without edit-list games.
- Short GOP with scene-cut keyframes off: a keyframe exactly every `gop` frames, so clip extraction and
  review seek fast and predictably.
- `+faststart`: the moov box before mdat, so a browser can start playing before the download ends.
- No metadata: container/stream tags emptied, `fflags +bitexact` (no "Lavf..." encoder tag, no
  creation time), and the x264 version/options SEI removed with the `filter_units` bitstream filter.
- Identical frames give identical bytes, on any machine (DVC caches, the cross-machine lock check and the
  release sign-off, which binds to an output's sha256, rely on it): one encoder thread, and x264's
  `cpu-independent` mode. Without it x264 picks CPU-specific SIMD code for the macroblock-tree rate
  control, and that path is not even stable within one process: on an AVX-512 EPYC 3-9 % of repeated
  encodes of the same frames came out different (all from mbtree: `mbtree=0` or `cpu-independent=1`
  gave 1,200 of 1,200 identical; `aq-mode=0` did not).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import av.bitstream
import numpy as np

from curation.exact_pixels import ExactReformatter

PRESET = "medium"
_SEI = 6  # H.264 NAL unit type of SEI messages (x264 writes its version and options there)
# AVColorSpace/AVColorPrimaries/AVColorTransferCharacteristic SMPTE170M (= BT.601), AVColorRange MPEG.
_BT601, _TV_RANGE = 6, 1


def fps_fraction(fps: float) -> Fraction:
    """The frame rate as an exact fraction (29.97 -> 2997/100, 30000/1001 stays NTSC)."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def x264_options(crf: int, gop: int) -> dict[str, str]:
    """The libx264 options of every output video (see the module docstring; bench/ encodes with them too)."""
    return {"crf": str(crf), "preset": PRESET, "g": str(gop), "keyint_min": str(gop),
            "sc_threshold": "0", "bf": "0", "threads": "1", "flags": "+bitexact",
            "x264-params": "cpu-independent=1"}


def even_shape(height: int, width: int) -> tuple[int, int]:
    """(height, width) rounded up to even numbers."""
    return height + height % 2, width + width % 2


def pad_even(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H', W', 3) uint8 with black rows/columns added at the bottom/right to make H', W' even."""
    h, w = frame.shape[:2]
    eh, ew = even_shape(h, w)
    if (eh, ew) == (h, w):
        return frame
    out = np.zeros((eh, ew, 3), np.uint8)
    out[:h, :w] = frame
    return out


class Mp4Writer:
    """Streaming H.264 MP4 writer; use as a context manager. Frames: (height, width, 3) uint8 RGB.

    `height`/`width` are the frames' size; the video is that size padded up to even numbers.
    """

    def __init__(self, path: Path, height: int, width: int, fps: float, crf: int = 18, gop: int = 15) -> None:
        self.height, self.width = height, width
        self.frames_written = 0
        self._container = av.open(str(path), "w", format="mp4",
                                  container_options={"movflags": "+faststart", "fflags": "+bitexact"})
        self._container.metadata.clear()
        rate = fps_fraction(fps)
        self._time_base = 1 / rate
        stream = self._container.add_stream("libx264", rate=rate)
        stream.height, stream.width = even_shape(height, width)
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        stream.metadata.clear()
        ctx = stream.codec_context
        ctx.options = x264_options(crf, gop)
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = _BT601
        ctx.color_range = _TV_RANGE
        self._stream = stream
        # One reformatter for the whole video (a fresh one per frame cost more than the encode itself, measured
        # in bench/bench_curation.py), on swscale's exact path: the same YUV on any CPU.
        self._reformatter = ExactReformatter()
        self._strip_sei = av.bitstream.BitStreamFilterContext(f"filter_units=remove_types={_SEI}", stream)

    def write(self, frame: np.ndarray) -> None:
        """Append one (height, width, 3) uint8 RGB frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame is {frame.shape} {frame.dtype}, expected ({self.height}, {self.width}, 3) uint8")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(pad_even(frame)), format="rgb24")
        vf = self._reformatter.frame(vf, "yuv420p", src_colorspace="ITU601", dst_colorspace="ITU601")
        vf.pts = self.frames_written
        vf.time_base = self._time_base
        self._mux(self._stream.encode(vf))
        self.frames_written += 1

    def _mux(self, packets) -> None:
        for packet in packets:
            for clean in self._strip_sei.filter(packet):
                self._container.mux(clean)

    def close(self) -> None:
        """Flush the encoder and finish the file (writes the moov box, moved to the front)."""
        if self._container is None:
            return
        try:
            self._mux(self._stream.encode(None))
            for clean in self._strip_sei.filter(None):
                self._container.mux(clean)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float, crf: int = 18, gop: int = 15) -> int:
    """Encode an iterable of equally sized (H, W, 3) uint8 RGB frames to `path`; returns the frame count."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to write")
    with Mp4Writer(path, first.shape[0], first.shape[1], fps, crf, gop) as writer:
        writer.write(first)
        for frame in it:
            writer.write(frame)
        return writer.frames_written


def top_level_boxes(path: Path) -> list[str]:
    """The MP4 top-level box types in file order, e.g. ['ftyp', 'moov', 'mdat'] (faststart: moov first)."""
    boxes = []
    with open(path, "rb") as fh:
        while header := fh.read(8):
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            boxes.append(kind.decode("latin-1"))
            if size == 1:  # 64-bit size follows the type
                size = struct.unpack(">Q", fh.read(8))[0]
                fh.seek(size - 16, 1)
            elif size == 0:  # box runs to the end of the file
                break
            else:
                fh.seek(size - 8, 1)
    return boxes


def probe_output(path: Path) -> dict:
    """What a decoder sees in an output MP4: codec, pix_fmt, size, rate, frame count, keyframe indices,
    packet durations and every container/stream tag. Decodes all frames (to count them exactly)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.duration, p.is_keyframe) for p in container.demux(stream) if p.size]
        tags = {**{f"format.{k}": v for k, v in container.metadata.items()},
                **{f"stream.{k}": v for k, v in stream.metadata.items()}}
        info = {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                "width": stream.codec_context.width, "height": stream.codec_context.height,
                "rate": stream.average_rate, "time_base": stream.time_base, "tags": tags}
    packets.sort()
    with av.open(str(path)) as container:
        n = sum(1 for _ in container.decode(video=0))
    info.update(frames=n, keyframes=[i for i, p in enumerate(packets) if p[2]],
                durations=sorted({p[1] for p in packets}), first_pts=packets[0][0] if packets else None)
    return info
