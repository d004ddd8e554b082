"""The evaluation headline `luskit pocus` prints and stores: read back from evaluate's per-model metrics."""

from __future__ import annotations

import json
import re

import pytest

from luskit.pocus_report import evaluation_headlines, headline_auroc


def view(auroc: float, ci: list[float] | None) -> dict:
    return {"auroc": auroc, "auroc_ci": ci, "n_pos": 3, "auprc": 0.5}


def test_headline_reads_the_pooled_validation_view_of_the_level():
    metrics = {"validation": {
        "video_max": {"headline": "pooled", "pooled": {
            "n": 10, "n_patients": 7, "macro": view(0.8, [0.7, 0.9]),
            "patterns": {"a_lines": view(0.6, [0.4, 0.8]), "b_lines": view(1.0, None)}},
            "folds": {"0": {"n": 2}}},
        "clip": {"headline": "pooled", "pooled": {"n": 0}}}}
    got = headline_auroc(metrics, "video_max")
    assert got == {"n": 10, "n_patients": 7, "macro": {"auroc": 0.8, "ci": [0.7, 0.9], "n_pos": 3},
                   "patterns": {"a_lines": {"auroc": 0.6, "ci": [0.4, 0.8], "n_pos": 3},
                                "b_lines": {"auroc": 1.0, "ci": None, "n_pos": 3}}}
    assert headline_auroc(metrics, "clip") == {}  # an empty set has no headline
    assert headline_auroc(metrics, "video_mean") == {} and headline_auroc({}, "clip") == {}


@pytest.mark.slow
def test_headlines_of_the_demo_match_its_comparison_table(demo_project):
    """On a real evaluate output: every model's out-of-fold clip-level macro AUROC with its CI is the one
    comparison.md prints in Table 1b."""
    heads = evaluation_headlines(demo_project.path)
    params_models = {p.parent.name for p in (demo_project.path / "artifacts" / "eval").glob("*/metrics.json")}
    assert set(heads) == params_models and "luvnet" in heads
    table = (demo_project.path / "artifacts" / "eval" / "comparison.md").read_text()
    section = table.split("## Table 1b.")[1].split("##")[0]
    for model, levels in heads.items():
        macro = levels["clip"]["macro"]
        row = next(line for line in section.splitlines() if line.startswith(f"| {model} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert re.match(rf"{macro['auroc']:.3f} \[{macro['ci'][0]:.3f}, {macro['ci'][1]:.3f}\]", cells[-1]), row
        raw = json.loads((demo_project.path / "artifacts" / "eval" / model / "metrics.json").read_text())
        assert levels["video_max"]["n"] == raw["validation"]["video_max"]["pooled"]["n"] < levels["clip"]["n"]
