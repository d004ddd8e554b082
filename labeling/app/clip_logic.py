"""One clip on the Clip page: its model row, attention over frames, and the per-pattern evidence table (pure).

Prediction rows follow the contract (artifacts/eval/<model>/predictions.parquet): one row per clip and
fold model, `set` in {validation, internal_test, temporal}, ensemble rows with fold = -1, columns
prob_<slug>, thr_<slug>, attention_<slug> (list of length T, 0 on padded frames, null without attention).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS, PATTERNS

UI_DECISIONS = {"present": "present", "absent": "absent", "cannot tell": "cannot_tell"}  # shown -> stored
STORED_TO_UI = {v: k for k, v in UI_DECISIONS.items()}
MODEL_ROWS = ("model prob", "threshold", "model says", "label-error score")  # evidence rows that show the model
BLIND_NOTE = ("Blind adjudication: this clip is not in a training fold (role {role}), so the model's outputs "
              "(probability, threshold, attention, label-error score) are hidden; decide from the video and the "
              "readers. Test labels must not move towards the model.")


def is_blind(role: str | None) -> bool:
    """Blind adjudication: True unless the clip is a cross-validation fold clip (role fold<k>).

    internal_test and temporal clips are scored as test data, so a reviewer deciding them must not see
    the model; an unknown role (no splits yet) is treated the same way, to be safe."""
    return not (isinstance(role, str) and role.startswith("fold"))


def model_shown(blind: bool, row: pd.Series | None, queue_rows: pd.DataFrame | None) -> bool:
    """Whether the Clip page puts any model output on screen: the prediction row (probability, threshold,
    call, attention) or queue rows with a probability, a label-error score or a model-driven reason.
    Recorded with each decision (reviews.model_shown)."""
    if blind:
        return False
    if row is not None:
        return True
    if queue_rows is None or queue_rows.empty:
        return False
    numbers = queue_rows[["prob", "label_error_score"]].notna().to_numpy().any()
    reasons = (queue_rows["model_disagreement"].astype(bool).any()
               or queue_rows["reasons"].astype(str).str.contains("model|label-error|label error").any())
    return bool(numbers or reasons)


def prediction_row(preds: pd.DataFrame | None, clip_id: str) -> pd.Series | None:
    """The row whose numbers describe `clip_id` for a reviewer, or None.

    A fold clip: its out-of-fold row (set == validation: the model never trained on it). A test clip:
    the fold-ensemble row (fold == -1); without one, the mean over the fold models' rows (attention
    averaged frame by frame, thresholds averaged).
    """
    if preds is None or preds.empty:
        return None
    rows = preds[preds["clip_id"] == clip_id]
    if rows.empty:
        return None
    for subset in (rows[rows["set"] == "validation"], rows[rows["fold"] == -1]):
        if not subset.empty:
            return subset.iloc[0]
    out = rows.iloc[0].copy()
    for slug in PATTERN_SLUGS:
        out[f"prob_{slug}"] = float(rows[f"prob_{slug}"].mean())
        out[f"thr_{slug}"] = float(rows[f"thr_{slug}"].mean())
        att = f"attention_{slug}"
        if att in rows and rows[att].notna().all():
            out[att] = np.mean(np.stack([np.asarray(a, dtype=np.float32) for a in rows[att]]), axis=0)
    out["fold"] = -1
    return out


def attention_table(row: pd.Series | None, start: int, n_real: int, top_k: int = 5) -> pd.DataFrame:
    """Long table frame (absolute, 0-based), video_frame (absolute, 1-based as players and Label Studio count),
    clip_frame (1-based), pattern, attention, top (bool).

    Only real frames are kept (padded frames carry 0 by contract). Empty when the model has no attention.
    """
    cols = ["frame", "video_frame", "clip_frame", "pattern", "attention", "top"]
    if row is None:
        return pd.DataFrame(columns=cols)
    parts = []
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        values = row.get(f"attention_{slug}")
        if values is None or (np.isscalar(values) and pd.isna(values)):
            continue
        att = np.asarray(values, dtype=np.float64)[:n_real]
        top = np.zeros(len(att), dtype=bool)
        top[np.argsort(-att, kind="stable")[:top_k]] = True
        parts.append(pd.DataFrame({"frame": start + np.arange(len(att)), "video_frame": start + np.arange(1, len(att) + 1),
                                   "clip_frame": np.arange(1, len(att) + 1),
                                   "pattern": pattern, "attention": att, "top": top}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def top_frames(attention: pd.DataFrame, pattern: str) -> list[int]:
    """Absolute frame indices of `pattern`'s top frames, highest attention first."""
    rows = attention[(attention["pattern"] == pattern) & attention["top"]]
    return rows.sort_values("attention", ascending=False, kind="stable")["frame"].astype(int).tolist()


