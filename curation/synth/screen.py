"""Compose a rendered ultrasound region into a full scanner screen with burned-in PHI.

Real scanners burn the patient's name, ID, birth date, the date and the hospital into a banner
outside the image; de-identification must remove it. The layout here mimics that: a text banner
above the fan, technical read-outs on the right, the hospital name along the bottom. Pure: arrays in,
arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SCREEN_H, SCREEN_W = 288, 336
REGION_X0, REGION_Y0 = 48, 50  # top-left of the ultrasound region (tissue) box on the screen
FONT_SIZE = 14


@dataclass(frozen=True)
class BurnedText:
    """The strings a scanner prints on screen; every one of them is PHI except `technical`."""

    name: str
    patient_id: str
    birth_date: str
    timestamp: str
    hospital: str
    technical: tuple[str, ...] = ("C5-2", "4.0MHz", "D 12cm", "G 55", "DR 60", "FR 30")

    def phi_strings(self) -> tuple[str, ...]:
        return (self.name, self.patient_id, self.birth_date, self.timestamp, self.hospital)


def region_box(region_h: int, region_w: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) inclusive: the DICOM RegionLocationMin/Max of the tissue region."""
    return REGION_X0, REGION_Y0, REGION_X0 + region_w - 1, REGION_Y0 + region_h - 1


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=64)
def static_overlay(text: BurnedText, rgb: bool) -> tuple[np.ndarray, np.ndarray]:
    """The screen's fixed UI: ((H,W,3) uint8 pixels, (H,W) bool mask of drawn pixels)."""
    img = Image.new("RGB", (SCREEN_W, SCREEN_H), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    font = _font(FONT_SIZE)
    white = (235, 235, 235)
    draw.text((6, 1), f"{text.name}   ID {text.patient_id}", fill=white, font=font)
    draw.text((6, 17), f"DOB {text.birth_date}", fill=white, font=font)
    draw.text((6, 33), text.timestamp, fill=white, font=font)
    draw.text((6, SCREEN_H - 19), text.hospital, fill=white, font=font)
    small = _font(10)
    for k, line in enumerate(text.technical):
        draw.text((SCREEN_W - 44, 60 + 14 * k), line, fill=(200, 200, 200), font=small)
    # Depth scale ticks on the left of the image, as scanners draw them (not PHI).
    for k in range(0, 216, 18):
        draw.line((REGION_X0 - 8, REGION_Y0 + k, REGION_X0 - 3, REGION_Y0 + k), fill=(180, 180, 180))
    if rgb:
        # The orientation marker and a colour logo make RGB files genuinely colour, like real exports.
        draw.ellipse((SCREEN_W - 40, REGION_Y0 - 2, SCREEN_W - 30, REGION_Y0 + 8), fill=(255, 140, 0))
        draw.rectangle((SCREEN_W - 40, SCREEN_H - 40, SCREEN_W - 8, SCREEN_H - 26), fill=(30, 90, 200))
    pixels = np.asarray(img, dtype=np.uint8).copy()
    return pixels, pixels.any(axis=2)


def compose(region: np.ndarray, text: BurnedText, rgb: bool) -> np.ndarray:
    """Place a (h,w) uint8 region frame on the screen: (H,W) uint8 if not rgb, else (H,W,3) uint8."""
    overlay, drawn = static_overlay(text, rgb)
    h, w = region.shape
    if rgb:
        screen = overlay.copy()
        screen[REGION_Y0:REGION_Y0 + h, REGION_X0:REGION_X0 + w] = region[..., None]
        return screen
    screen = overlay[..., 0].copy()
    screen[REGION_Y0:REGION_Y0 + h, REGION_X0:REGION_X0 + w] = region
    return screen


def info_screen(text: BurnedText, lines: tuple[str, ...]) -> np.ndarray:
    """A patient-information page (no ultrasound region at all): (H,W) uint8."""
    img = Image.new("L", (SCREEN_W, SCREEN_H), 0)
    draw = ImageDraw.Draw(img)
    font = _font(FONT_SIZE)
    rows = ("PATIENT INFORMATION", f"NAME {text.name}", f"ID {text.patient_id}", f"DOB {text.birth_date}",
            f"DATE {text.timestamp}", text.hospital, *lines)
    for k, line in enumerate(rows):
        draw.text((12, 12 + 20 * k), line, fill=230, font=font)
    return np.asarray(img, dtype=np.uint8).copy()
