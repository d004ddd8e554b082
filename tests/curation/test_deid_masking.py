"""Pixel masks for de-identification: region boxes, the automatic fan finder, manual regions, cropping.

`synthetic_screen` (also used by the proof and stage tests) draws a scanner screen: a convex fan of
changing speckle inside a tissue box, a burned-in banner with a fake name/ID/dates above it, depth ticks
left of the fan and technical text on the right.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from curation.deid import masking

SCREEN_H, SCREEN_W = 288, 336
REGION = (48, 50, 287, 265)  # x0, y0, x1, y1 inclusive, like the demo scanner
BANNER = ("DOE JANE   ID 31415926", "DOB 1950-01-02", "2023-06-14 10:11:12")


def fan_truth(h: int = SCREEN_H, w: int = SCREEN_W, region=REGION) -> np.ndarray:
    """(H, W) bool convex sector inside the region box (apex above the box, like a curved probe)."""
    x0, y0, x1, y1 = region
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ax, ay = (x0 + x1) / 2, y0 - 40
    r, th = np.hypot(xx - ax, yy - ay), np.degrees(np.arctan2(xx - ax, yy - ay))
    inside = (r >= 52) & (r <= 250) & (np.abs(th) <= 32)
    box = np.zeros((h, w), bool)
    box[y0:y1 + 1, x0:x1 + 1] = True
    return inside & box


def _overlay(h: int, w: int, lines=BANNER, size: int = 16) -> np.ndarray:
    """(H, W) uint8 static UI: the banner, a hospital line, technical read-outs and depth ticks."""
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    for k, line in enumerate(lines):
        draw.text((6, 1 + 16 * k), line, fill=235, font=font)
    draw.text((6, h - 20), "ST EXAMPLE HOSPITAL", fill=235, font=font)
    for k, line in enumerate(("C5-2", "4.0MHz", "G 55")):
        draw.text((w - 44, 60 + 14 * k), line, fill=200, font=ImageFont.load_default(size=10))
    for k in range(0, 216, 18):
        draw.line((REGION[0] - 8, REGION[1] + k, REGION[0] - 3, REGION[1] + k), fill=180)
    return np.asarray(img)


def synthetic_screen(n: int = 24, seed: int = 0, motion: float = 1.0,
                     lines=BANNER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((n, H, W, 3) uint8 frames, (H, W) bool fan, (H, W) bool drawn UI pixels).

    motion scales the frame-to-frame change of the speckle (1: lively, 0.1: nearly still like the phantom).
    """
    rng = np.random.default_rng(seed)
    fan = fan_truth()
    ui = _overlay(SCREEN_H, SCREEN_W, lines)
    base = rng.uniform(40, 160, (SCREEN_H, SCREEN_W))
    frames = np.empty((n, SCREEN_H, SCREEN_W, 3), np.uint8)
    for t in range(n):
        tissue = base + motion * rng.normal(0, 25, base.shape)
        tissue += 60 * (np.abs(((np.arange(SCREEN_H) + 2 * t) % 48) - 24) < 2)[:, None]  # moving bright bands
        gray = np.where(fan, np.clip(tissue, 20, 255), ui).astype(np.uint8)
        frames[t] = gray[..., None]
    return frames, fan, ui > 0


def test_region_mask_is_exact_and_inclusive():
    mask = masking.region_mask((10, 12), [(2, 3, 5, 7)])
    assert mask.sum() == 4 * 5
    assert mask[3, 2] and mask[7, 5] and not mask[8, 5] and not mask[7, 6] and not mask[2, 2]
    assert masking.mask_bbox(mask) == (2, 3, 5, 7)
    clipped = masking.region_mask((10, 12), [(-3, 8, 40, 40)])  # one past the edge, as some scanners state it
    assert masking.mask_bbox(clipped) == (0, 8, 11, 9)
    with pytest.raises(ValueError):
        masking.region_mask((10, 12), [(20, 20, 30, 30)])


def test_mask_and_crop_blacks_out_and_crops():
    frame = np.full((6, 8, 3), 200, np.uint8)
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:5] = True
    mask[1, 2] = False
    out = masking.mask_and_crop(frame, mask, masking.mask_bbox(mask))
    assert out.shape == (3, 3, 3)
    assert out[0, 0].tolist() == [0, 0, 0] and (out[1:] == 200).all()
    kept, total = masking.nonblack_counts(frame, mask)
    assert (kept, total) == (8, 48)


