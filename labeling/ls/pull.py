"""`luskit label pull`: a dated, verified full-JSON snapshot of a round into data/annotations/.

The snapshot is Label Studio's full JSON export (predictions and `completed_by` expanded, skipped
annotations included) of the round's development and temporal projects, concatenated into one
list of tasks (each task keeps its `project` id and `meta.luskit`). It is checked against the
server's own task, annotation and prediction counts, read before and after the export; any
mismatch fails loudly and nothing is written. The file is written atomically and never
overwrites: data/annotations/<UTC timestamp>.json (luskit.atomic.write_bytes_new).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from luskit.atomic import write_bytes_new
from labeling.ls.projects import TIMELINE_ROLES


class SnapshotMismatch(RuntimeError):
    """The export does not hold what the server says it has."""


def snapshot_bytes(tasks: list[dict]) -> bytes:
    return (json.dumps(tasks, ensure_ascii=False, indent=1) + "\n").encode()


def export_verified(ls, project_id: int, retries: int = 2) -> list[dict]:
    """A full export of one project whose counts equal the server's (retried if people were labelling)."""
    from labeling.ls import client

    for attempt in range(retries + 1):
        before = client.project_counts(ls, project_id)
        tasks = client.export_snapshot(ls, project_id)
        after = client.project_counts(ls, project_id)
        got = client.count_snapshot(tasks)
        if got == before == after:
            return tasks
        if before != after and attempt < retries:  # annotations arrived meanwhile: export again
            time.sleep(1.0)
            continue
        raise SnapshotMismatch(
            f"project {project_id}: the export holds {got.tasks} tasks / {got.annotations} annotations / "
            f"{got.predictions} predictions but the server reports {after.tasks} / {after.annotations} / "
            f"{after.predictions}. Nothing was written; pull again (if it persists, check the server log)."
        )
    raise AssertionError("unreachable")


def readers_per_project(tasks: list[dict]) -> dict[int, Counter]:
    """{project id: Counter(annotator email)}: who labelled where (a wrong reader shows up here)."""
    out: dict[int, Counter] = {}
    for task in tasks:
        for ann in task.get("annotations") or []:
            who = ann.get("completed_by")
            email = who.get("email") if isinstance(who, dict) else str(who)
            out.setdefault(task.get("project"), Counter())[email] += 1
    return out


def _stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def write_snapshot(tasks: list[dict], out_dir: Path, suffix: str = "") -> Path:
    """data/annotations/<UTC>.json, atomically, never overwriting (waits a second on a name clash)."""
    data = snapshot_bytes(tasks)
    for _ in range(5):
        path = Path(out_dir) / f"{_stamp()}{suffix}.json"
        try:
            write_bytes_new(path, data)
            return path
        except FileExistsError:
            time.sleep(1.0)
    raise FileExistsError(f"could not find a free snapshot name in {out_dir}")


def pull_round(ls, round_name: str, out_dir: Path, roles: tuple[str, ...] = TIMELINE_ROLES,
               suffix: str = "") -> tuple[Path, dict]:
    """Export, verify and write one snapshot of the round's projects; returns (path, summary)."""
    from labeling.ls.projects import round_projects

    projects = round_projects(ls, round_name, roles)
    tasks: list[dict] = []
    per_role = {}
    for role, project in projects.items():
        exported = export_verified(ls, project.id)
        per_role[role] = {"project": project.id, "tasks": len(exported),
                          "annotations": sum(len(t.get("annotations") or []) for t in exported)}
        tasks.extend(exported)
    path = write_snapshot(tasks, out_dir, suffix)
    written = json.loads(Path(path).read_text())  # what is on disk is what was verified
    if len(written) != len(tasks):
        raise SnapshotMismatch(f"{path} holds {len(written)} tasks, expected {len(tasks)}")
    return path, {"roles": per_role, "readers": readers_per_project(tasks)}
