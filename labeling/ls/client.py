"""A thin wrapper over label-studio-sdk 2.x: the handful of calls luskit makes, with clear errors.

Everything takes the SDK client (`connect()`), ids and plain dicts; nothing here reads files or
params. Task data carries pseudonymous ids only (video_id, patient_id, fps, the media URL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

# The full JSON export, with predictions and annotators expanded (README "Annotation snapshot format").
SNAPSHOT_OPTIONS = {"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": False}}
# Every annotation (submitted, skipped, ground truth): the snapshot must match the server's total.
ALL_ANNOTATIONS = {"usual": True, "ground_truth": True, "skipped": True}


class LabelStudioError(RuntimeError):
    """A Label Studio problem the user can fix; the message says how."""


@dataclass(frozen=True)
class Counts:
    """A project's server-side counters."""

    tasks: int
    annotations: int  # all, skipped and ground truth included
    predictions: int


def connect(url: str, token: str):
    """An authenticated SDK client; fails with advice when the server is down or the token refused."""
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    ls = LabelStudio(base_url=url, api_key=token, timeout=120)
    try:
        ls.users.whoami()
    except ApiError as err:
        if err.status_code == 401:
            raise LabelStudioError(
                f"{url} refused the API token (401). The token must be the one the server's data folder was "
                "first started with (LUSKIT_LS_TOKEN or .luskit/label-studio/credentials.json), and "
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true must have been set at that first start."
            ) from None
        raise LabelStudioError(f"{url} answered {err.status_code}: {err.body}") from None
    except Exception as err:  # httpx connection errors and the like
        raise LabelStudioError(f"cannot reach Label Studio at {url} ({type(err).__name__}): "
                               "start it with `luskit label serve` or set LUSKIT_LS_URL") from None
    return ls


# ---------------------------------------------------------------- projects


def find_project(ls, title: str):
    """The project with exactly this title, or None; several with the same title is an error."""
    found = [p for p in ls.projects.list(title=title) if p.title == title]
    if len(found) > 1:
        raise LabelStudioError(f"{len(found)} projects are titled {title!r} (ids {[p.id for p in found]}): "
                               "rename or delete the extra ones in Label Studio")
    return found[0] if found else None


def _same_config(a: str | None, b: str) -> bool:
    return (a or "").strip() == b.strip()


def ensure_project(ls, title: str, label_config: str, **settings) -> tuple[object, str]:
    """Find the project by title or create it; returns (project, 'created' | 'updated' | 'unchanged').

    An existing project gets the label config when the versioned XML changed; `settings` (e.g.
    maximum_annotations) apply only at creation, so that re-running never rearranges the overlap of
    tasks already in the queue (Label Studio resets per-task overlap when maximum_annotations changes).
    """
    from label_studio_sdk.core.api_error import ApiError

    project = find_project(ls, title)
    try:
        if project is None:
            return ls.projects.create(title=title, label_config=label_config, **settings), "created"
        if _same_config(project.label_config, label_config):
            return project, "unchanged"
        return ls.projects.update(id=project.id, label_config=label_config), "updated"
    except ApiError as err:
        raise LabelStudioError(f"project {title!r}: Label Studio rejected the label config ({err.status_code}): "
                               f"{json.dumps(err.body)[:600]}. A config change may not remove labels that "
                               "annotations already use.") from None


def project_counts(ls, project_id: int) -> Counts:
    p = ls.projects.get(id=project_id)
    return Counts(tasks=p.task_number or 0, annotations=p.total_annotations_number or 0,
                  predictions=p.total_predictions_number or 0)


# ---------------------------------------------------------------- storage and tasks


def ensure_local_storage(ls, project_id: int, path: str, title: str = "luskit videos") -> int:
    """Attach a local-files storage for `path` (absolute, inside the document root); returns its id.

    Only the attachment matters: Label Studio serves /data/local-files/?d=... only for paths inside
    a storage of the project. It is never synced: a sync would create one bare task per file,
    without video_id/fps/patient_id, duplicating the tasks `push` creates.
    """
    from label_studio_sdk.core.api_error import ApiError

    for storage in ls.import_storage.local.list(project=project_id):
        if storage.path.rstrip("/") == path.rstrip("/"):
            return storage.id
    try:
        return ls.import_storage.local.create(project=project_id, path=path, use_blob_urls=True, title=title,
                                              regex_filter=r".*\.mp4$").id
    except ApiError as err:
        raise LabelStudioError(f"local storage {path} refused ({err.status_code}): {json.dumps(err.body)[:400]}. "
                               "The path must exist and lie inside LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT "
                               "(the server's artifacts/ folder)") from None