def test_fast_pixel_helpers_equal_the_numpy_reductions():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    frame[0, :3] = [[255, 255, 255], [255, 255, 254], [0, 0, 1]]  # the extremes of the exact integer sum
    for f in (frame, frame[:, ::2]):  # contiguous and strided (a crop view)
        assert np.array_equal(masking.gray_mean(f), f.mean(axis=2, dtype=np.float32))
        assert masking.gray_mean(f).dtype == np.float32
        assert np.array_equal(masking.channel_max(f), f.max(axis=2))
    fan = np.zeros((23, 31), bool)
    fan[3:20, 5:29] = True
    fan[3:8, 5:9] = False  # not a rectangle: the multiply path
    rect = masking.region_mask((23, 31), [(4, 2, 25, 19)])  # a region box: the plain-crop path
    for mask in (fan, rect):
        box = masking.mask_bbox(mask)
        x0, y0, x1, y1 = box
        expected = frame[y0:y1 + 1, x0:x1 + 1] * mask[y0:y1 + 1, x0:x1 + 1, None].astype(np.uint8)
        out = masking.Masker(mask, box)(frame)
        assert np.array_equal(out, expected) and out.flags["C_CONTIGUOUS"] and out.dtype == np.uint8
        assert not np.shares_memory(out, frame)


def test_manual_region_matches_model_then_size():
    regions = {"Acme X1": (1, 2, 30, 40), "480x368": (10, 20, 300, 340)}
    assert masking.manual_region(regions, "Acme X1", 480, 368) == ("Acme X1", (1, 2, 30, 40))
    assert masking.manual_region(regions, None, 480, 368) == ("480x368", (10, 20, 300, 340))
    assert masking.manual_region(regions, "Other", 640, 480) is None
    # a box larger than the frame is clipped to it
    assert masking.manual_region({"64x48": (0, 0, 100, 100)}, None, 64, 48) == ("64x48", (0, 0, 63, 47))


@pytest.mark.parametrize("motion", [1.0, 0.1])
def test_auto_fan_mask_removes_banner_and_keeps_fan(motion):
    frames, fan, ui = synthetic_screen(motion=motion)
    mask = masking.auto_fan_mask(frames)
    assert mask is not None
    assert (mask & fan).sum() / fan.sum() >= 0.98
    assert not (mask & ui).any(), "banner, ticks or side text inside the mask"
    out = masking.mask_and_crop(frames[0], mask, masking.mask_bbox(mask))
    assert out.shape[0] < SCREEN_H - 60  # cropped below the banner and above the hospital line


def test_auto_fan_mask_survives_h264(tmp_path):
    """Screen recordings are H.264: codec flicker around static text must not join the fan."""
    import av

    from curation.deid.encode import write_mp4

    frames, fan, ui = synthetic_screen(n=30)
    write_mp4(tmp_path / "s.mp4", frames, 30.0, crf=28, gop=250)
    with av.open(str(tmp_path / "s.mp4")) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    mask = masking.auto_fan_mask(decoded)
    assert (mask & fan).sum() / fan.sum() >= 0.98 and not (mask & ui).any()


def test_auto_fan_mask_gives_up_on_a_still_or_black_video():
    frames, _, _ = synthetic_screen(n=6)
    assert masking.auto_fan_mask([frames[0]] * 6) is None
    assert masking.auto_fan_mask([np.zeros((40, 50, 3), np.uint8)] * 4) is None


def _stats(frames) -> tuple[np.ndarray, np.ndarray]:
    """(peak, std) of (H, W) float32 over the frames, as the stage computes them."""
    stats = masking.FrameStats()
    for frame in frames:
        stats.add(frame)
    _, std, peak = stats.result()
    return peak, std


@pytest.mark.parametrize("box", [(0, 0, SCREEN_W - 1, SCREEN_H - 1), (0, 20, SCREEN_W - 1, SCREEN_H - 30)])
def test_region_box_holding_ui_is_not_trusted_whole(box):
    """A region box that holds the banner, ticks and side text (a whole-screen box, as some exports
    state it): inside it the tissue mask still applies, and nothing outside the box is ever kept."""
    frames, fan, ui = synthetic_screen()
    peak, std = _stats(frames)
    mask = masking.region_tissue_mask(peak, std, box)
    inside = masking.region_mask(mask.shape, [box])
    assert not (mask & ~inside).any()
    assert (mask & fan & inside).sum() / (fan & inside).sum() >= 0.98
    assert not (mask & ui).any(), "UI drawn inside the region box survived"


def test_region_box_keeps_a_barely_moving_near_field_and_drops_still_ui():
    """A linear probe's near field (bright lines that barely move, std ~0.4, as in the real Philips cine)
    above a black band, over speckle that moves; a static text panel and a static bar inside the box. The
    lines stay (the tissue), the panel and bar go; outside a region box the plain fan finder drops them."""
    rng = np.random.default_rng(3)
    h, w = 200, 260
    frames = np.zeros((24, h, w, 3), np.uint8)
    panel = np.asarray(_overlay(h, w, lines=("Adv Breast", "L12-5", "36Hz"), size=14))[:, :70]
    for t in range(len(frames)):
        gray = np.zeros((h, w))
        gray[20:24, 80:250] = 200 + rng.normal(0, 0.5, (4, 170))  # near-field lines
        gray[34:37, 80:250] = 150 + rng.normal(0, 0.5, (3, 170))
        gray[90:190, 80:250] = rng.uniform(30, 140, (100, 170))  # speckle
        gray[:, :70] = panel
        gray[40:120, 254:259] = 180  # a static grey bar
        frames[t] = np.clip(gray, 0, 255).astype(np.uint8)[..., None]
    peak, std = _stats(frames)
    mask = masking.region_tissue_mask(peak, std, (0, 0, w - 1, h - 1))
    assert mask[20:24, 82:248].all() and mask[34:37, 82:248].all() and mask[92:188, 82:248].all()
    assert not mask[:, :70].any() and not mask[40:120, 254:259].any()
    plain = masking.fan_mask_from_stats(peak, std)
    assert plain is not None and not plain[20:24].any(), "the looser rule is what keeps the near field"


