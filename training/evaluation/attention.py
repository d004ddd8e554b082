"""Frame-importance figures: which clips to show, per-pattern curves and top-frame grids. No file reads.

The model's attention (contracts: attention_<slug>, (T,) float32 per clip and pattern, summing to 1
over real frames, 0 on padded frames) says which frames drove each pattern's score. As in the seed's
attention notebooks, two figures per selected clip (named by clip_id only: no labels, predictions or
other identifiers in file names):
- <clip_id>_curves.png: per pattern (2x2) the importance over frames, padded frames shaded, the uniform level dashed, the top
  `curve_top` frames marked in red;
- <clip_id>_frames.png: a 4 x `grid_top` grid, per pattern the `grid_top` most important frames,
  titled with the frame number in the clip (1-based) and its importance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.evaluation.tables import column


def select_clips(rows: pd.DataFrame, per_pattern: int, slugs: Sequence[str] = PATTERN_SLUGS) -> list[str]:
    """Clip ids to illustrate: per pattern the `per_pattern` highest-probability true positives
    (label 1, prob >= threshold) that carry attention; sorted, each clip once. rows: one row per clip."""
    chosen: set[str] = set()
    for s in slugs:
        att = rows[column("attention", s)]
        has = att.map(lambda a: a is not None and not (isinstance(a, float) and np.isnan(a)))
        tp = rows[has & rows[column("label", s)].eq(1).fillna(False)
                  & (rows[column("prob", s)] >= rows[column("thr", s)])]
        top = tp.sort_values([column("prob", s), "clip_id"], ascending=[False, True]).head(per_pattern)
        chosen.update(top["clip_id"])
    return sorted(chosen)


def top_frames(weights: np.ndarray, k: int, n_real: int | None = None) -> np.ndarray:
    """Indices of the k largest weights among the first n_real (real) frames, largest first (ties: earlier
    frame first). Padded frames (the seed's repeated last frame) are never shown as important."""
    w = np.asarray(weights, dtype=np.float64)[:n_real]
    return np.argsort(-w, kind="stable")[:min(k, len(w))]


def _subtitle(row: pd.Series, slug: str) -> str:
    label = row[column("label", slug)]
    shown = "NA" if pd.isna(label) else int(label)
    return f"p={row[column('prob', slug)]:.2f} (thr {row[column('thr', slug)]:.2f}), label {shown}"


def curves_figure(row: pd.Series, curve_top: int = 3, slugs: Sequence[str] = PATTERN_SLUGS) -> Figure:
    """2x2 importance-over-frames panels of one clip's row (attention_<slug> lists, n_real_frames)."""
    fig = Figure(figsize=(10, 7))
    axes = fig.subplots(2, 2, sharex=True).ravel()
    n_real = int(row["n_real_frames"])
    for ax, slug, name in zip(axes, slugs, PATTERNS):
        w = np.asarray(row[column("attention", slug)], dtype=np.float64)
        frames = np.arange(1, len(w) + 1)
        ax.plot(frames, w, color="tab:blue", linewidth=1.2)
        top = top_frames(w, curve_top, n_real)
        ax.scatter(frames[top], w[top], color="red", zorder=3, label=f"top {len(top)}")
        ax.axhline(1.0 / max(n_real, 1), color="0.6", linestyle="--", linewidth=0.8, label="uniform")
        if n_real < len(w):
            ax.axvspan(n_real + 0.5, len(w) + 0.5, color="0.85", label="padded")
        ax.set_ylim(bottom=0)  # from zero: small differences between frames are not blown up
        ax.set(title=f"{name}: {_subtitle(row, slug)}", xlabel="frame in clip", ylabel="importance")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{row['clip_id']}: frame importance per pattern")
    return fig


def _tile(frame: np.ndarray, side: int) -> Image.Image:
    """One uint8 frame as an RGB tile, scaled to `side` pixels (nearest: no invented detail)."""
    image = Image.fromarray(frame).convert("RGB")
    return image if image.size == (side, side) else image.resize((side, side), Image.Resampling.NEAREST)


def frames_figure(row: pd.Series, frames: np.ndarray, grid_top: int = 5, slugs: Sequence[str] = PATTERN_SLUGS,
                  side: int = 160) -> Image.Image:
    """len(slugs) x grid_top grid of each pattern's most important real frames, captioned "Frame i (importance)".

    frames: (T, H, W) or (T, H, W, 3) uint8. Composed with Pillow rather than matplotlib: twenty image
    axes cost about a second per figure in matplotlib, a pasted mosaic a few milliseconds.
    """
    n_real = int(row["n_real_frames"])
    font = ImageFont.load_default(size=13)
    left, top, caption, gap = 130, 34, 18, 6
    width = left + grid_top * (side + gap)
    height = top + len(slugs) * (caption + side + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 8), f"{row['clip_id']}: top {grid_top} frames per pattern (frame numbers 1-based within the clip)",
              fill="black", font=font)
    for r, (slug, name) in enumerate(zip(slugs, PATTERNS)):
        weights = np.asarray(row[column("attention", slug)], dtype=np.float64)
        y = top + r * (caption + side + gap)
        draw.text((8, y + caption + side // 2 - 8), name, fill="black", font=font)
        for c, i in enumerate(top_frames(weights, grid_top, n_real)):
            x = left + c * (side + gap)
            draw.text((x, y), f"Frame {int(i) + 1} ({weights[i]:.3f})", fill="black", font=font)
            canvas.paste(_tile(frames[i], side), (x, y + caption))
    return canvas
