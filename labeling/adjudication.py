"""Label Studio adjudication pulls (data/reviews/label-studio/*.json) -> reviewer decisions.

`luskit label pull --adjudication` writes the clip-level Choices project (labeling/ls/configs/clip_choices.xml)
as a snapshot in the same full-JSON format as the timeline pulls. Every non-cancelled annotation there is one
reviewer's decision on one clip, for all four patterns at once:

- a pattern ticked -> ``present``; a pattern not ticked -> ``absent`` (the project asks to tick every pattern
  visible in the clip's frames, so an unticked box is a statement, not a gap);
- quality ``exclude: ...`` -> ``cannot_tell`` for every pattern (the clip cannot be read; cannot_tell does not
  vote in reviews.resolve_reviewers).

Per clip and reviewer the latest annotation wins (snapshot order, then `updated_at`, then annotation id). With
``labels.snapshots: newest`` only the newest pull of each project is read: a pull is cumulative, so an
annotation deleted in Label Studio also leaves the decisions.

One vote per reviewer (merge_latest): a reviewer who decided the same clip and pattern both in the review app
and in Label Studio counts once, with the later of the two latest decisions by UTC timestamp (the app's on a
tie). The app's store is not written to: these decisions live in the pulled snapshots.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labeling.annotations import SnapshotError, kept_annotations, load_snapshot, select_snapshots, snapshot_source
from labeling.reviews import COLUMNS, empty
from luskit.schema import LS_PATTERNS, LS_QUALITY, PATTERNS, QUALITY_EXCLUDE, QUALITY_USABLE

SOURCE = "label-studio"  # app_version of the rows made here: where a decision came from


def _choices(result: list[dict], name: str) -> list[str] | None:
    """The choices of control `name` in one annotation's result, or None when it is absent."""
    for region in result:
        if region.get("type") == "choices" and region.get("from_name") == name:
            return [str(c) for c in (region.get("value") or {}).get("choices") or []]
    return None


def annotation_decisions(result: list[dict], where: str) -> dict[str, str]:
    """{pattern: decision} of one adjudication annotation (rules in the module doc)."""
    quality = _choices(result, LS_QUALITY) or [QUALITY_USABLE]
    if quality[0] not in (QUALITY_USABLE, *QUALITY_EXCLUDE):
        raise SnapshotError(f"{where}: quality {quality[0]!r} is not one of {[QUALITY_USABLE, *QUALITY_EXCLUDE]}")
    if quality[0] != QUALITY_USABLE:
        return {p: "cannot_tell" for p in PATTERNS}
    ticked = _choices(result, LS_PATTERNS) or []
    unknown = sorted(set(ticked) - set(PATTERNS))
    if unknown:
        raise SnapshotError(f"{where}: unknown pattern(s) {unknown}; the choices must be {list(PATTERNS)} "
                            "(labeling/ls/configs/clip_choices.xml)")
    return {p: "present" if p in ticked else "absent" for p in PATTERNS}


def parse_adjudication(tasks: list[dict], snapshot: str) -> pd.DataFrame:
    """Every non-cancelled annotation of one adjudication pull as decision rows (model_shown = 0: the
    adjudication project gets no predictions, labeling/ls/push.py, so its reviewers decide without the model).

    Returns reviews.COLUMNS plus `snapshot` (one row per annotation and pattern; `id` is the annotation id).
    """
    rows = []
    missing = "this is not an adjudication pull (timeline pulls belong in data/annotations/)"
    for _, data, ann, reviewer, where in kept_annotations(tasks, snapshot, "clip_id", missing):
        when = str(ann.get("updated_at") or ann.get("created_at") or "")
        for pattern, decision in annotation_decisions(ann.get("result") or [], where).items():
            rows.append((ann.get("id"), reviewer, when, str(data["video_id"]), str(data["clip_id"]), pattern,
                         decision, f"{SOURCE} {snapshot}", SOURCE, 0, snapshot))  # model_shown 0: see below
    return pd.DataFrame.from_records(rows, columns=[*COLUMNS, "snapshot"])


def read_adjudications(folder: Path, mode: str = "newest") -> pd.DataFrame:
    """Each reviewer's latest Label Studio decision per clip and pattern (reviews.COLUMNS); empty when the
    folder is absent or holds no pull. `mode` is labels.snapshots (newest | all)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    tasks = {f.name: load_snapshot(f) for f in files}
    names = select_snapshots({name: snapshot_source(t) for name, t in tasks.items()}, mode)
    parsed = [parse_adjudication(tasks[name], name) for name in names]
    if not parsed or all(p.empty for p in parsed):
        return empty()
    rows = pd.concat(parsed, ignore_index=True)
    rank = {name: i for i, name in enumerate(names)}  # file names start with their UTC stamp: name order is time
    rows = rows.assign(_rank=rows["snapshot"].map(rank), _id=pd.to_numeric(rows["id"], errors="coerce"),
                       _time=pd.to_datetime(rows["timestamp"], utc=True, errors="coerce", format="ISO8601"))
    rows = rows.sort_values(["_rank", "_time", "_id"], na_position="first", kind="stable")
    latest = rows.drop_duplicates(["reviewer", "clip_id", "pattern"], keep="last")
    return latest[list(COLUMNS)].astype({"id": "int64", "model_shown": "int64"}).reset_index(drop=True)


def merge_latest(app_latest: pd.DataFrame, ls_latest: pd.DataFrame) -> pd.DataFrame:
    """One decision per reviewer, clip and pattern from both sources (module doc), sorted like
    reviews.latest_decisions. Both inputs hold at most one row per reviewer, clip and pattern."""
    if ls_latest.empty:
        return app_latest
    both = pd.concat([ls_latest.assign(_source=0), app_latest.assign(_source=1)], ignore_index=True)
    both["_time"] = pd.to_datetime(both["timestamp"], utc=True, errors="coerce", format="ISO8601")
    both = both.sort_values(["_time", "_source"], na_position="first", kind="stable")
    out = both.drop_duplicates(["reviewer", "clip_id", "pattern"], keep="last")
    out = out.sort_values(["clip_id", "pattern", "reviewer"], kind="stable")
    return out[list(COLUMNS)].reset_index(drop=True)