def tasks_by_key(ls, project_id: int, key: str = "video_id") -> dict[str, dict]:
    """{task.data[key]: {'id', 'overlap', 'model_versions'}} for every task of the project.

    `key` is video_id for timeline projects and clip_id for adjudication. A key present twice
    (which push never does) is reported, not hidden.
    """
    out: dict[str, dict] = {}
    dupes = []
    for task in ls.tasks.list(project=project_id, fields="all", page_size=500):
        value = (task.data or {}).get(key)
        if value is None:
            continue
        if value in out:
            dupes.append(value)
        versions = {p.model_version for p in (task.predictions or [])}
        out[value] = {"id": task.id, "overlap": task.overlap, "model_versions": versions}
    if dupes:
        raise LabelStudioError(f"project {project_id} holds {len(dupes)} duplicated {key}(s), e.g. {dupes[0]}: "
                               "delete the extra tasks in the Data Manager before pushing again")
    return out


def import_tasks(ls, project_id: int, tasks: list[dict]) -> list[int]:
    """Import tasks (each {'data', 'meta'?, 'predictions'?}) in ONE request; returns the new task ids.

    Label Studio Community stores one request's tasks and their predictions in one database
    transaction: a crash leaves all of them or none.
    """
    from label_studio_sdk.core.api_error import ApiError

    try:
        resp = ls.projects.import_tasks(id=project_id, request=tasks, return_task_ids=True)
    except ApiError as err:
        raise LabelStudioError(f"import into project {project_id} refused ({err.status_code}): "
                               f"{json.dumps(err.body)[:600]}") from None
    return list(resp.task_ids or [])


def set_overlap(ls, task_id: int, overlap: int) -> None:
    """How many different annotators the Community queue hands this task to."""
    ls.tasks.update(id=str(task_id), overlap=overlap)


def create_prediction(ls, task_id: int, result: list[dict], score: float | None, model_version: str) -> int:
    return ls.predictions.create(task=task_id, result=result, score=score, model_version=model_version).id


# ---------------------------------------------------------------- users and annotations


def ensure_user(ls, email: str, first_name: str = "", last_name: str = "") -> int:
    """The id of the organization member with this email, created (without password) when missing."""
    for user in ls.users.list():
        if (user.email or "").lower() == email.lower():
            return user.id
    me = ls.users.whoami()
    return ls.users.create(username=email.split("@")[0], email=email, first_name=first_name,
                           last_name=last_name, active_organization=me.active_organization).id


def create_annotation(ls, task_id: int, result: list[dict], completed_by: int) -> int:
    """An annotation attributed to `completed_by` (Label Studio honours it for admin tokens)."""
    return ls.annotations.create(id=task_id, result=result, completed_by=completed_by).id


# ---------------------------------------------------------------- export


def export_snapshot(ls, project_id: int, timeout: float = 600.0) -> list[dict]:
    """A full JSON export (all tasks, all annotations, predictions, annotators expanded) as a list."""
    export = ls.projects.exports.create(id=project_id, title="luskit snapshot",
                                        serialization_options=SNAPSHOT_OPTIONS,
                                        annotation_filter_options=ALL_ANNOTATIONS)
    deadline = time.monotonic() + timeout
    while True:
        state = ls.projects.exports.get(id=project_id, export_pk=export.id)
        if state.status == "completed":
            break
        if state.status == "failed":
            raise LabelStudioError(f"export {export.id} of project {project_id} failed on the server: see its log")
        if time.monotonic() > deadline:
            raise LabelStudioError(f"export {export.id} of project {project_id} not ready after {timeout:.0f} s")
        time.sleep(0.5)
    raw = b"".join(ls.projects.exports.download(id=project_id, export_pk=export.id, export_type="JSON"))
    tasks = json.loads(raw)
    if not isinstance(tasks, list):
        raise LabelStudioError(f"export {export.id} of project {project_id} is not a JSON task list")
    return tasks


def count_snapshot(tasks: Iterable[dict]) -> Counts:
    tasks = list(tasks)
    return Counts(tasks=len(tasks), annotations=sum(len(t.get("annotations") or []) for t in tasks),
                  predictions=sum(len(t.get("predictions") or []) for t in tasks))
