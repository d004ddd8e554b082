"""Frame-importance figures: which clips to show, per-pattern curves and top-frame grids. No file reads.

The model's attention (contracts: attention_<slug>, (T,) float32 per clip and pattern, summing to 1
over real frames, 0 on padded frames) says which frames drove each pattern's score. As in the seed's
attention notebooks, two figures per selected clip (named by clip_id only: no labels, predictions or
other identifiers in file names):
- <clip_id>_curves.png: per pattern (2x2) the importance over frames, padded frames shaded, the top
  `curve_top` frames marked in red;
- <clip_id>_frames.png: a 4 x `grid_top` grid, per pattern the `grid_top` most important frames,
  titled with the frame number in the clip (1-based) and its importance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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
        if n_real < len(w):
            ax.axvspan(n_real + 0.5, len(w) + 0.5, color="0.85", label="padded")
        ax.set(title=f"{name}: {_subtitle(row, slug)}", xlabel="frame in clip", ylabel="importance")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{row['clip_id']}: frame importance per pattern")
    return fig


def mosaic(tiles: list[list[np.ndarray | None]], gap: int = 4) -> np.ndarray:
    """Rows of (H, W) or (H, W, 3) uint8 tiles (None = blank) -> one uint8 image with `gap` white pixels between."""
    sample = next(t for row in tiles for t in row if t is not None)
    h, w = sample.shape[:2]
    n_rows, n_cols = len(tiles), max(len(r) for r in tiles)
    out = np.full((n_rows * (h + gap) - gap, n_cols * (w + gap) - gap, *sample.shape[2:]), 255, dtype=np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            if tile is not None:
                out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def frames_figure(row: pd.Series, frames: np.ndarray, grid_top: int = 5, slugs: Sequence[str] = PATTERN_SLUGS
                  ) -> Figure:
    """4 x grid_top grid of the most important frames per pattern, titled "Frame i (importance)".

    frames: (T, H, W) or (T, H, W, 3) uint8. Drawn as one mosaic image in one axes: twenty small axes
    cost seconds per figure in matplotlib, one image a few milliseconds.
    """
    n_real = int(row["n_real_frames"])
    tops = [top_frames(np.asarray(row[column("attention", s)], dtype=np.float64), grid_top, n_real) for s in slugs]
    tiles = [[frames[i] for i in top] + [None] * (grid_top - len(top)) for top in tops]
    image = mosaic(tiles)
    h, w = frames.shape[1:3]
    gap = 4
    fig = Figure(figsize=(1.9 * grid_top + 1.2, 2.1 * len(slugs) + 0.6))
    ax = fig.add_axes((0.1, 0.02, 0.88, 0.9))
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    for r, (slug, name, top) in enumerate(zip(slugs, PATTERNS, tops)):
        w_att = np.asarray(row[column("attention", slug)], dtype=np.float64)
        y0 = r * (h + gap)
        ax.text(-gap * 2, y0 + h / 2, name, rotation=90, va="center", ha="right", fontsize=9)
        for c, i in enumerate(top):
            ax.text(c * (w + gap) + w / 2, y0 - 1, f"Frame {int(i) + 1} ({w_att[i]:.3f})", ha="center", va="bottom",
                    fontsize=7)
    fig.suptitle(f"{row['clip_id']}: top {grid_top} frames per pattern (frame numbers 1-based within the clip)",
                 fontsize=9)
    return fig