def test_frozen_region_box_is_kept_whole():
    """Nothing moves in the box (a frozen loop): the box is kept, the text search of the output decides."""
    frames, _, _ = synthetic_screen(n=4)
    peak, std = _stats([frames[0]] * 4)
    mask = masking.region_tissue_mask(peak, std, REGION)
    assert np.array_equal(mask, masking.region_mask(mask.shape, [REGION]))


def test_sample_indices_are_spread_and_unique():
    idx = masking.sample_indices(1000, 64)
    assert idx[0] == 0 and idx[-1] == 999 and len(idx) == 64
    assert masking.sample_indices(5, 64).tolist() == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------- real recordings (../shared/external)

def _decode(path, limit: int | None = None) -> list[np.ndarray]:
    """The frames the stage would see (the project's readers: constant rate, RGB), at most `limit`."""
    from itertools import islice

    from curation.readers import iter_frames, probe

    return list(islice(iter_frames(path, probe(path)), limit))


def _kept_fraction(frames: list[np.ndarray]) -> float:
    idx = masking.sample_indices(len(frames), masking.AutoMaskConfig().max_samples)
    mask = masking.auto_fan_mask(frames[i] for i in idx)
    assert mask is not None
    counts = np.array([masking.nonblack_counts(f, mask) for f in frames])
    return counts[:, 0].sum() / counts[:, 1].sum()


POCUS_SAMPLE = (  # one of each container/codec family, convex and linear
    "convex/Cov-Atlas-Day+3.gif", "convex/Pneu_Avi_Video_001.mp4", "convex/Pneu_northumbria_0409_set1_vid1.avi",
    "convex/Reg_pat1Image_133327.mpeg", "convex/Reg_liftl_case3_clip2.mp4", "convex/pneu-radiopaeda.mp4",
    "linear/Cov-Atlas-pleural.mp4", "linear/Reg_Image_181432_crop.mp4",
)


@pytest.mark.external
def test_auto_mask_leaves_cropped_pocus_clips_nearly_untouched(external_dir):
    """POCUS clips are already cropped to the image: the fan finder must keep (almost) all of it."""
    kept = [_kept_fraction(_decode(external_dir / "pocus" / "videos" / name, limit=120)) for name in POCUS_SAMPLE]
    assert np.median(kept) >= 0.95, dict(zip(POCUS_SAMPLE, np.round(kept, 3)))
    assert min(kept) >= 0.85, dict(zip(POCUS_SAMPLE, np.round(kept, 3)))


@pytest.mark.external
@pytest.mark.slow
def test_auto_mask_on_every_pocus_clip(external_dir):
    import pandas as pd

    manifest = pd.read_csv(external_dir / "pocus" / "manifest.csv")
    files = sorted((external_dir / "pocus").rglob("videos/**/*.*"))
    assert len(files) >= len(manifest) > 100
    kept = {f.name: _kept_fraction(_decode(f, limit=200)) for f in files}
    assert np.median(list(kept.values())) >= 0.99
    assert min(kept.values()) >= 0.9, sorted(kept.items(), key=lambda kv: kv[1])[:5]


_DATE_OR_ID = re.compile(r"\d{2}[.:/-]\d{2}|\d{6,}")  # 18.10.2021, 15:07:35, 92881881525065


@pytest.mark.external
def test_auto_mask_removes_burned_in_id_and_date_from_real_screen_recording(external_dir):
    from curation.deid.proof import ocr_tokens

    frames = _decode(external_dir / "raw_ui" / "image_93029618565613.mp4")
    mask = masking.auto_fan_mask(frames[i] for i in masking.sample_indices(len(frames), 64))
    assert mask is not None
    box = masking.mask_bbox(mask)
    before = {t.text for t in ocr_tokens(frames[80]) if _DATE_OR_ID.search(t.text)}
    assert len(before) >= 2, before  # the banner's ID and date/time are readable in the input
    for i in (0, 80, len(frames) - 1):
        after = [t.text for t in ocr_tokens(masking.mask_and_crop(frames[i], mask, box))]
        assert not [t for t in after if _DATE_OR_ID.search(t) or t in before], after
    # the image itself (a linear probe, centre of the screen) is kept
    assert 500 < box[0] < 580 and 700 < box[2] < 740 and box[1] < 130
