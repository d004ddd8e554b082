"""Deterministic, vectorised renderer of a synthetic convex-probe lung-ultrasound (B-mode) cine loop.

Everything is drawn on a polar grid (``_NR`` depth samples x ``_NA`` beam angles; angles in degrees
measured from the probe axis, radii in image pixels from the probe apex) and scan-converted to the
(H, W) image with a precomputed ``cv2.remap`` table, as a real convex-probe scanner does.  Static
fields (speckle, tissue reflectivity, rib shadows, pattern regions) are built once per video; per
frame only sub-sample shifts (breathing, lung sliding) and additions of the active patterns happen.
Brightness values are display values (after log compression) in [0, 1] before ``gain`` and 8-bit.
All randomness comes from ``np.random.SeedSequence(spec.seed)`` children: same spec, same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

import cv2
import numpy as np

PATTERNS = ("A-lines", "B-lines", "Consolidation", "Pleural effusion")

_NR, _NA = 256, 128  # polar grid: depth samples x beam angles
_PA, _PR, _PD = 6, 2, 4  # padding (samples): lateral sliding, chest breathing, debris drift
_USABLE = 0.66  # |angle| <= _USABLE * half_angle is free of rib shadows: patterns live there
_BSIG = 0.7  # B-line angular sigma, degrees (a narrow laser-like beam line)
_SLIDE_DEG = 0.8  # amplitude of lung sliding, degrees (visceral pleura glides ~1-2 mm)
_JAG = 0.3  # consolidation shred border depth, fraction of its radial extent
_DOME = 0.15  # diaphragm dome height, fraction of the effusion depth below the pleura


@dataclass(frozen=True)
class FanGeometry:
    """Convex-probe sector inside an (height, width) image; radii in pixels, angles in degrees."""

    height: int = 216
    width: int = 240
    apex_x: float = 120.0
    apex_y: float = -40.0
    r_min: float = 50.0
    r_max: float = 250.0
    half_angle_deg: float = 32.0

    def mask(self) -> np.ndarray:
        """(H, W) bool, True inside the fan sector."""
        r, th = _pixel_polar(self)
        return (r >= self.r_min) & (r <= self.r_max) & (np.abs(th) <= self.half_angle_deg)


@dataclass(frozen=True)
class VideoSpec:
    """What to render: ``active[p]`` is an (n_frames,) bool per pattern name (missing = never)."""

    n_frames: int
    fps: float
    active: Mapping[str, np.ndarray]
    seed: int
    geometry: FanGeometry = field(default_factory=FanGeometry)
    gain: float = 1.0


@dataclass(frozen=True)
class Layout:
    """Where things are (degrees / pixels from the apex), derived from the spec's seed.  The sectors
    of consolidation, effusion, the B-lines and ``reference`` are disjoint and free of rib shadows."""

    pleural_r: float
    bline_angles: tuple[float, ...]
    consolidation: tuple[float, float, float, float]  # (angle_lo, angle_hi, r_lo, r_hi)
    effusion: tuple[float, float, float, float]  # (angle_lo, angle_hi, r_lo, r_hi); diaphragm dome, r_hi at edges
    rib_angles: tuple[float, ...]
    reference: tuple[float, float] = (0.0, 0.0)  # (angle_lo, angle_hi) kept pattern-free: statistics' baseline


@lru_cache(maxsize=8)
def _pixel_polar(g: FanGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 radius (px) and angle (deg, + to the right) of every pixel; read-only."""
    y, x = np.mgrid[0 : g.height, 0 : g.width].astype(np.float64)
    dx, dy = x - g.apex_x, y - g.apex_y
    r, th = np.hypot(dx, dy).astype(np.float32), np.degrees(np.arctan2(dx, dy)).astype(np.float32)
    r.flags.writeable = th.flags.writeable = False
    return r, th


