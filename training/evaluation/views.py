"""Evaluation views of one model: which rows form each evaluation set, at clip and video level. No I/O.

Three sets (contracts: predictions' `set`):
- validation: out-of-fold. Per fold model, its own validation fold ("folds": 5-fold mean +- SD), and
  all folds' rows pooled into one out-of-fold table ("pooled", the headline, with CIs);
- internal_test and temporal: per fold model on the whole set ("folds", mean +- SD) and the
  probability-averaged fold ensemble ("ensemble", the headline, with CIs).
Levels: "clip", and "video_max" / "video_mean" (clip probabilities pooled per video; evaluate.video_pooling
picks the one the summary reports). An empty set (no temporal data, say) gives {"n": 0, "note": ...}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from luskit.schema import PATTERN_SLUGS
from training.evaluation import scoring, tables

HEADLINE = {"validation": "pooled", "internal_test": "ensemble", "temporal": "ensemble"}
LEVELS = ("clip", "video_max", "video_mean")


@dataclass(frozen=True)
class ViewSettings:
    boot: scoring.Bootstrap
    ece_bins: int = 10
    fold_bootstrap: bool = False  # CIs for every fold model too (slower; the headline always has them)


def headline_rows(rows: pd.DataFrame, set_name: str) -> pd.DataFrame:
    """The headline table of a set from a model's rows (fold rows + ensemble rows): pooled OOF or ensemble."""
    in_set = rows[rows["set"] == set_name]
    if set_name == "validation":
        return in_set[in_set["fold"] != tables.ENSEMBLE_FOLD]
    return in_set[in_set["fold"] == tables.ENSEMBLE_FOLD]


def fold_rows(rows: pd.DataFrame, set_name: str) -> dict[int, pd.DataFrame]:
    in_set = rows[(rows["set"] == set_name) & (rows["fold"] != tables.ENSEMBLE_FOLD)]
    return {int(k): part for k, part in in_set.groupby("fold", sort=True)}


def at_level(table: pd.DataFrame, level: str, slugs: Sequence[str] = PATTERN_SLUGS) -> pd.DataFrame:
    """Clip rows unchanged, or pooled per video (fold models stay apart: pooling is within a model)."""
    if level == "clip":
        return table
    return tables.pool_videos(table, level.removeprefix("video_"), slugs)


def empty_note(set_name: str) -> str:
    roles = "fold0..fold4" if set_name == "validation" else set_name
    return f"empty set: no predictions with set={set_name} (no clips with role {roles} in the splits)"


def score_set(rows: pd.DataFrame, set_name: str, settings: ViewSettings, slugs: Sequence[str] = PATTERN_SLUGS) -> dict:
    """{"headline": HEADLINE[set], <headline>: score, "folds": {k: score}, "fold_summary": ...} for one set.

    rows: a model's rows at one level (clip rows, or video rows from at_level on all of them).
    """
    head = headline_rows(rows, set_name)
    if head.empty:
        return {"n": 0, "note": empty_note(set_name)}
    no_boot = scoring.Bootstrap(n_boot=0)
    fold_boot = settings.boot if settings.fold_bootstrap else no_boot
    folds = {k: scoring.score_table(part, fold_boot, settings.ece_bins, slugs)
             for k, part in fold_rows(rows, set_name).items()}
    name = HEADLINE[set_name]
    return {"headline": name, name: scoring.score_table(head, settings.boot, settings.ece_bins, slugs),
            "folds": {str(k): v for k, v in folds.items()}, "fold_summary": scoring.fold_summary(folds)}


def score_model(rows: pd.DataFrame, settings: ViewSettings, slugs: Sequence[str] = PATTERN_SLUGS) -> dict:
    """{set: {level: score_set(...)}} for every set and level of one model's rows (fold + ensemble rows).

    Videos are pooled once per level over all rows (pooling keeps set and fold apart)."""
    levels = {level: at_level(rows, level, slugs) for level in LEVELS}
    return {s: {level: score_set(table, s, settings, slugs) for level, table in levels.items()} for s in tables.SETS}


def headline(result: dict, set_name: str, level: str = "clip") -> dict | None:
    """The headline score dict of a set/level from score_model's result (None for an empty set)."""
    block = result[set_name][level]
    return block.get(block.get("headline", ""), None)
