"""curation.clip_cache.area_resize: exact pixel-area averaging in integers (byte-identical on any CPU)."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from curation.clip_cache import area_resize


def exact_area(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """The definition, in fractions: each output pixel is the overlap-weighted mean of the input pixels under it,
    rounded half up."""
    h, w = frame.shape
    out = np.zeros((height, width), np.uint8)
    for i in range(height):
        for j in range(width):
            total = Fraction(0)
            for y in range(h):
                dy = max(0, min(Fraction((i + 1) * h, height), y + 1) - max(Fraction(i * h, height), y))
                for x in range(w):
                    dx = max(0, min(Fraction((j + 1) * w, width), x + 1) - max(Fraction(j * w, width), x))
                    total += dy * dx * int(frame[y, x])
            mean = total / (Fraction(h, height) * Fraction(w, width))
            out[i, j] = int(mean + Fraction(1, 2))
    return out


@pytest.mark.parametrize("shape", [(7, 5, 3, 2), (9, 13, 4, 6), (10, 10, 10, 10), (6, 9, 6, 3), (11, 7, 5, 7),
                                   (12, 16, 3, 4)])
def test_equals_the_definition(shape):
    h, w, height, width = shape
    frame = np.random.default_rng(sum(shape)).integers(0, 256, (h, w), dtype=np.uint8)
    assert np.array_equal(area_resize(frame, width, height), exact_area(frame, width, height))


def test_ties_round_half_up():
    frame = np.array([[0, 1]], np.uint8)  # mean 0.5
    assert area_resize(frame, 1, 1).tolist() == [[1]]


def test_within_one_level_of_opencv_inter_area_and_rgb_per_channel():
    rng = np.random.default_rng(0)
    for _ in range(100):
        h, w = (int(v) for v in rng.integers(20, 300, 2))
        height, width = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours = area_resize(frame, width, height)
        theirs = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        assert ours.shape == theirs.shape and np.abs(ours.astype(int) - theirs).max() <= 1
        assert np.array_equal(ours[..., 1], area_resize(np.ascontiguousarray(frame[..., 1]), width, height))


def test_upscaling_uses_opencvs_bit_exact_bilinear():
    frame = np.random.default_rng(1).integers(0, 256, (40, 60), dtype=np.uint8)
    assert np.array_equal(area_resize(frame, 128, 85),
                          cv2.resize(frame, (128, 85), interpolation=cv2.INTER_LINEAR_EXACT))