@lru_cache(maxsize=8)
def _remap_tables(g: FanGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point cv2 maps from the image to the (_NR, _NA) polar grid; outside the fan -> border 0."""
    r, th = _pixel_polar(g)
    mx = (th + g.half_angle_deg) / (2 * g.half_angle_deg) * (_NA - 1)
    my = (r - g.r_min) / (g.r_max - g.r_min) * (_NR - 1)
    out = ~g.mask()
    mx[out], my[out] = -10.0, -10.0
    return cv2.convertMaps(mx.astype(np.float32), my.astype(np.float32), cv2.CV_16SC2)


def _axes(g: FanGeometry, pad_a: int = 0, pad_r: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Radii (px, (_NR + 2 pad_r,)) and angles (deg, (_NA + 2 pad_a,)) of the (padded) polar grid."""
    dr, da = (g.r_max - g.r_min) / (_NR - 1), 2 * g.half_angle_deg / (_NA - 1)
    r = g.r_min + dr * np.arange(-pad_r, _NR + pad_r, dtype=np.float32)
    a = -g.half_angle_deg + da * np.arange(-pad_a, _NA + pad_a, dtype=np.float32)
    return r, a


def _rng(seed: int, k: int) -> np.random.Generator:
    """Independent generator number k of a video (layout, motion, textures ...)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(k + 1)[k])


def layout_for(spec: VideoSpec) -> Layout:
    """Place pleura, ribs and pattern sectors; sectors (consolidation, effusion, B-lines, reference)
    are disjoint angle ranges inside the rib-free part of the fan, so statistics stay separable."""
    g, rng = spec.geometry, _rng(spec.seed, 0)
    d = (g.r_max - g.r_min) * rng.uniform(0.2, 0.26)  # skin-to-pleura distance
    pleural_r = g.r_min + d
    half, u = g.half_angle_deg, _USABLE * g.half_angle_deg
    sides = (-1.0, 1.0) if rng.random() < 0.6 else (float(rng.choice([-1.0, 1.0])),)
    ribs = tuple(s * half * (1.0 - rng.uniform(0.13, 0.16)) for s in sides)  # rib centres near the edges
    widths = {"C": rng.uniform(0.26, 0.3), "E": rng.uniform(0.22, 0.26), "R": rng.uniform(0.1, 0.12)}
    gap = 0.015
    widths["B"] = 1.0 - sum(widths.values()) - 3 * gap
    zones, lo = {}, -u
    for key in rng.permutation(["C", "E", "R", "B"]):
        zones[key] = (lo, lo + widths[key] * 2 * u)
        lo = zones[key][1] + gap * 2 * u
    b_lo, b_hi = zones["B"][0] + 1.2, zones["B"][1] - 1.2
    n_b = int(rng.integers(1, 5))
    step = (b_hi - b_lo) / n_b
    blines = tuple(float(b_lo + (i + 0.5 + rng.uniform(-0.1, 0.1)) * step) for i in range(n_b))
    cons = (*zones["C"], pleural_r, pleural_r + d * rng.uniform(1.0, 1.5))
    eff_hi = min(pleural_r + d * rng.uniform(1.8, 2.6), g.r_max - 0.12 * (g.r_max - g.r_min))
    return Layout(
        pleural_r=float(pleural_r), bline_angles=blines,
        consolidation=tuple(float(v) for v in cons),
        effusion=(float(zones["E"][0]), float(zones["E"][1]), float(pleural_r), float(eff_hi)),
        rib_angles=tuple(float(v) for v in ribs), reference=tuple(float(v) for v in zones["R"]),
    )


def _motion(spec: VideoSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame (T,) float: lung sliding (deg), chest-wall radial shift (samples), debris drift
    (T, 2) samples.  Breathing is a 0.2-0.35 Hz sinusoid (12-21 breaths/min)."""
    rng = _rng(spec.seed, 1)
    t = np.arange(spec.n_frames) / float(spec.fps)
    f, ph = rng.uniform(0.2, 0.35), rng.uniform(0, 2 * np.pi)
    slide = _SLIDE_DEG * np.sin(2 * np.pi * f * t + ph)
    chest = 0.6 * np.sin(2 * np.pi * f * t + ph - 0.6)  # the chest wall rises slightly, lagging
    p2 = rng.uniform(0, 2 * np.pi, 2)  # fluid swirl of the debris: slower, independent of breathing
    drift = np.stack([1.2 * np.sin(2 * np.pi * 0.09 * t + p2[0]), 2.5 * np.sin(2 * np.pi * 0.13 * t + p2[1])], 1)
    return slide, chest, drift


def _speckle(rng: np.random.Generator, shape: tuple[int, int], sig_r: float, sig_a: float) -> np.ndarray:
    """(shape) float32, mean 1: |blurred complex Gaussian| (Rayleigh echo amplitude from many random
    scatterers within the resolution cell), square-rooted to mimic log-compressed display contrast."""
    re, im = (cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sig_a, sigmaY=sig_r)
              for _ in range(2))
    s = np.sqrt(np.hypot(re, im))
    return (s / s.mean()).astype(np.float32)


