"""The `deidentify:` section of params.yaml as a frozen, checked dataclass (the stage, `luskit deid show` and
the benchmarks read it here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from curation.deid import text_search
from luskit.config import ConfigError, require


@dataclass(frozen=True)
class DeidParams:
    """The `deidentify:` section of params.yaml."""

    # Fallback boxes (x0, y0, x1, y1 inclusive, source pixels) when no region and no fan is found, keyed by
    # the index's manufacturer_model or by "<width>x<height>" (see the module docstring).
    manual_regions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    crf: int = 18  # x264 constant rate factor: 18 is visually lossless for B-mode
    gop: int = 15  # keyframe every `gop` frames
    ocr_min_confidence: float = 60.0  # tesseract word confidence (0-100) for a token to count as text
    # The text search of every frame (text_search.py; params.yaml says what each key does).
    text_window: int = 4
    text_segment: int = 96
    text_contrast: int = 64
    text_max_runs: int = 24
    text_min_chars: int = 3
    text_corroborated_confidence: float = 60.0
    text_digits_confidence: float = 40.0
    text_allow: tuple[str, ...] = ()
    allow_withheld: bool = True  # withheld videos are left out and the stage goes on; False: exit 3 (never written)
    fail_on_planted_phi: bool = True
    workers: int = 2

    def rules(self) -> text_search.TextRules:
        return text_search.TextRules(self.text_window, self.text_segment, self.text_contrast, self.text_max_runs,
                                     self.ocr_min_confidence, self.text_min_chars, tuple(self.text_allow),
                                     self.text_corroborated_confidence, self.text_digits_confidence)

    def __post_init__(self) -> None:
        require(0 <= self.crf <= 51, f"crf must lie in 0..51, got {self.crf}")
        require(1 <= self.gop <= 600, f"gop must lie in 1..600, got {self.gop}")
        require(1 <= self.text_window <= 64, "text_window must lie in 1..64")
        require(self.text_window <= self.text_segment <= 100000, "text_segment must be >= text_window")
        require(1 <= self.text_contrast <= 255, "text_contrast must lie in 1..255")
        require(0 <= self.text_max_runs <= 10000, "text_max_runs must lie in 0..10000")
        require(1 <= self.text_min_chars <= 20, "text_min_chars must lie in 1..20")
        require(0 <= self.text_corroborated_confidence <= self.ocr_min_confidence,
                "text_corroborated_confidence must lie in 0..ocr_min_confidence")
        for pattern in self.text_allow:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ConfigError(f"text_allow: {pattern!r} is not a regular expression ({err})") from None
        require(0 <= self.ocr_min_confidence <= 100, "ocr_min_confidence must lie in 0..100")
        require(1 <= self.workers <= 256, "workers must lie in 1..256")
        for key, (x0, y0, x1, y1) in self.manual_regions.items():
            require(0 <= x0 <= x1 and 0 <= y0 <= y1,
                    f"manual_regions[{key!r}] = {[x0, y0, x1, y1]}: need 0 <= x0 <= x1 and 0 <= y0 <= y1")
