"""The review queue as the app shows it: contract rows + reviewer decisions, filters and progress (pure).

Source: artifacts/review/queue.parquet (`luskit review-queue`, one row per clip and pattern, ranked).
Before a model exists the queue falls back to the labels stage's disagreements.parquet, so review can
start on annotator disagreements alone (model columns are then NaN and the model flag False).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The three reasons a (clip, pattern) is queued: the contract's boolean column -> what the page says.
REASONS = {"annotator_disagreement": "annotator disagreement", "model_disagreement": "model disagreement",
           "likely_label_error": "likely label error"}
ROLE_GROUPS = ("fold", "internal test", "temporal")
QUEUE_COLUMNS = ("clip_id", "video_id", "patient_id", "period", "role", "pattern", "consensus", "prob", "threshold",
                 "label_error_score", "annotator_disagreement", "model_disagreement", "likely_label_error",
                 "reasons", "priority", "rank", "positive_by", "negative_by")
DECIDED_FILTERS = ("all", "not decided by me", "decided by me", "not decided by anyone")


def role_group(role: str | float) -> str:
    """fold0..fold4 -> 'fold'; internal_test -> 'internal test'; temporal -> 'temporal'; else 'unassigned'."""
    if not isinstance(role, str):
        return "unassigned"
    if role.startswith("fold"):
        return "fold"
    return role.replace("_", " ")


def fallback_queue(disagreements: pd.DataFrame, splits: pd.DataFrame | None) -> pd.DataFrame:
    """QUEUE_COLUMNS from the labels stage's disagreements (no model yet): annotator disagreements first.

    "consensus differs from gold" (the labels stage compares with a reference standard where one
    exists) marks a likely label error.
    """
    d = disagreements.copy()
    roles = splits.set_index("clip_id")["role"] if splits is not None else pd.Series(dtype="str")
    reason = d["reason"].astype(str)
    out = pd.DataFrame({
        "clip_id": d["clip_id"], "video_id": d["video_id"], "patient_id": d["patient_id"], "period": d["period"],
        "role": d["clip_id"].map(roles), "pattern": d["pattern"],
        "consensus": d["consensus"].astype("Int8"), "prob": np.nan, "threshold": np.nan,
        "label_error_score": np.nan,
        "annotator_disagreement": reason.str.contains("annotators disagree", regex=False),
        "model_disagreement": False,
        "likely_label_error": reason.str.contains("differs from gold", regex=False),
        "reasons": reason, "positive_by": d["positive_by"], "negative_by": d["negative_by"]})
    out["priority"] = out["annotator_disagreement"].astype(float) + 0.5 * out["likely_label_error"].astype(float)
    out = out.sort_values(["priority", "clip_id", "pattern"], ascending=[False, True, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    return out[list(QUEUE_COLUMNS)].reset_index(drop=True)


MODEL_REASON_WORDS = ("model", "label-error", "label error", "changed since evaluation")


def protect(queue: pd.DataFrame) -> pd.DataFrame:
    """Blind adjudication of test clips (clip_logic.is_blind: every role but fold<k>), whatever wrote the
    queue: their rows keep only annotator-driven reasons, lose the model's numbers, and a row queued
    for the model alone is dropped. (The review-queue stage already does this; a queue written by an
    older luskit may not have.)"""
    from labeling.app.clip_logic import is_blind

    out = queue.copy()
    blind = out["role"].map(is_blind).to_numpy(dtype=bool)
    if not blind.any():
        return out
    out.loc[blind, ["prob", "threshold", "label_error_score"]] = np.nan
    out.loc[blind, "model_disagreement"] = False
    kept = [["; ".join(p for p in str(text).split("; ") if not any(w in p for w in MODEL_REASON_WORDS))]
            for text in out.loc[blind, "reasons"]]
    out.loc[blind, "reasons"] = [k[0] for k in kept]
    gold = out["reasons"].astype(str).str.contains("differs from gold", regex=False)
    out.loc[blind, "likely_label_error"] = gold[blind].to_numpy()
    keep = ~blind | out["annotator_disagreement"].astype(bool).to_numpy() | gold.to_numpy()
    return out[keep].reset_index(drop=True)


def with_decisions(queue: pd.DataFrame, latest: pd.DataFrame, reviewer: str) -> pd.DataFrame:
    """queue + my_decision ('' if none), decided_by_me, n_reviewers (with a latest decision), decided_by_any.

    latest: reviews.latest_decisions() (one row per reviewer, clip, pattern).
    """
    out = queue.copy()
    key = ["clip_id", "pattern"]
    mine = latest.loc[latest["reviewer"] == reviewer, [*key, "decision"]].rename(columns={"decision": "my_decision"})
    counts = latest.groupby(key).size().rename("n_reviewers").reset_index()
    out = out.merge(mine, on=key, how="left").merge(counts, on=key, how="left")
    out["my_decision"] = out["my_decision"].fillna("").astype(str)
    out["n_reviewers"] = out["n_reviewers"].fillna(0).astype(int)
    out["decided_by_me"] = out["my_decision"] != ""
    out["decided_by_any"] = out["n_reviewers"] > 0
    return out


def filter_queue(queue: pd.DataFrame, patterns=(), reasons=(), roles=(), patients=(),
                 decided: str = "all") -> pd.DataFrame:
    """Rows matching every non-empty filter; `reasons` are REASONS values (a row matches if it has any)."""
    keep = pd.Series(True, index=queue.index)
    if patterns:
        keep &= queue["pattern"].isin(patterns)
    if reasons:
        columns = [c for c, label in REASONS.items() if label in reasons]
        keep &= queue[columns].fillna(False).astype(bool).any(axis=1)
    if roles:
        keep &= queue["role"].map(role_group).isin(roles)
    if patients:
        keep &= queue["patient_id"].isin(patients)
    if decided not in DECIDED_FILTERS:
        raise ValueError(f"decided={decided!r}: use one of {DECIDED_FILTERS}")
    if decided == "not decided by me":
        keep &= ~queue["decided_by_me"]
    elif decided == "decided by me":
        keep &= queue["decided_by_me"]
    elif decided == "not decided by anyone":
        keep &= ~queue["decided_by_any"]
    return queue[keep].sort_values("rank", kind="stable")


def progress(queue: pd.DataFrame) -> dict[str, int]:
    """{'total', 'decided_by_me', 'decided_by_any'} counted over (clip, pattern) rows."""
    return {"total": int(len(queue)), "decided_by_me": int(queue["decided_by_me"].sum()),
            "decided_by_any": int(queue["decided_by_any"].sum())}


def clip_order(queue: pd.DataFrame) -> list[str]:
    """Clip ids in queue order (a clip's first, i.e. best, rank), each once."""
    if queue.empty:
        return []
    first = queue.groupby("clip_id", sort=False)["rank"].min().sort_values(kind="stable")
    return list(first.index)


def next_undecided(queue: pd.DataFrame) -> str | None:
    """The best-ranked clip with a row the current reviewer has not decided, or None."""
    open_rows = queue.loc[~queue["decided_by_me"]]
    order = clip_order(open_rows)
    return order[0] if order else None


def display_table(queue: pd.DataFrame) -> pd.DataFrame:
    """The columns the Queue page lists, in reading order."""
    out = queue.assign(role=queue["role"].map(role_group))
    cols = ["rank", "clip_id", "pattern", "reasons", "my_decision", "n_reviewers", "consensus", "prob", "threshold",
            "label_error_score", "role", "patient_id"]
    return out[cols].reset_index(drop=True)