def _noise1d(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """(n,) float32 smooth noise in [-1, 1]."""
    v = cv2.GaussianBlur(rng.standard_normal((1, n)).astype(np.float32), (0, 0), sigma).ravel()
    return v / (np.abs(v).max() + 1e-9)


def _gauss(x: np.ndarray, s: float) -> np.ndarray:
    """exp(-(x/s)^2) as float32 (a blurred thin reflector of half-width ~s)."""
    return np.exp(-((x / s) ** 2)).astype(np.float32)


def _step(x: np.ndarray, width: float) -> np.ndarray:
    """Soft 0 -> 1 edge around x = 0 (float32)."""
    return np.clip(0.5 + x / width, 0.0, 1.0).astype(np.float32)


def _box(a: np.ndarray, lo: float, hi: float, soft: float) -> np.ndarray:
    """Soft indicator of lo <= a <= hi."""
    return _step(a - lo, soft) * _step(hi - a, soft)


def _chest_field(rng: np.random.Generator, g: FanGeometry, lay: Layout) -> np.ndarray:
    """(_NR + 2 _PR, _NA) float32 chest wall: fat, muscle with fascia layers, near-field reverberation."""
    r, a = _axes(g, 0, _PR)
    d = lay.pleural_r - g.r_min
    z = (r - g.r_min)[:, None] / d  # 0 at the skin, 1 at the pleura
    refl = 0.34 + 0.08 * z - 0.1 * _gauss(z - 0.3, 0.12)  # hypoechoic subcutaneous fat
    for zf in np.sort(rng.uniform(0.15, 0.85, int(rng.integers(2, 4)))):  # fascia: specular layers
        rf = g.r_min + zf * d + 1.5 * _noise1d(rng, _NA, 8.0)[None, :]
        refl = refl + 0.22 * _gauss(r[:, None] - rf, 1.2)
    refl = refl + 0.35 * np.exp(-(r[:, None] - g.r_min) / 6.0)  # near-field reverberation band
    return (refl * _speckle(rng, (r.size, _NA), 1.2, 2.2)).astype(np.float32)


def _rib_fields(g: FanGeometry, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(_NR, _NA) float32 multiplicative acoustic shadow and additive bright rib surface."""
    r, a = _axes(g)
    d, rw = lay.pleural_r - g.r_min, 0.15 * g.half_angle_deg
    shadow, surf = np.ones((_NR, _NA), np.float32), np.zeros((_NR, _NA), np.float32)
    for c in lay.rib_angles:
        x = (a - c) / rw
        r_top = lay.pleural_r - 0.3 * d + 3.0 * x**2  # round bone: convex towards the probe
        inside = _box(x, -1.0, 1.0, 0.15)[None, :]
        below = _step(r[:, None] - r_top[None, :] - 1.5, 2.0)  # bone reflects ~all energy: shadow
        shadow *= 1.0 - 0.94 * inside * below
        surf += 0.9 * inside * _gauss(r[:, None] - r_top[None, :], 1.4)
    return shadow, surf


def _cons_field(rng: np.random.Generator, g: FanGeometry, lay: Layout) -> np.ndarray:
    """(2, _NR, _NA + 2 _PA) float32: [consolidation image premultiplied by its mask, mask].
    Airless lung looks like liver tissue; a shredded deep border; trapped-air bronchogram dots."""
    r, a = _axes(g, _PA)
    a_lo, a_hi, r_lo, r_hi = lay.consolidation
    border = r_hi - _JAG * (r_hi - r_lo) * (0.5 + 0.5 * _noise1d(rng, a.size, 2.0))
    mask = _box(a, a_lo, a_hi, 1.5)[None, :] * _step(r[:, None] - r_lo, 2.0) * _step(border[None, :] - r[:, None], 3.0)
    img = 0.36 * _speckle(rng, mask.shape, 1.1, 2.0)
    rr, aa = r[:, None], a[None, :]
    for _ in range(int(rng.integers(4, 9))):  # air bronchograms: small bright reflectors
        rc, ac = rng.uniform(r_lo + 4, r_lo + 0.6 * (r_hi - r_lo)), rng.uniform(a_lo + 1, a_hi - 1)
        img += 0.7 * _gauss(rr - rc, 1.3) * _gauss(aa - ac, 0.5)
    return np.stack([img * mask, mask]).astype(np.float32)


def _diaphragm_r(lay: Layout, a: np.ndarray) -> np.ndarray:
    """Diaphragm radius at angles a (deg): a dome bulging towards the probe, r_hi at the sector edges."""
    a_lo, a_hi, r_lo, r_hi = lay.effusion
    x = np.clip((a - 0.5 * (a_lo + a_hi)) / (0.5 * (a_hi - a_lo)), -1.0, 1.0)
    return r_hi - _DOME * (r_hi - r_lo) * (1.0 - x**2)


def _eff_fields(rng: np.random.Generator, g: FanGeometry, lay: Layout) -> tuple[np.ndarray, ...]:
    """(_NR, _NA) float32 effusion mask, premultiplied image (anechoic fluid, bright diaphragm,
    liver below it), fluid mask; (_NR + 2 _PD, _NA + 2 _PD) sparse debris field."""
    r, a = _axes(g)
    rr = r[:, None]
    rd = _diaphragm_r(lay, a)[None, :]
    mask = _box(a, lay.effusion[0], lay.effusion[1], 1.2)[None, :] * _step(rr - lay.pleural_r - 1.0, 2.0)
    fluid = mask * _step(rd - rr - 1.0, 2.0)
    img = 0.025 * fluid + 0.9 * mask * _gauss(rr - rd, 1.6)  # fluid ~ no echoes
    img += 0.32 * mask * _step(rr - rd - 2.0, 2.0) * _speckle(rng, (_NR, _NA), 1.1, 2.0)
    debris = (rng.random((_NR + 2 * _PD, _NA + 2 * _PD)) < 0.004).astype(np.float32)
    debris = 0.9 * cv2.GaussianBlur(debris, (0, 0), 0.7)
    return mask, img.astype(np.float32), fluid, debris.astype(np.float32)


def _shift(f: np.ndarray, o: float, axis: int, pad: int) -> np.ndarray:
    """Linear-interpolated sub-sample shift by o samples along axis (-1 or -2) of a field padded by pad."""
    k = int(np.floor(o))
    w = np.float32(o - k)
    n = f.shape[axis] - 2 * pad
    if axis == -1:
        lo, hi = f[..., pad + k : pad + k + n], f[..., pad + k + 1 : pad + k + 1 + n]
    else:
        lo, hi = f[..., pad + k : pad + k + n, :], f[..., pad + k + 1 : pad + k + 1 + n, :]
    return lo + w * (hi - lo)


def _active(spec: VideoSpec) -> dict[str, np.ndarray]:
    """(n_frames,) bool per pattern; missing patterns are never active."""
    out = {}
    for p in PATTERNS:
        v = np.asarray(spec.active.get(p, np.zeros(spec.n_frames, bool)), bool)
        if v.shape != (spec.n_frames,):
            raise ValueError(f"active[{p!r}] has shape {v.shape}, expected ({spec.n_frames},)")
        out[p] = v
    return out


def _static(spec: VideoSpec, lay: Layout) -> dict[str, np.ndarray]:
    """Per-video static polar fields (float32); see render_video for how they combine."""
    g, rng = spec.geometry, _rng(spec.seed, 2)
    r, a = _axes(g)
    span, d = g.r_max - g.r_min, lay.pleural_r - g.r_min
    below = r - lay.pleural_r
    alines = sum(0.72 * 0.7 ** (k - 2) * _gauss(r - (g.r_min + k * d), 1.4)  # reverberations of the
                 for k in (2, 3, 4) if g.r_min + k * d <= g.r_max - 2)  # pleura at multiples of depth
    haze = 0.13 * np.exp(-np.clip(below, 0, None) / (1.5 * span))[:, None]  # air: scattered echoes
    f = {
        "chest": _chest_field(rng, g, lay),
        "haze": (haze * _speckle(rng, (_NR, _NA + 2 * _PA), 1.5, 3.0)).astype(np.float32),
        "tex": (0.65 + 0.35 * _noise1d(rng, _NA + 2 * _PA, 1.0)).astype(np.float32),  # pleural granules
        "pleura": 0.95 * _gauss(below, 1.5),  # specular air/tissue interface
        "alines": np.asarray(alines, np.float32) * np.ones(_NR, np.float32),
        "blines": (0.8 * _step(below - 1.0, 3.0) * (1 - 0.2 * np.clip(below, 0, None) / (g.r_max - lay.pleural_r))
                   * (0.85 + 0.15 * _noise1d(rng, _NR, 2.0))).astype(np.float32),
        "wc": (1.0 - _step(below, 2.0))[:, None],
        "scale": (255.0 * spec.gain * (1.0 - 0.15 * (r - g.r_min) / span))[:, None].astype(np.float32),
        "cons_ang": _box(a, *lay.consolidation[:2], 1.5),
        "eff_ang": _box(a, *lay.effusion[:2], 1.2),
        "a": a,
    }
    f["shadow"], f["surf"] = _rib_fields(g, lay)
    f["cons"] = _cons_field(rng, g, lay)
    f["eff_mask"], f["eff"], f["fluid"], f["debris"] = _eff_fields(rng, g, lay)
    return f


def _lung(f: dict, lay: Layout, on: dict[str, bool], o: float, slide: float, drift: np.ndarray) -> tuple:
    """(_NR, _NA) float32 lung below the pleura for one frame and the (_NA,) pleural texture.
    o: lateral sliding in samples (slide in degrees); on: which patterns this frame shows."""
    lung = _shift(f["haze"], o, -1, _PA)
    tex = _shift(f["tex"], o, -1, _PA)
    keep = np.ones(_NA, np.float32)  # where A-line reverberations survive
    if on["B-lines"]:  # B-lines slide with the lung; their fluid-filled septa kill the reverberation
        bl = np.exp(-0.5 * ((f["a"][None, :] - (np.asarray(lay.bline_angles)[:, None] + slide)) / _BSIG) ** 2)
        bl = np.minimum(bl.sum(0), 1.0).astype(np.float32)
        lung += f["blines"][:, None] * bl[None, :]
        keep -= bl
    if on["Consolidation"]:
        keep *= 1.0 - f["cons_ang"]
    if on["Pleural effusion"]:
        keep *= 1.0 - f["eff_ang"]
    if on["A-lines"]:
        lung += f["alines"][:, None] * (tex * keep)[None, :]
    if on["Consolidation"]:
        img, m = _shift(f["cons"], o, -1, _PA)
        lung = lung * (1.0 - m) + img
    if on["Pleural effusion"]:
        deb = _shift(_shift(f["debris"], drift[0], -2, _PD), drift[1], -1, _PD)
        lung = lung * (1.0 - f["eff_mask"]) + f["eff"] + 0.2 * f["fluid"] * deb
    return lung, tex


def render_video(spec: VideoSpec) -> np.ndarray:
    """(n_frames, H, W) uint8 B-mode cine loop; exactly 0 outside ``spec.geometry.mask()``."""
    g = spec.geometry
    lay, act = layout_for(spec), _active(spec)
    slide, chest_dr, drift = _motion(spec)
    f = _static(spec, lay)
    mx, my = _remap_tables(g)
    da = 2 * g.half_angle_deg / (_NA - 1)
    out = np.empty((spec.n_frames, g.height, g.width), np.uint8)
    for t in range(spec.n_frames):
        on = {p: bool(act[p][t]) for p in PATTERNS}
        lung, tex = _lung(f, lay, on, slide[t] / da, slide[t], drift[t])
        chest = _shift(f["chest"], chest_dr[t], -2, _PR)
        img = chest * f["wc"] + lung * (1.0 - f["wc"]) + f["pleura"][:, None] * tex[None, :]
        img = (img * f["shadow"] + f["surf"]) * f["scale"]
        cv2.remap(cv2.convertScaleAbs(img), mx, my, cv2.INTER_LINEAR, dst=out[t],
                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


def pattern_statistics(frames: np.ndarray, spec: VideoSpec) -> dict[str, np.ndarray]:
    """One simple image statistic per pattern per frame, (T,) float each, high when the pattern is visible.

    frames: (T, H, W) uint8 as rendered for spec.  Every statistic is a brightness difference between
    the pattern's own region and the pattern-free reference sector at the same depths (so haze, depth
    gain and A-lines cancel), divided by the chest-wall brightness (so ``gain`` cancels):
    A-lines: on-arc minus between-arc brightness in the reference sector; B-lines: the B-line beams
    (at their current sliding angle) below the pleura; consolidation: its subpleural core;
    effusion: darkness of the fluid plus brightness of the diaphragm line."""
    g, lay = spec.geometry, layout_for(spec)
    n_t = frames.shape[0]
    flat = frames.reshape(n_t, -1)
    rr, aa = (v.ravel() for v in _pixel_polar(g))
    d, p = lay.pleural_r - g.r_min, lay.pleural_r

    def mean(sel: np.ndarray) -> np.ndarray:
        return flat[:, np.flatnonzero(sel)].mean(1, dtype=np.float64)

    def ring(r_lo: float, r_hi: float) -> np.ndarray:
        return (rr >= r_lo) & (rr <= r_hi)

    clean = (aa >= lay.reference[0] + 0.5) & (aa <= lay.reference[1] - 0.5)
    ref = mean(ring(g.r_min + 0.2 * d, p - 0.2 * d) & (np.abs(aa) <= _USABLE * g.half_angle_deg)) + 1.0
    arcs = [g.r_min + k * d for k in (2, 3, 4) if g.r_min + k * d <= g.r_max - 2]
    mids = [m for rk in arcs for m in (rk - d / 2, rk + d / 2) if m <= g.r_max - 2]
    on = np.logical_or.reduce([ring(rk - 1.5, rk + 1.5) for rk in arcs])
    off = np.logical_or.reduce([ring(m - 1.5, m + 1.5) for m in mids])
    stats = {"A-lines": mean(clean & on) - mean(clean & off)}
    stats["B-lines"] = _bline_stat(flat, rr, aa, lay, _motion(spec)[0][:n_t], g) - mean(
        clean & ring(p + 0.3 * d, g.r_max - 3))
    a_lo, a_hi, r_lo, r_hi = lay.consolidation
    core = ring(p + 4, r_hi - _JAG * (r_hi - r_lo) - 2)
    stats["Consolidation"] = mean(core & (aa >= a_lo + 1.8) & (aa <= a_hi - 1.8)) - mean(core & clean)
    a_lo, a_hi, r_lo, r_hi = lay.effusion
    inner, dome = (aa >= a_lo + 1.5) & (aa <= a_hi - 1.5), _DOME * (r_hi - r_lo)
    fluid = ring(r_lo + 4, r_hi - dome - 4)
    diaphragm = inner & (np.abs(rr - _diaphragm_r(lay, aa)) <= 1.5)
    stats["Pleural effusion"] = (mean(clean & fluid) - mean(inner & fluid)) + 0.5 * (
        mean(diaphragm) - mean(clean & ring(r_hi - dome - 1.5, r_hi + 1.5)))
    return {k: (v / ref).astype(np.float64) for k, v in stats.items()}


def _bline_stat(flat: np.ndarray, rr: np.ndarray, aa: np.ndarray, lay: Layout, slide: np.ndarray,
                g: FanGeometry) -> np.ndarray:
    """(T,) mean brightness of the B-line beams (+-_BSIG around each line's angle in that frame)."""
    ang = np.asarray(lay.bline_angles)
    sel = (rr >= lay.pleural_r + 0.3 * (lay.pleural_r - g.r_min)) & (rr <= g.r_max - 3)
    sel &= np.abs(aa[:, None] - ang[None, :]).min(1) <= _SLIDE_DEG + _BSIG + 0.1
    idx = np.flatnonzero(sel)
    centre = ang[None, None, :] + slide[:, None, None]  # (T, 1, n_lines)
    w = (np.abs(aa[idx][None, :, None] - centre) <= _BSIG).any(-1)  # (T, n_pixels)
    return (flat[:, idx] * w).sum(1, dtype=np.float64) / np.maximum(w.sum(1), 1)
