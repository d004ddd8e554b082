"""Pixel-format conversions that give the same bytes on every CPU (one home for every swscale call).

swscale's default colour/range conversion takes CPU-specific SIMD paths (x86 SSE/AVX2/AVX-512, NEON) that do not
round alike: measured here on a limited-range H.264, grey differed by up to 2 levels between the default and the
exact path, and rgb24 decodes of source videos likewise. BITEXACT | ACCURATE_RND pins the portable C path and one
slice thread fixes the slice layout, so decoded sources, encoder input and the clip cache are byte-identical on
any machine with the same lock (issue: reproducible curation across CPUs).
"""

from __future__ import annotations

import av
import av.video.reformatter
import numpy as np
from av.video.reformatter import Interpolation

EXACT = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT


class ExactReformatter:
    """One swscale context for a whole video (a fresh one per frame costs more than decoding a small frame),
    always on the exact path."""

    def __init__(self) -> None:
        self._reformatter = av.video.reformatter.VideoReformatter()

    def frame(self, frame: av.VideoFrame, fmt: str, **colour) -> av.VideoFrame:
        """`frame` converted to pixel format `fmt` (colour: src/dst_colorspace etc., as PyAV's reformat)."""
        return self._reformatter.reformat(frame, format=fmt, interpolation=EXACT, threads=1, **colour)

    def array(self, frame: av.VideoFrame, fmt: str) -> np.ndarray:
        """(H, W, 3) uint8 for rgb24, (H, W) uint8 for gray."""
        return self.frame(frame, fmt).to_ndarray()