def _yes_no(value) -> str:
    return "—" if pd.isna(value) else ("present" if int(value) == 1 else "absent")


def _number(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.2f}"


def evidence_table(clip_id: str, clip_labels: pd.DataFrame | None, consensus: pd.DataFrame | None,
                   row: pd.Series | None, queue: pd.DataFrame | None, latest: pd.DataFrame,
                   blind: bool = False) -> pd.DataFrame:
    """Text table, one column per pattern; rows (in order, each only when its source exists): every
    annotator's label, consensus, provenance, model prob, threshold, model says, label-error score,
    queued for, reviewers (each reviewer's latest decision). blind (is_blind): no model row at all
    (MODEL_ROWS), whatever `row` and `queue` hold."""
    if blind:
        row = None
    rows: dict[str, list[str]] = {}
    if clip_labels is not None:
        mine = clip_labels[clip_labels["clip_id"] == clip_id]
        for _, ann in mine.sort_values("annotator").iterrows():
            rows[str(ann["annotator"])] = [_yes_no(ann[p]) for p in PATTERNS]
    if consensus is not None:
        cons = consensus[consensus["clip_id"] == clip_id].set_index("pattern")
        rows["consensus"] = [_yes_no(cons["label"].get(p, pd.NA)) for p in PATTERNS]
        rows["provenance"] = [str(cons["provenance"].get(p, "")) for p in PATTERNS]
    if row is not None:
        probs = [float(row[f"prob_{s}"]) for s in PATTERN_SLUGS]
        thrs = [float(row[f"thr_{s}"]) for s in PATTERN_SLUGS]
        rows["model prob"] = [_number(p) for p in probs]
        rows["threshold"] = [_number(t) for t in thrs]
        rows["model says"] = ["present" if p >= t else "absent" for p, t in zip(probs, thrs)]
    if queue is not None:
        q = queue[queue["clip_id"] == clip_id].set_index("pattern")
        if not blind:
            rows["label-error score"] = [_number(q["label_error_score"].get(p, np.nan)) for p in PATTERNS]
        rows["queued for"] = [str(q["reasons"].get(p, "")) for p in PATTERNS]
    mine = latest[latest["clip_id"] == clip_id]
    rows["reviewers"] = [", ".join(f"{r}: {STORED_TO_UI.get(d, d)}" for r, d in
                                   mine.loc[mine["pattern"] == p, ["reviewer", "decision"]].itertuples(index=False))
                         for p in PATTERNS]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(PATTERNS))
    return table.rename_axis("").reset_index()


def my_latest(latest: pd.DataFrame, reviewer: str, clip_id: str) -> dict[str, tuple[str, str]]:
    """{pattern: (stored decision, note)} of `reviewer`'s latest decisions on the clip."""
    rows = latest[(latest["reviewer"] == reviewer) & (latest["clip_id"] == clip_id)]
    return {r.pattern: (r.decision, r.note) for r in rows.itertuples(index=False)}


def changed_choices(previous: dict[str, tuple[str, str]],
                    chosen: dict[str, tuple[str | None, str]]) -> list[tuple[str, str, str]]:
    """(pattern, stored decision, note) to record: a choice made that differs from the latest one in
    decision or note. `chosen` maps pattern -> (UI decision or None for 'no choice', note)."""
    out = []
    for pattern in PATTERNS:
        ui, note = chosen.get(pattern, (None, ""))
        if ui is None:
            continue
        stored = UI_DECISIONS[ui]
        if previous.get(pattern) != (stored, note.strip()):
            out.append((pattern, stored, note.strip()))
    return out


def neighbours(order: list[str], clip_id: str) -> tuple[str | None, str | None]:
    """(previous, next) clip ids around `clip_id` in `order` (None at the ends or when absent)."""
    if clip_id not in order:
        return None, (order[0] if order else None)
    i = order.index(clip_id)
    return (order[i - 1] if i > 0 else None), (order[i + 1] if i + 1 < len(order) else None)
