"""Names shared by every stage: the four patterns, periods and label-config names.

The pattern order is the model's output order (the seed's target vector
[A-line, total B-line, consolidation, effusion]); never reorder it.
"""

PATTERNS: tuple[str, ...] = ("A-lines", "B-lines", "Consolidation", "Pleural effusion")
# Column-safe names, same order: prob_<slug>, label_<slug>, thr_<slug>, attention_<slug> in prediction tables.
PATTERN_SLUGS: tuple[str, ...] = ("a_lines", "b_lines", "consolidation", "pleural_effusion")
PERIODS: tuple[str, ...] = ("development", "temporal")

# Label Studio control names in labeling/ls/configs/timeline.xml; the synthetic export and
# `luskit label pull` both produce results under these names.
LS_VIDEO = "video"
LS_PATTERNS = "patterns"
LS_QUALITY = "quality"
QUALITY_USABLE = "usable"
QUALITY_EXCLUDE = ("exclude: blurred", "exclude: dark", "exclude: not lung", "exclude: other")

# Label Studio serves media from its local-files storage; task data points at it with this URL.
# The document root is the project's artifacts/ folder and the storage path artifacts/videos.
LS_LOCAL_FILES_PREFIX = "/data/local-files/?d="


def ls_video_url(video_id: str) -> str:
    """The task-data URL of a de-identified video as Label Studio's local-files storage serves it."""
    return f"{LS_LOCAL_FILES_PREFIX}videos/{video_id}.mp4"
