"""Which pixels of an ultrasound video to keep: the tissue image, and nothing of the scanner UI around it.

Three ways to find the image, in order of trust (the stage picks the first that applies):

1. `region_tissue_mask`: the DICOM Sequence of Ultrasound Regions tissue box (RegionDataType 1), and
   inside it the tissue found from the pixels. The box says where the image may lie, not that all of it
   is image: scanners draw UI panels (preset, probe, frequency) inside it. Within the box the fan finder
   below runs on the box's own pixels, with a looser rule for dim near-field lines (see
   `AutoMaskConfig.stir_floor`); when nothing moves in the box (a frozen loop) the whole box is kept and
   the text search of the output decides.
2. `fan_mask_from_stats`: for inputs without regions (screen recordings, exported videos) the fan is
   found from the pixels. Tissue speckle changes from frame to frame while burned-in text, rulers and
   logos stay put, so the fan is the blob of not-black pixels that moves most (plus blobs moving
   nearly as much); its convex hull (sectors and linear images are convex) is the mask.
3. `manual_region`: a per-device box from params (`deidentify.manual_regions`) when 2 finds nothing.

Everything here is pure: arrays in, arrays out. Boxes are (x0, y0, x1, y1) with INCLUSIVE corners, as
DICOM RegionLocationMin/Max are. Frames are (H, W, 3) uint8 RGB; masks are (H, W) bool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 inclusive

# Gray level above which a pixel counts as image content: decoders leave codec black at 0-16
# (limited-range black is 16), so anything at or below is "black" for kept-fraction accounting.
NONBLACK = 16


@dataclass(frozen=True)
class AutoMaskConfig:
    """Knobs of the automatic fan finder (defaults tuned on synthetic screens, POCUS clips and raw_ui)."""

    max_samples: int = 64  # frames (evenly spaced) that feed the temporal statistics
    std_floor: float = 1.5  # gray levels: below this a pixel is static whatever the video's contrast
    std_rel: float = 0.05  # ... and below this fraction of the video's strong (99.5th pct) variation
    min_area: float = 0.02  # a fan smaller than this fraction of the frame is "no fan found"
    blob_rel: float = 0.2  # other blobs moving at least this share of the most moving one are image too
    part_area: float = 0.02  # ... or this share of its area, moving at least blob_rel as densely
    min_moving: float = 0.002  # fewer moving pixels than this fraction of the frame: a still, no fan found
    margin_px: int = 2  # grow the hull: fan borders fade and vary less than its middle
    # Inside a region box only: gray-level std at which a pixel has changed at all. Near-field lines of a
    # linear probe barely move (Philips cine: std 0.3-0.4 against 3.4 in the speckle) yet are image;
    # UI in an uncompressed DICOM is exactly still (std 0).
    stir_floor: float = 0.2


def clip_box(box: Sequence[int], shape: tuple[int, int]) -> Box:
    """Clip an inclusive box to an (H, W) image; ValueError when nothing is left."""
    h, w = shape
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box {tuple(box)} lies outside the {w}x{h} image")
    return x0, y0, x1, y1


def region_mask(shape: tuple[int, int], boxes: Iterable[Sequence[int]]) -> np.ndarray:
    """(H, W) bool: True inside any of the inclusive `boxes` (clipped to the image)."""
    mask = np.zeros(shape, dtype=bool)
    for box in boxes:
        x0, y0, x1, y1 = clip_box(box, shape)
        mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask


def mask_bbox(mask: np.ndarray) -> Box | None:
    """Inclusive bounding box of the True pixels of an (H, W) bool mask; None if empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def manual_region(manual_regions: Mapping[str, Sequence[int]], model: str | None, width: int,
                  height: int) -> tuple[str, Box] | None:
    """The params box for this device: the key `manufacturer_model` first, then `"<W>x<H>"` (e.g. "480x368").

    Screen recordings carry no model, so the capture size names the setup; a model key wins because one
    scanner model draws its image at the same place whatever it is recorded with.
    """
    for key in ((model.strip() if model else None), f"{width}x{height}"):
        if key and key in manual_regions:
            return key, clip_box(manual_regions[key], (height, width))
    return None


def sample_indices(n_frames: int, max_samples: int) -> np.ndarray:
    """Evenly spaced frame indices (sorted, unique) for the temporal statistics."""
    return np.unique(np.linspace(0, max(n_frames - 1, 0), min(max_samples, max(n_frames, 1))).round().astype(int))


