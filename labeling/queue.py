"""The `review-queue` stage: what a senior reviewer should look at first -> artifacts/review/queue.parquet.

Inputs (files only: labeling never imports training code):
- artifacts/eval/label_errors.parquet (evaluate stage): per clip and pattern the primary model's held-out
  probability (out-of-fold for fold clips, the fold ensemble for test clips), its validation threshold,
  the label-error score (1 - self-confidence, higher = more likely wrong) and the confident-learning flag;
- artifacts/labels/consensus.parquet (the current consensus, including reviewer decisions),
  disagreements.parquet (annotators disagree / no consensus / consensus differs from gold, reviewed),
  clip_labels.parquet (who said present, who said absent).

One row per (clip, pattern) with at least one reason (contract columns QUEUE_COLUMNS):
- annotator_disagreement: readers disagree (disagreements.parquet), or there is no consensus;
- model_disagreement: the model's call (prob >= threshold) differs from the consensus;
- likely_label_error: the clip is off the diagonal of the confident joint, or the consensus differs from
  a gold-standard reader; clips in the top `label_error_top` share of a pattern's ranking are queued too.
priority = sum of review_queue.weights over the reasons present + weights.label_error x score; rank 1 =
highest priority (ties: higher score, then clip id and pattern, so the order is reproducible). Clip
patterns a reviewer already decided are left out unless include_reviewed.

Test labels are protected: for internal_test and temporal clips (PROTECTED_ROLES, or a temporal-period
clip without a role) only annotator-driven reasons count (readers disagree, no consensus, differs from
gold), and the row carries no model output (prob, threshold and label_error_score are blank), so neither
the queue nor the page showing it can lead a reviewer to move a test label towards the model.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from luskit import paths
from luskit.atomic import write_parquet_atomic
from luskit.config import ConfigError, load_section, require
from luskit.schema import PATTERNS
from luskit.tables import read_table

LABEL_ERRORS = paths.EVAL / "label_errors.parquet"
QUEUE = paths.REVIEW / "queue.parquet"
QUEUE_COLUMNS = ("clip_id", "video_id", "patient_id", "period", "role", "pattern", "consensus", "prob", "threshold",
                 "label_error_score", "annotator_disagreement", "model_disagreement", "likely_label_error",
                 "reasons", "priority", "rank", "positive_by", "negative_by")
KEY = ["clip_id", "pattern"]
PROTECTED_ROLES = ("internal_test", "temporal")
MODEL_COLUMNS = ("prob", "threshold", "label_error_score")


@dataclass(frozen=True)
class Weights:
    """Priority points per reason (review_queue.weights)."""

    annotators: float = 1.0  # readers disagree
    no_consensus: float = 1.0  # no consensus label at all: the clip is unusable until decided
    gold: float = 1.0  # consensus differs from a gold-standard reader
    model: float = 0.5  # the model's call differs from the consensus
    likely_label_error: float = 0.5  # off the confident-joint diagonal
    label_error: float = 1.0  # times the label-error score (0..1)


@dataclass(frozen=True)
class QueueParams:
    """The `review_queue:` section of params.yaml."""

    weights: Weights = field(default_factory=Weights)
    label_error_top: float = 0.05  # queue the top share of each pattern's label-error ranking (0 = flags only)
    include_reviewed: bool = False  # keep clip patterns that already have a reviewer decision
    max_rows: int = 0  # 0 = every candidate

    def __post_init__(self) -> None:
        require(0.0 <= self.label_error_top <= 1.0, f"label_error_top={self.label_error_top}: use a share in [0, 1]")
        require(self.max_rows >= 0, f"max_rows={self.max_rows}: use 0 (all) or more")
        require(min(vars(self.weights).values()) >= 0, "weights: use 0 or more")


def raters(clip_labels: pd.DataFrame) -> pd.DataFrame:
    """(clip_id, pattern) -> positive_by, negative_by: annotators (sorted, ", "-joined) per answer."""
    long = clip_labels.melt(id_vars=["clip_id", "annotator"], value_vars=list(PATTERNS), var_name="pattern",
                            value_name="value").dropna(subset=["value"]).sort_values("annotator", kind="stable")
    joined = long.groupby([*KEY, "value"])["annotator"].agg(", ".join).unstack("value")
    out = pd.DataFrame(index=joined.index)
    out["positive_by"] = joined[1] if 1 in joined else pd.NA
    out["negative_by"] = joined[0] if 0 in joined else pd.NA
    return out.fillna("").reset_index()


def with_unscored(errors: pd.DataFrame, disagreements: pd.DataFrame) -> pd.DataFrame:
    """errors + rows for disagreements the model never scored (prob NaN), so no annotator disagreement is
    lost when a clip has no prediction (e.g. a clip added after training)."""
    known = pd.MultiIndex.from_frame(errors[KEY])
    missing = disagreements[~pd.MultiIndex.from_frame(disagreements[KEY]).isin(known)]
    if missing.empty:
        return errors
    extra = missing[["clip_id", "video_id", "patient_id", "period", "pattern"]].assign(
        prob=np.nan, threshold=np.nan, label=pd.NA, label_error_score=np.nan, likely_label_error=False,
        rank=pd.NA, rank_fraction=np.nan)
    out = pd.concat([errors, extra], ignore_index=True)
    out["label"] = out["label"].astype("Int8")
    return out


def _reasons(t: pd.DataFrame, model_call: pd.Series) -> pd.Series:
    """Human-readable reasons per row ("; "-joined)."""
    parts = []
    for i in range(len(t)):
        r = t.iloc[i]
        items = [s for s in str(r["disagreement_reason"]).split("; ") if s and s != "nan"]
        if r["model_disagreement"]:
            said = "present" if model_call.iloc[i] else "absent"
            items.append(f"model says {said} (p={r['prob']:.2f}, threshold {r['threshold']:.2f}), "
                         f"consensus {'present' if r['consensus'] == 1 else 'absent'}")
        if r["confident_joint"]:
            items.append(f"likely label error (score {r['label_error_score']:.2f}, rank {int(r['error_rank'])} for "
                         f"{r['pattern']})")
        elif r["top_error"]:
            items.append(f"label-error score {r['label_error_score']:.2f} (rank {int(r['error_rank'])} for "
                         f"{r['pattern']})")
        if r["label_changed"]:
            items.append("consensus changed since evaluation (score refers to the earlier label)")
        parts.append("; ".join(dict.fromkeys(items)))
    return pd.Series(parts, index=t.index, dtype=object)


def flags(errors: pd.DataFrame, consensus: pd.DataFrame, disagreements: pd.DataFrame,
          params: QueueParams) -> pd.DataFrame:
    """Every scored or disputed (clip, pattern) with its reason flags (bool columns), before filtering."""
    cons = consensus[[*KEY, "label", "provenance"]].rename(columns={"label": "consensus"})
    d = disagreements[[*KEY, "reason", "reviewed"]].rename(columns={"reason": "disagreement_reason"})
    t = with_unscored(errors, disagreements).merge(cons, on=KEY, how="left", validate="one_to_one")
    t = t.merge(d, on=KEY, how="left", validate="one_to_one")
    t["consensus"] = t["consensus"].astype("Int8")
    reason = t["disagreement_reason"].fillna("").astype(str)
    t["no_consensus"] = t["consensus"].isna().to_numpy()
    t["annotators"] = reason.str.contains("annotators disagree", regex=False)
    t["gold"] = reason.str.contains("differs from gold", regex=False)
    t["model_call"] = (t["prob"] >= t["threshold"]).to_numpy()
    scored = (t["prob"].notna() & t["threshold"].notna()).to_numpy()
    called = t["model_call"].astype(int).to_numpy()
    t["model_disagreement"] = scored & ~t["no_consensus"] & (called != t["consensus"].fillna(-1).to_numpy())
    t["confident_joint"] = t["likely_label_error"].astype(bool) & ~t["no_consensus"]
    t["error_rank"] = t["rank"]
    t["top_error"] = (t["rank_fraction"].astype("Float64") <= params.label_error_top).fillna(False).astype(bool)
    changed = t["label"].notna() & (t["label"] != t["consensus"])
    t["label_changed"] = (~t["no_consensus"] & changed).fillna(False).astype(bool)
    t["protected"] = protected(t)
    for name in ("model_disagreement", "confident_joint", "top_error", "label_changed"):  # model-driven reasons
        t[name] = t[name].astype(bool) & ~t["protected"]
    t.loc[t["protected"], list(MODEL_COLUMNS)] = np.nan
    t["annotator_disagreement"] = t["annotators"] | t["no_consensus"]
    t["likely_label_error"] = t["confident_joint"] | t["gold"]
    t["reviewed"] = t["reviewed"].fillna(False).astype(bool) | t["provenance"].fillna("").str.startswith("review (")
    return t


def protected(t: pd.DataFrame) -> pd.Series:
    """(n,) bool: rows of test clips (role in PROTECTED_ROLES; without a role, a temporal-period clip)."""
    role = t["role"] if "role" in t else pd.Series(pd.NA, index=t.index)
    temporal = t["period"].astype(str).eq("temporal") if "period" in t else False
    return (role.isin(PROTECTED_ROLES) | (role.isna() & temporal)).astype(bool)


def build_queue(errors: pd.DataFrame, consensus: pd.DataFrame, disagreements: pd.DataFrame,
                clip_labels: pd.DataFrame, params: QueueParams) -> pd.DataFrame:
    """The ranked queue (QUEUE_COLUMNS) from the four input tables (module doc). Pure."""
    t = flags(errors, consensus, disagreements, params)
    keep = t["annotator_disagreement"] | t["model_disagreement"] | t["likely_label_error"] | t["top_error"]
    if not params.include_reviewed:
        keep &= ~t["reviewed"]
    t = t[keep.to_numpy()].copy()
    w = params.weights
    points = {"annotators": w.annotators, "no_consensus": w.no_consensus, "gold": w.gold,
              "model_disagreement": w.model, "confident_joint": w.likely_label_error}
    t["priority"] = sum(weight * t[column].astype(float) for column, weight in points.items())
    t["priority"] += w.label_error * t["label_error_score"].fillna(0.0).astype(float)
    t["reasons"] = _reasons(t, t["model_call"])
    t = t.merge(raters(clip_labels), on=KEY, how="left")
    t[["positive_by", "negative_by"]] = t[["positive_by", "negative_by"]].fillna("")
    t["_score"] = t["label_error_score"].fillna(-1.0)
    order = ["priority", "_score", "clip_id", "pattern"]  # ties: higher score, then ids (reproducible)
    t = t.sort_values(order, ascending=[False, False, True, True], kind="stable")
    if params.max_rows:
        t = t.head(params.max_rows)
    t["rank"] = np.arange(1, len(t) + 1)
    return t[list(QUEUE_COLUMNS)].reset_index(drop=True)


def main(params_path: Path = paths.PARAMS) -> int:
    """Run the stage from the project folder; 0 done, 2 bad params or inputs."""
    labels_fix = "run the labels stage first (luskit labels / dvc repro)"
    try:
        params = load_section(Path(params_path), "review_queue", QueueParams)
        errors = read_table(LABEL_ERRORS, [*KEY, "prob", "threshold", "label", "label_error_score", "likely_label_error",
                                      "rank", "rank_fraction"], "run the evaluate stage first (luskit evaluate)")
        consensus = read_table(paths.CONSENSUS, [*KEY, "label", "provenance"], labels_fix)
        disagreements = read_table(paths.DISAGREEMENTS, [*KEY, "reason", "reviewed"], labels_fix)
        clip_labels = read_table(paths.CLIP_LABELS, ["clip_id", "annotator", *PATTERNS], labels_fix)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    queue = build_queue(errors, consensus, disagreements, clip_labels, params)
    write_parquet_atomic(QUEUE, queue)
    counts = {c: int(queue[c].sum()) for c in ("annotator_disagreement", "model_disagreement", "likely_label_error")}
    print(f"review-queue: {len(queue)} clip patterns ({', '.join(f'{k} {v}' for k, v in counts.items())}) -> {QUEUE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
