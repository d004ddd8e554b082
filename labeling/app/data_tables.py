"""The Data page's tables: cohort per role, quarantine reasons, de-identification headline (pure).

Nothing here may show a local path (quarantined inputs are named by their hash label only) or PHI
(only pseudonymous ids exist after ingest).
"""

from __future__ import annotations

import pandas as pd

from labeling.app.settings import ID_RE
from luskit.schema import PATTERNS

ROLE_ORDER = ("fold0", "fold1", "fold2", "fold3", "fold4", "internal_test", "temporal")
QUARANTINE_COLUMNS = ("file_label", "reason", "message", "duplicate_of")  # never a path column


def role_summary(splits: pd.DataFrame, consensus: pd.DataFrame | None) -> pd.DataFrame:
    """role, patients, videos, clips, and per pattern '<pos>/<labelled> (<pct>%)' (roles in ROLE_ORDER, then total)."""
    groups = [(r, splits[splits["role"] == r]) for r in ROLE_ORDER if (splits["role"] == r).any()]
    others = sorted(set(splits["role"]) - set(ROLE_ORDER))
    groups += [(r, splits[splits["role"] == r]) for r in others] + [("all", splits)]
    rows = []
    for role, part in groups:
        row = {"role": role, "patients": part["patient_id"].nunique(), "videos": part["video_id"].nunique(),
               "clips": part["clip_id"].nunique()}
        for pattern, (pos, n) in _positives(part, consensus).items():
            row[pattern] = f"{pos}/{n} ({100 * pos / n:.0f}%)" if n else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def _positives(part: pd.DataFrame, consensus: pd.DataFrame | None) -> dict[str, tuple[int, int]]:
    if consensus is None:
        return {}
    cons = consensus[consensus["clip_id"].isin(part["clip_id"])]
    out = {}
    for pattern in PATTERNS:
        labels = cons.loc[cons["pattern"] == pattern, "label"].dropna()
        out[pattern] = (int((labels == 1).sum()), int(len(labels)))
    return out


def prevalence_long(splits: pd.DataFrame, consensus: pd.DataFrame) -> pd.DataFrame:
    """role, pattern, prevalence (0-1), positives, labelled: for a grouped bar chart."""
    rows = []
    for role in [r for r in ROLE_ORDER if (splits["role"] == r).any()]:
        for pattern, (pos, n) in _positives(splits[splits["role"] == role], consensus).items():
            if n:
                rows.append((role, pattern, pos / n, pos, n))
    return pd.DataFrame(rows, columns=["role", "pattern", "prevalence", "positives", "labelled"])


def quarantine_view(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The quarantine table without anything path-like: hash label, reason, message, duplicate_of."""
    cols = [c for c in QUARANTINE_COLUMNS if c in quarantine.columns]
    return quarantine[cols].reset_index(drop=True)


def deid_headline(report: dict) -> dict[str, object]:
    """The numbers a reviewer checks first in artifacts/deid/report.json (missing keys are left out)."""
    keys = ("videos", "videos_indexed", "failed", "phi_findings", "planted_phi_found", "planted_phi_checked",
            "header_fields_outside_allowlist", "ocr_frames", "ocr_tokens_outside_fan", "ocr_tokens_inside_fan",
            "median_kept_fraction", "min_kept_fraction")
    out: dict[str, object] = {}
    for key in keys:
        if key in report:
            value = report[key]
            out[key] = len(value) if isinstance(value, list) else value
    return out


def deid_per_video(report: dict) -> pd.DataFrame:
    """video_id, action, kept_fraction, OCR token counts per video (empty if the report lacks per_video)."""
    rows = report.get("per_video") or []
    frame = pd.DataFrame(rows)
    keep = [c for c in ("video_id", "action", "kept_fraction", "ocr_tokens_inside_fan", "ocr_tokens_outside_fan")
            if c in frame.columns]
    return frame[keep] if keep else frame


def release_commands(video_id: str, reviewer: str) -> str:
    """The two commands a person runs for a withheld video: look at its output, then release it."""
    return (f"luskit deid show {video_id} --out /tmp/{video_id}.mp4\n"
            f"luskit deid release {video_id} --reviewer '{reviewer}' --note 'what you checked'")


def withheld_view(report: dict, releases: dict[str, set[str]]) -> pd.DataFrame:
    """video_id, reason, status per report.json `withheld` entry (in report order).

    status: "withheld" until a person released this exact output (its sha256 in `releases`, see
    curation/deid/release.py), then "released: publish with `dvc add data/reviews && dvc repro`".
    """
    rows = []
    for entry in report.get("withheld") or []:
        if not isinstance(entry, dict) or not ID_RE.match(str(entry.get("video_id"))):
            continue  # not an id ingest makes: never shown, never put into a command
        sha = entry.get("output_sha256")
        done = isinstance(sha, str) and sha in releases.get(entry["video_id"], set())
        rows.append({"video_id": entry["video_id"], "reason": str(entry.get("reason", "")),
                     "status": "released: publish with `dvc add data/reviews && dvc repro`" if done else "withheld"})
    return pd.DataFrame(rows, columns=["video_id", "reason", "status"])
