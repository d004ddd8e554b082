"""The synthetic lung-ultrasound phantom: determinism, fan geometry, separable pattern statistics, gain."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.synth.phantom import (
    PATTERNS,
    FanGeometry,
    VideoSpec,
    layout_for,
    pattern_statistics,
    render_video,
)

GEOM = FanGeometry()


def spec_with(seed: int, on: dict[str, tuple[int, int]], n_frames: int = 40, gain: float = 1.0,
              fps: float = 30.0) -> VideoSpec:
    """A spec whose patterns are active on the half-open frame intervals in `on`."""
    active = {}
    for p in PATTERNS:
        mask = np.zeros(n_frames, bool)
        if p in on:
            mask[on[p][0]:on[p][1]] = True
        active[p] = mask
    return VideoSpec(n_frames=n_frames, fps=fps, active=active, seed=seed, gain=gain)


def random_spec(rng: np.random.Generator, seed: int, n_frames: int, gain: float) -> VideoSpec:
    """Each pattern active on one random interval (or never): patterns co-occur at random."""
    on = {}
    for p in PATTERNS:
        if rng.random() < 0.85:
            start = int(rng.integers(0, n_frames - 4))
            on[p] = (start, int(rng.integers(start + 1, n_frames + 1)))
    return spec_with(seed, on, n_frames, gain, fps=float(rng.choice([25.0, 30.0])))


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(random positive > random negative), ties counted half."""
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def test_render_is_deterministic_and_seed_dependent():
    spec = spec_with(5, {"A-lines": (0, 20), "B-lines": (10, 30), "Pleural effusion": (5, 25)}, n_frames=30)
    a, b = render_video(spec), render_video(spec)
    assert a.dtype == np.uint8 and a.shape == (30, GEOM.height, GEOM.width)
    assert a.tobytes() == b.tobytes()
    other = render_video(spec_with(6, {"A-lines": (0, 20), "B-lines": (10, 30), "Pleural effusion": (5, 25)},
                                   n_frames=30))
    assert (a != other).mean() > 0.3
    assert layout_for(spec) == layout_for(spec) != layout_for(spec_with(6, {}))


def test_zero_outside_fan_and_speckle_inside():
    frames = render_video(spec_with(1, {p: (0, 10) for p in PATTERNS}, n_frames=10))
    mask = GEOM.mask()
    assert mask.shape == (GEOM.height, GEOM.width) and 0.3 < mask.mean() < 0.9
    assert not frames[:, ~mask].any()
    inside = frames[:, mask]
    assert (inside > 0).mean() > 0.9
    # speckle: the chest wall is textured, not flat, and differs between neighbouring pixels
    chest = frames[0, 25:45, 105:135].astype(float)
    assert chest.std() > 0.15 * chest.mean() > 5
    # time coherence: consecutive frames are similar but not identical (breathing, sliding)
    diff = np.abs(frames[1].astype(int) - frames[0].astype(int))[mask]
    assert 0 < diff.mean() < 0.25 * frames[0][mask].mean()


def test_lung_is_haze_without_patterns():
    spec = spec_with(2, {}, n_frames=5)
    frames = render_video(spec)
    lay = layout_for(spec)
    r = np.hypot(*np.mgrid[0:GEOM.height, 0:GEOM.width][::-1] - np.array([GEOM.apex_x, GEOM.apex_y])[:, None, None])
    lung = frames[:, (r > lay.pleural_r + 10) & (r < GEOM.r_max - 5) & GEOM.mask()].mean()
    chest = frames[:, (r > GEOM.r_min + 10) & (r < lay.pleural_r - 10) & GEOM.mask()].mean()
    assert 8 < lung < 0.6 * chest


def test_layout_keeps_regions_apart():
    for seed in range(30):
        lay = layout_for(spec_with(seed, {}))
        half = GEOM.half_angle_deg
        sectors = sorted([lay.consolidation[:2], lay.effusion[:2], lay.reference,
                          (min(lay.bline_angles) - 1.0, max(lay.bline_angles) + 1.0)])
        assert all(a[1] < b[0] for a, b in zip(sectors, sectors[1:])), sectors
        assert 1 <= len(lay.bline_angles) <= 4 and 1 <= len(lay.rib_angles) <= 2
        assert all(abs(b - r) > 0.2 * half for b in lay.bline_angles for r in lay.rib_angles)
        assert GEOM.r_min < lay.pleural_r < lay.consolidation[3] < GEOM.r_max
        assert lay.effusion[2] == lay.pleural_r < lay.effusion[3] < GEOM.r_max


@pytest.mark.parametrize("gain", [1.0, 0.22])
def test_statistics_separate_every_pattern_under_cooccurrence(gain):
    """For every pattern and video: min over active frames > max over inactive frames (AUROC 1),
    with a clear margin, whatever else is visible at the same time."""
    rng = np.random.default_rng(1234 + int(gain * 100))
    pooled = {p: ([], []) for p in PATTERNS}
    checked = dict.fromkeys(PATTERNS, 0)
    for seed in range(8):
        spec = random_spec(rng, 100 + seed, 48, gain)
        stats = pattern_statistics(render_video(spec), spec)
        for p in PATTERNS:
            assert stats[p].shape == (48,) and np.isfinite(stats[p]).all()
            on, off = stats[p][spec.active[p]], stats[p][~spec.active[p]]
            pooled[p][0].append(on)
            pooled[p][1].append(off)
            if len(on) and len(off):
                assert on.min() - off.max() > 0.15, (p, seed, on.min(), off.max())
                checked[p] += 1
    assert all(n >= 3 for n in checked.values()), checked
    for p, (on, off) in pooled.items():  # also across videos: one threshold fits all of them
        on, off = np.concatenate(on), np.concatenate(off)
        assert auroc(on, off) == 1.0, p
        cohen_d = (on.mean() - off.mean()) / np.sqrt(0.5 * (on.var() + off.var()))
        assert cohen_d > 3, (p, cohen_d)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), start=st.integers(1, 20), length=st.integers(1, 8),
       pattern=st.sampled_from(PATTERNS), others=st.sets(st.sampled_from(PATTERNS)))
def test_first_and_last_active_frames_show_the_pattern(seed, start, length, pattern, others):
    n = 30
    on = {p: (0, n) for p in others if p != pattern}
    on[pattern] = (start, start + length)
    spec = spec_with(seed, on, n_frames=n)
    s = pattern_statistics(render_video(spec), spec)[pattern]
    inactive = np.r_[s[:start], s[start + length:]]
    assert min(s[start], s[start + length - 1]) > inactive.max() + 0.15


def test_gain_below_one_gives_a_darker_video():
    on = {"A-lines": (0, 6), "B-lines": (0, 6)}
    bright = render_video(spec_with(9, on, n_frames=6)).astype(float)
    dark = render_video(spec_with(9, on, n_frames=6, gain=0.25)).astype(float)
    mask = GEOM.mask()
    assert dark[:, mask].mean() < 0.35 * bright[:, mask].mean()
    assert dark[:, mask].max() < 100


def test_missing_patterns_are_inactive_and_bad_masks_rejected():
    full = spec_with(4, {}, n_frames=4)
    sparse = VideoSpec(n_frames=4, fps=30.0, active={}, seed=4)
    assert render_video(full).tobytes() == render_video(sparse).tobytes()
    with pytest.raises(ValueError):
        render_video(VideoSpec(n_frames=4, fps=30.0, active={"A-lines": np.ones(5, bool)}, seed=4))