def gray_mean(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) float32 mean of the three channels, bit-identical to
    `frame.mean(axis=2, dtype=np.float32)` (the sum is an exact integer, then one correctly rounded
    division by 3) but 9x faster: numpy reduces a length-3 last axis with a slow generic loop."""
    total = np.add(frame[..., 0], frame[..., 1], dtype=np.uint16)
    total += frame[..., 2]
    return total.astype(np.float32) / np.float32(3)


def channel_max(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 brightest channel (= frame.max(axis=2), 16x faster)."""
    return np.maximum(np.maximum(frame[..., 0], frame[..., 1]), frame[..., 2])


class FrameStats:
    """Streaming per-pixel gray statistics: mean, std and max over the frames added (memory O(H*W))."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = self._sq = self._max = None

    def add(self, frame: np.ndarray) -> None:
        """Accumulate one (H, W, 3) uint8 RGB frame."""
        gray = gray_mean(frame)
        if self._sum is None:
            self._sum = np.zeros(gray.shape, np.float64)
            self._sq = np.zeros(gray.shape, np.float64)
            self._max = np.zeros(gray.shape, np.float32)
        self._sum += gray
        self._sq += gray.astype(np.float64) ** 2
        np.maximum(self._max, gray, out=self._max)
        self.count += 1

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """((H,W) float32 mean, (H,W) float32 std, (H,W) float32 max) of the gray values."""
        if not self.count:
            raise ValueError("no frames were added")
        mean = self._sum / self.count
        std = np.sqrt(np.maximum(self._sq / self.count - mean**2, 0.0))
        return mean.astype(np.float32), std.astype(np.float32), self._max.copy()


def _content_blobs(peak: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected blobs of pixels that are ever not black: (count incl. background, (H, W) int32 labels).

    A 3x3 opening first cuts 1-2 px strokes (ruler ticks, thin glyphs, cursor lines, codec ringing), so
    that UI drawn next to the image does not join it. No closing: it would bridge a banner a few pixels
    above the fan; the convex hull fills the fan's dark gaps instead.
    """
    content = cv2.morphologyEx((peak > NONBLACK).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return cv2.connectedComponents(content, connectivity=8)


def _pick_blobs(labels: np.ndarray, n: int, moving: np.ndarray, cfg: AutoMaskConfig,
                stirring: np.ndarray | None = None) -> np.ndarray | None:
    """(H, W) bool: the blobs where the video moves (a fan, its still near field cut off by a black band,
    or each view of a clip that cuts between two); None if nothing moves.

    Tissue moves (breathing, probe, speckle) and UI does not, so each blob is scored by its moving
    pixels. The most moving blob is the image; another joins it when it moves about as much, or when it
    is not tiny and moves as densely (skin lines above a black band). Surviving glyph pieces and a
    ticking clock are tiny; UI panels and logos do not move. `stirring` ((H, W) bool, region boxes only):
    a blob that is not tiny also joins when this share (blob_rel) of its pixels stirs at all.
    """
    h, w = labels.shape
    score = np.bincount(labels[moving], minlength=n)[1:].astype(np.float64)
    area = np.bincount(labels.ravel(), minlength=n)[1:].astype(np.float64)
    if not score.size or score.max() < cfg.min_moving * h * w:
        return None
    main = int(np.argmax(score))
    density = score / np.maximum(area, 1)
    big = area >= cfg.part_area * area[main]
    keep = (score >= cfg.blob_rel * score[main]) | (big & (density >= cfg.blob_rel * density[main]))
    if stirring is not None:
        stirred = np.bincount(labels[stirring], minlength=n)[1:] / np.maximum(area, 1)
        keep |= big & (stirred >= cfg.blob_rel)
    return np.isin(labels, 1 + np.flatnonzero(keep))


def _hull(mask: np.ndarray) -> np.ndarray:
    """(H, W) uint8 filled convex hull of the True pixels of `mask`."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(out, cv2.convexHull(np.concatenate(contours)), 1)
    return out


def fan_mask_from_stats(peak: np.ndarray, std: np.ndarray, cfg: AutoMaskConfig = AutoMaskConfig(),
                        in_region: bool = False) -> np.ndarray | None:
    """(H, W) bool fan mask from per-pixel temporal max and std of gray; None when no fan is found.

    peak, std: (H, W) float32 (see FrameStats). Steps: blobs of ever-not-black pixels -> keep the blobs
    that move -> convex hull (sectors and linear images are convex) -> a small margin. None when nothing
    moves (a still or frozen screen) or the hull is smaller than cfg.min_area of the frame.
    in_region: the statistics are those of a DICOM region box, so blobs that merely stir join too.
    """
    h, w = std.shape
    strong = float(np.percentile(std, 99.5))
    moving = std >= max(cfg.std_floor, cfg.std_rel * strong)
    n, labels = _content_blobs(peak)
    blobs = _pick_blobs(labels, n, moving, cfg, (std >= cfg.stir_floor) if in_region else None)
    if blobs is None:
        return None
    mask = _hull(blobs)
    if mask.sum() < cfg.min_area * h * w:
        return None
    if cfg.margin_px > 0:
        m = 2 * cfg.margin_px + 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (m, m)))
    return mask.astype(bool)


def region_tissue_mask(peak: np.ndarray, std: np.ndarray, box: Sequence[int],
                       cfg: AutoMaskConfig = AutoMaskConfig()) -> np.ndarray:
    """(H, W) bool: the tissue inside the inclusive region `box`, never a pixel outside it.

    peak, std: (H, W) float32 of the whole frame (see FrameStats). The fan finder runs on the box's own
    pixels (so the percentile scale and the blobs are those of the image area, and UI outside cannot
    join), with `in_region` set. When it finds nothing (nothing moves in the box) the whole box is
    returned: the box is then trusted whole and the text search of the output has the last word.
    """
    x0, y0, x1, y1 = clip_box(box, std.shape)
    whole = region_mask(std.shape, [(x0, y0, x1, y1)])
    rows, cols = slice(y0, y1 + 1), slice(x0, x1 + 1)
    fan = fan_mask_from_stats(peak[rows, cols], std[rows, cols], cfg, in_region=True)
    if fan is None:
        return whole
    mask = np.zeros(std.shape, bool)
    mask[rows, cols] = fan
    return mask


def auto_fan_mask(frames: Iterable[np.ndarray], cfg: AutoMaskConfig = AutoMaskConfig()) -> np.ndarray | None:
    """(H, W) bool fan mask from (H, W, 3) uint8 frames (all of them feed the statistics); None if no fan."""
    stats = FrameStats()
    for frame in frames:
        stats.add(frame)
    _, std, peak = stats.result()
    return fan_mask_from_stats(peak, std, cfg)


class Masker:
    """Black out everything outside `mask`, then crop to the inclusive `box`: one video's frames.

    mask: (H, W) bool; box: its bounding box. Calling it on an (H, W, 3) uint8 frame returns a new
    C-contiguous (y1-y0+1, x1-x0+1, 3) uint8 array (the encoder pads to even). The mask is prepared
    once: a rectangular mask (a DICOM region box) is a plain crop, and a fan multiplies by a 0/1
    (h, w, 3) array (broadcasting an (h, w, 1) mask per frame made numpy 20x slower).
    """

    def __init__(self, mask: np.ndarray, box: Box) -> None:
        x0, y0, x1, y1 = box
        self._rows, self._cols = slice(y0, y1 + 1), slice(x0, x1 + 1)
        inside = mask[self._rows, self._cols]
        self._keep = None if inside.all() else np.repeat(inside[..., None], 3, axis=2).astype(np.uint8)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        crop = frame[self._rows, self._cols]
        return np.ascontiguousarray(crop) if self._keep is None else np.multiply(crop, self._keep)


def mask_and_crop(frame: np.ndarray, mask: np.ndarray, box: Box) -> np.ndarray:
    """Black out everything outside `mask`, then crop to the inclusive `box` (one frame; see Masker).

    frame: (H, W, 3) uint8; mask: (H, W) bool; returns (y1-y0+1, x1-x0+1, 3) uint8 (the encoder pads to even).
    """
    return Masker(mask, box)(frame)


def nonblack_counts(frame: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    """(content pixels inside `mask`, content pixels overall) of one (H, W, 3) uint8 frame.

    Content = brighter than NONBLACK in any channel. Their ratio over a video is its kept fraction.
    """
    content = channel_max(frame) > NONBLACK
    return int(np.count_nonzero(content & mask)), int(np.count_nonzero(content))
