"""The Label Studio projects of one reading round, and how overlap works in Community.

Label Studio Community has no task assignment, no per-project membership and no gold/honeypot
feature (all Enterprise). luskit gets the reading design from what Community does have:

- `luskit <round> development`: every development video, `maximum_annotations` = overlap
  (default 2). Community's queue ("Label All Tasks") hands a task to different readers until it
  has that many annotations and never hands a reader the same task twice.
- `luskit <round> temporal`: the temporally separated videos, `maximum_annotations` = 1, for the
  senior reader only (Community cannot restrict who opens a project: by convention, and `pull`
  reports annotations per reader per project so a wrong reader shows).
- gold: a fixed, hash-chosen fraction of the development videos that have reference labels
  (data/reference/) get per-task overlap = the number of development readers, so every reader
  reads them, and a copy of each goes into the senior's temporal project. Task `meta.luskit`
  says which tasks are gold.
- `luskit <round> adjudication` (optional, `init --adjudication`): clip-level multi-label Choices.

A new round (`--round`) is a new set of projects, e.g. a second read after a washout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TIMELINE_XML = CONFIG_DIR / "timeline.xml"
CLIP_CHOICES_XML = CONFIG_DIR / "clip_choices.xml"

DEVELOPMENT, TEMPORAL, ADJUDICATION = "development", "temporal", "adjudication"
TIMELINE_ROLES = (DEVELOPMENT, TEMPORAL)  # the projects whose export is an annotation snapshot
DEFAULT_ROUND = "round-1"

_DESCRIPTIONS = {
    DEVELOPMENT: "Development videos. Use 'Label All Tasks': each video goes to {overlap} different readers "
                 "(gold videos to every reader). Mark the frames where each pattern is visible.",
    TEMPORAL: "Temporally separated videos: SENIOR READER ONLY. Use 'Label All Tasks'.",
    ADJUDICATION: "Clip-level adjudication: tick every pattern visible in the marked frames.",
}


@dataclass(frozen=True)
class ProjectSpec:
    """What `init` creates for one role of a round."""

    role: str
    title: str
    config: Path
    maximum_annotations: int
    description: str

    def label_config(self) -> str:
        return self.config.read_text()


def project_title(round_name: str, role: str) -> str:
    return f"luskit {round_name} {role}"


def round_specs(round_name: str = DEFAULT_ROUND, overlap: int = 2, adjudication: bool = False) -> list[ProjectSpec]:
    """The projects of a round: development and temporal, plus adjudication when asked for."""
    if overlap < 1:
        raise ValueError(f"overlap must be at least 1, got {overlap}")
    if not round_name or any(c in round_name for c in "/\\\n"):
        raise ValueError(f"bad round name {round_name!r}: use letters, digits and dashes")
    specs = [
        ProjectSpec(DEVELOPMENT, project_title(round_name, DEVELOPMENT), TIMELINE_XML, overlap,
                    _DESCRIPTIONS[DEVELOPMENT].format(overlap=overlap)),
        ProjectSpec(TEMPORAL, project_title(round_name, TEMPORAL), TIMELINE_XML, 1, _DESCRIPTIONS[TEMPORAL]),
    ]
    if adjudication:
        specs.append(ProjectSpec(ADJUDICATION, project_title(round_name, ADJUDICATION), CLIP_CHOICES_XML, 1,
                                 _DESCRIPTIONS[ADJUDICATION]))
    return specs


def init_round(ls, round_name: str, storage_path: str, overlap: int = 2, adjudication: bool = False) -> list[dict]:
    """Create or update the round's projects and attach the video storage; one summary dict per project."""
    from labeling.ls import client

    out = []
    for spec in round_specs(round_name, overlap, adjudication):
        project, action = client.ensure_project(
            ls, spec.title, spec.label_config(), maximum_annotations=spec.maximum_annotations,
            description=spec.description, show_overlap_first=spec.maximum_annotations > 1)
        storage_id = client.ensure_local_storage(ls, project.id, storage_path)
        out.append({"role": spec.role, "title": spec.title, "id": project.id, "action": action,
                    "maximum_annotations": project.maximum_annotations, "storage": storage_id})
    return out


def round_projects(ls, round_name: str, roles: tuple[str, ...]) -> dict[str, object]:
    """{role: project} for the roles that exist on the server; a missing role is an error."""
    from labeling.ls import client

    found = {}
    for role in roles:
        project = client.find_project(ls, project_title(round_name, role))
        if project is None:
            raise client.LabelStudioError(f"project {project_title(round_name, role)!r} not found: "
                                          f"run `luskit label init --round {round_name}` first")
        found[role] = project
    return found
