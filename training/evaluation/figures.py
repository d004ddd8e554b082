"""PNG figures of the comparison: ROC, precision-recall and reliability per set, all models, 2x2 patterns.

Figures are built on matplotlib's object API (`Figure`, no pyplot state, Agg rendering) so the stage
is safe headless and in threads; `save_png` writes atomically. DVC declares the PNGs as image plots,
which its HTML embeds directly: they render offline (the vega-based CSV plots need a CDN).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything draws: no display on a server or in CI

from matplotlib.figure import Figure  # noqa: E402

from luskit.atomic import write_atomic  # noqa: E402
from luskit.schema import PATTERN_SLUGS, PATTERNS  # noqa: E402

NAME = dict(zip(PATTERN_SLUGS, PATTERNS))
AXES = {"roc": ("fpr", "tpr", "False positive rate", "True positive rate"),
        "pr": ("recall", "precision", "Recall", "Precision"),
        "calibration": ("confidence", "observed", "Mean predicted probability", "Observed share positive")}
SET_TITLE = {"validation": "out-of-fold validation (pooled)", "internal_test": "internal test (fold ensemble)",
             "temporal": "temporally separated set (fold ensemble)"}


def save_png(fig, path: Path, dpi: int = 100) -> Path:
    """A matplotlib Figure or a PIL image -> PNG at `path`, atomically."""
    if isinstance(fig, Figure):
        return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    return write_atomic(Path(path), lambda tmp: fig.save(tmp, format="PNG"))


def _diagonal(ax, kind: str) -> None:
    if kind in ("roc", "calibration"):
        ax.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=0.8)


def curve_figure(per_pattern: Mapping[str, Mapping[str, object]], kind: str, set_name: str,
                 labels: Mapping[str, Mapping[str, str]] | None = None) -> Figure:
    """2x2 panels (one per pattern), one line per model. per_pattern: {slug: {model: points DataFrame}};
    labels: {slug: {model: legend text}} (e.g. the AUROC), default the model name."""
    x, y, xlabel, ylabel = AXES[kind]
    fig = Figure(figsize=(10, 9))
    axes = fig.subplots(2, 2, gridspec_kw=dict(hspace=0.3, wspace=0.25)).ravel()
    for ax, slug in zip(axes, PATTERN_SLUGS):
        _diagonal(ax, kind)
        for model, points in per_pattern.get(slug, {}).items():
            pts = points.dropna(subset=[x, y]) if len(points) else points
            if not len(pts):
                continue
            text = (labels or {}).get(slug, {}).get(model, model)
            style = dict(marker="o", markersize=3) if kind == "calibration" else {}
            ax.plot(pts[x].astype(float), pts[y].astype(float), label=text, linewidth=1.2, **style)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=xlabel, ylabel=ylabel, title=NAME[slug])
        if ax.lines[1:] or (kind == "pr" and ax.lines):
            ax.legend(fontsize=7, loc="lower right" if kind != "pr" else "lower left")
    fig.suptitle(f"{dict(roc='ROC', pr='Precision-recall', calibration='Reliability')[kind]}: {SET_TITLE[set_name]}")
    return fig
