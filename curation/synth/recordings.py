"""Screen recordings: MP4 captures of the whole scanner monitor, with no DICOM header at all.

Some teams record the scanner screen instead of exporting DICOM. Such files have no Sequence of
Ultrasound Regions and no patient header: identity comes from the folder they were filed in, and the
fan must be found from the pixels. The capture adds a window bar with the patient's name again.
"""

from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image, ImageDraw

from curation.exact_pixels import ExactReformatter
from curation.synth.screen import SCREEN_H, SCREEN_W, _font

CAPTURE_H, CAPTURE_W = 368, 480
_OFF_Y, _OFF_X = 48, (CAPTURE_W - SCREEN_W) // 2


def capture_frame(screen: np.ndarray, title: str) -> np.ndarray:
    """Embed a (SCREEN_H,SCREEN_W) uint8 screen into a (CAPTURE_H,CAPTURE_W,3) uint8 capture."""
    frame = np.full((CAPTURE_H, CAPTURE_W, 3), 24, dtype=np.uint8)
    frame[_OFF_Y:_OFF_Y + SCREEN_H, _OFF_X:_OFF_X + SCREEN_W] = screen[..., None] if screen.ndim == 2 else screen
    frame[:30] = _title_bar(title)
    return frame


def _title_bar(title: str) -> np.ndarray:
    img = Image.new("RGB", (CAPTURE_W, 30), (52, 58, 70))
    ImageDraw.Draw(img).text((8, 6), title, fill=(240, 240, 240), font=_font(14))
    return np.asarray(img, dtype=np.uint8)


def encode_mp4(frames: np.ndarray, fps: float) -> bytes:
    """Encode (T,H,W,3) uint8 RGB frames as H.264 yuv420p MP4 bytes, the same bytes on any machine: one thread,
    x264's cpu-independent mode and swscale's exact path (without them the CPU-specific SIMD code of both made
    repeated runs differ now and then; see curation/deid/encode.py and curation/exact_pixels.py)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # One thread and no timestamps from the wall clock keep the bytes identical across runs.
        stream.codec_context.options = {"crf": "20", "preset": "veryfast", "threads": "1",
                                        "x264-params": "cpu-independent=1"}
        stream.thread_count = 1
        yuv = ExactReformatter()
        for frame in frames:
            for packet in stream.encode(yuv.frame(av.VideoFrame.from_ndarray(frame, format="rgb24"), "yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()
