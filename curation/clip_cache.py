"""Decode a de-identified video once, resize every frame, and keep it as a uint8 `.npy` cache.

Cache layout: `<clips>/cache/<video_id>.npy`, shape (n_frames, size, size) uint8 when grayscale,
(n_frames, size, size, 3) uint8 (RGB) otherwise; frame k of the array is frame k (0-based) of the
decoded MP4. Clips are index ranges into it; `load_clip` applies the seed's tail padding.

Decoding is one sequential pass with PyAV (no seeks: H.264 seeks land on keyframes and are the usual
source of off-by-a-few frame errors), and each frame is written to disk as soon as it is resized, so
memory stays flat whatever the video's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from curation.exact_pixels import ExactReformatter
from curation.clips import ClipParams, center_crop_box, clip_frame_indices, letterbox_box
from luskit.atomic import write_atomic


class FrameCountMismatch(ValueError):
    """The decoded frame count differs from the de-identification table's n_frames."""


def _area_axis(a: np.ndarray, n: int, m: int, axis: int) -> np.ndarray:
    """Area-downscale axis `axis` of `a` from n to m <= n samples, in exact integers scaled by m.

    Output cell i covers input [i*n/m, (i+1)*n/m); times m that is [i*n, (i+1)*n), and input pixel j covers
    [j*m, (j+1)*m): so cell i = m * (sum of the whole pixels inside) + the two partial edge pixels, weighted by
    the remainders. Its weights sum to n; values stay integers (int64).
    """
    bounds = np.arange(m + 1, dtype=np.int64) * n
    q, r = bounds // m, bounds % m
    whole = np.add.reduceat(a, q[:-1], axis=axis, dtype=np.int64)
    shape = [-1 if k == axis else 1 for k in range(a.ndim)]
    edge = np.take(a, np.minimum(q, n - 1), axis=axis).astype(np.int64) * r.reshape(shape)  # r = 0 at q = n
    upper, lower = [slice(None)] * a.ndim, [slice(None)] * a.ndim
    upper[axis], lower[axis] = slice(1, None), slice(None, -1)
    return m * whole + edge[tuple(upper)] - edge[tuple(lower)]


def area_resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W[, 3]) uint8 -> (height, width[, 3]) uint8 by pixel-area averaging, in integers only.

    OpenCV's INTER_AREA (the seed's resize) accumulates in float for non-integer ratios, and a float sum that lands
    on .5 may round either way with another CPU's instruction mix (e.g. fused multiply-add on aarch64). This
    computes the same average exactly and rounds half up: equal to OpenCV's output except at exact ties (measured:
    identical at 480x640->96x128 and 771x988->199x256; 0.4 % of pixels 1 level apart at 720x1280->72x128).
    Upscaling (any axis) goes to OpenCV's bit-exact fixed-point bilinear, as INTER_AREA itself does (bilinear).
    """
    h, w = frame.shape[:2]
    if height > h or width > w:
        return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR_EXACT)
    total = _area_axis(_area_axis(frame, h, height, 0), w, width, 1)
    area = h * w  # the two passes' weights: h per row cell times w per column cell
    return ((2 * total + area) // (2 * area)).astype(np.uint8)


def resize_frame(frame: np.ndarray, size: int, mode: str) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (size, size) or (size, size, 3) uint8.

    letterbox: aspect-preserving area resize centred on a black canvas (the seed's resize_ratio);
    center_crop: the central square, resized to size x size (fills the frame, loses the sides).
    Integer arithmetic only (area_resize): the cache is byte-identical on any CPU.
    """
    h, w = frame.shape[:2]
    if mode == "letterbox":
        box = letterbox_box(h, w, size)
        out = np.zeros((size, size) + frame.shape[2:], dtype=np.uint8)
        out[box.top:box.top + box.height, box.left:box.left + box.width] = area_resize(frame, box.width, box.height)
        return out
    if mode == "center_crop":
        box = center_crop_box(h, w)
        square = frame[box.top:box.top + box.height, box.left:box.left + box.width]
        return area_resize(square, size, size)
    raise ValueError(f"resize={mode!r}: use letterbox or center_crop")


def iter_frames(video_path: Path, grayscale: bool) -> Iterator[np.ndarray]:
    """Every frame of a video in presentation order: (H, W) uint8 luminance or (H, W, 3) uint8 RGB.

    Grey ultrasound stored as yuv420p carries all its information in luma; "gray" is full-range
    luma (equal to channel 0 of an RGB decode, within 1 grey level) without the chroma upsampling.
    """
    fmt = "gray" if grayscale else "rgb24"
    # One swscale context for the whole video: frame.to_ndarray(format=...) builds a new one per frame,
    # which cost 1.5x the H.264 decode itself (same conversion, same bytes).
    reformatter = ExactReformatter()  # the same bytes on any CPU (curation/exact_pixels.py)
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        # One decoder thread: the stage already runs one process per core (workers), and frame threads on
        # top only contend for the same cores (measured: 15% more CPU per frame, no faster on 2 cores).
        stream.thread_count = 1
        for frame in container.decode(stream):
            yield reformatter.array(frame, fmt)


def cache_shape(n_frames: int, params: ClipParams) -> tuple[int, ...]:
    side = (params.size, params.size)
    return (n_frames, *side) if params.grayscale else (n_frames, *side, 3)


def write_cache(video_path: Path, cache_path: Path, n_frames: int, params: ClipParams) -> int:
    """Decode `video_path`, resize each frame, write `cache_path` (.npy) atomically; returns n_frames.

    Raises FrameCountMismatch (nothing written) when the video does not decode to exactly n_frames:
    every clip's frame range refers to the table's count, so a different count would shift labels.
    """
    if n_frames < 1:
        raise FrameCountMismatch(f"the table says n_frames={n_frames}; a video needs at least one frame")
    shape = cache_shape(n_frames, params)

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            # Header first, then frames appended one by one: the .npy is written as a stream.
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                      "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(fh, header)
            count = 0
            for frame in iter_frames(video_path, params.grayscale):
                if count < n_frames:
                    fh.write(np.ascontiguousarray(resize_frame(frame, params.size, params.resize)).tobytes())
                count += 1  # keep counting past n_frames so the message gives the true count
        if count != n_frames:
            raise FrameCountMismatch(f"decoded {count} frames but the table says n_frames={n_frames}")

    write_atomic(Path(cache_path), writer)
    return n_frames


def load_cache(cache_path: Path) -> np.ndarray:
    """The whole cache, memory-mapped read-only: (n, size, size[, 3]) uint8."""
    return np.load(cache_path, mmap_mode="r")


def load_clip(cache_path: Path, start: int, end: int, length: int) -> np.ndarray:
    """Frames [start, end) of a cache padded to `length` by repeating frame end-1.

    Returns (length, size, size) uint8 ((length, size, size, 3) for RGB caches), a fresh array.
    """
    frames = load_cache(cache_path)
    if end > frames.shape[0]:
        raise IndexError(f"{cache_path}: clip [{start}, {end}) runs past its {frames.shape[0]} frames; "
                         "the manifest and cache disagree: rerun the clips stage")
    real = np.asarray(frames[start:end])  # one contiguous read, then pad in memory
    return real[clip_frame_indices(start, end, length) - start]
