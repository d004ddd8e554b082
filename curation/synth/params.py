"""The `synth:` section of params.yaml: the size and character of the synthetic demo study."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from luskit.config import require
from luskit.schema import PATTERNS, PERIODS


@dataclass(frozen=True)
class ReaderProfile:
    """A simulated annotator: how far their range boundaries wander and how often they err."""

    email: str
    first_name: str
    last_name: str
    jitter_frames: int = 3  # boundary noise: uniform in [-jitter, +jitter] frames
    miss_rate: float = 0.05  # probability of not labelling a true range at all
    false_positive_rate: float = 0.03  # per video and pattern, probability of a spurious short range

    def __post_init__(self) -> None:
        require("@" in self.email, f"reader email {self.email!r} must look like an e-mail address")
        require(self.jitter_frames >= 0, f"{self.email}: jitter_frames must be >= 0")
        for name in ("miss_rate", "false_positive_rate"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{self.email}: {name}={value} must lie in [0, 1]")


def _default_prevalence() -> dict[str, dict[str, float]]:
    # Video-level probability that a pattern appears somewhere in a video. Development roughly follows
    # the LUV-Net development set; the temporal period is shifted (more A-lines, less effusion) as
    # in the seed's 2024 set, so a temporal evaluation meets a real distribution shift.
    return {
        "development": {"A-lines": 0.5, "B-lines": 0.4, "Consolidation": 0.35, "Pleural effusion": 0.25},
        "temporal": {"A-lines": 0.75, "B-lines": 0.45, "Consolidation": 0.3, "Pleural effusion": 0.12},
    }


def _default_readers() -> tuple[ReaderProfile, ...]:
    return (
        ReaderProfile("reader1@demo.luskit.invalid", "Reader", "One", 3, 0.06, 0.03),
        ReaderProfile("reader2@demo.luskit.invalid", "Reader", "Two", 5, 0.12, 0.05),
    )


@dataclass(frozen=True)
class SynthParams:
    seed: int = 2023
    n_patients_development: int = 10
    n_patients_temporal: int = 3
    videos_per_patient: tuple[int, int] = (4, 8)  # inclusive range
    duration_s: tuple[float, float] = (2.5, 8.0)
    fps_choices: tuple[float, ...] = (30.0, 25.0)
    fps_weights: tuple[float, ...] = (0.85, 0.15)
    jpeg_fraction: float = 0.9  # share of DICOM cines stored JPEG-baseline YBR_FULL_422 (rest native)
    screen_recordings: int = 3  # MP4 screen captures without any header
    dark_videos: int = 1  # badly gained videos that readers mark "exclude: dark"
    oddities: bool = True  # single frame, info screen, duplicate, truncated file
    development_dates: tuple[str, str] = ("2023-06-14", "2023-10-25")
    temporal_dates: tuple[str, str] = ("2024-07-01", "2024-07-31")
    prevalence: dict[str, dict[str, float]] = field(default_factory=_default_prevalence)
    patient_heterogeneity: float = 1.0  # sd of per-patient logit offsets: patients differ
    readers: tuple[ReaderProfile, ...] = field(default_factory=_default_readers)
    senior: ReaderProfile = ReaderProfile("senior@demo.luskit.invalid", "Senior", "Reader", 2, 0.03, 0.02)
    export_time: str = "2024-11-30T12:00:00Z"  # the simulated snapshot's time (also its file name)
    workers: int = 2

    def __post_init__(self) -> None:
        require(self.n_patients_development >= 1, "n_patients_development must be >= 1")
        require(self.n_patients_temporal >= 0, "n_patients_temporal must be >= 0")
        lo, hi = self.videos_per_patient
        require(1 <= lo <= hi <= 50, f"videos_per_patient {self.videos_per_patient}: need 1 <= min <= max <= 50")
        dlo, dhi = self.duration_s
        require(0.5 <= dlo <= dhi <= 60, f"duration_s {self.duration_s}: need 0.5 <= min <= max <= 60 seconds")
        require(len(self.fps_choices) == len(self.fps_weights) > 0, "fps_choices and fps_weights differ in length")
        require(all(5 <= f <= 120 for f in self.fps_choices), f"fps_choices {self.fps_choices} must lie in [5, 120]")
        require(all(w >= 0 for w in self.fps_weights) and sum(self.fps_weights) > 0, "fps_weights must be >= 0, not all 0")
        require(0 <= self.jpeg_fraction <= 1, "jpeg_fraction must lie in [0, 1]")
        require(self.screen_recordings >= 0 and self.dark_videos >= 0, "screen_recordings and dark_videos must be >= 0")
        require(len(self.readers) == 2, "exactly two development readers are simulated (readers: [..., ...])")
        require(len({r.email for r in (*self.readers, self.senior)}) == 3, "reader e-mails must differ")
        require(self.patient_heterogeneity >= 0, "patient_heterogeneity must be >= 0")
        require(self.workers >= 1, "workers must be >= 1")
        for name in ("development_dates", "temporal_dates"):
            start, end = (date.fromisoformat(d) for d in getattr(self, name))
            require(start <= end, f"{name}: start after end")
        require(
            date.fromisoformat(self.development_dates[1]) < date.fromisoformat(self.temporal_dates[0]),
            "the temporal period must start after the development period ends",
        )
        for period in PERIODS:
            probs = self.prevalence.get(period)
            require(probs is not None and set(probs) == set(PATTERNS), f"prevalence.{period} needs exactly {PATTERNS}")
            require(all(0 <= p <= 1 for p in probs.values()), f"prevalence.{period}: probabilities must lie in [0, 1]")
