"""The public POCUS dataset (Born et al., ../shared/external/pocus) as raw input of a standalone luskit project.

POCUS ships videos (GIF, MP4/MOV/AVI, MPEG-2) plus a `manifest.csv` with one row per clip: `file`
(relative to the dataset folder), `patient_group` (a coarse patient/source group: our patient), 0/1
pattern columns `a_lines`, `b_lines`, `consolidation`, `effusion` ("unknown" where the curators left
it open), the same patterns read from the free-text comments (`*_text`), a `label_text_conflicts`
flag, licence and source columns. `excluded.csv` lists clips that the dataset snapshot left out
(licence, size); they have no file and no manifest row, and are reported only.

The videos carry no header, so ingest takes identity from folders (ingest.path_pattern):
data/raw/<patient_group>/<DEVELOPMENT_DATE>/<file name>. Each entry is a symbolic link to the
source file: nothing is copied. The date is a fixed stand-in (the dataset has no acquisition
dates); with the POCUS params' far-future `temporal_cutoff` every video is development.

Pure planning functions on tables; `link_raw` is the only writer (it never replaces an entry).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pandas as pd

from luskit.schema import PATTERNS

MANIFEST = "manifest.csv"
EXCLUDED = "excluded.csv"
DEVELOPMENT_DATE = "20200101"  # stand-in acquisition date (YYYYMMDD) in data/raw/<group>/<date>/<file>
# The dataset's pattern columns -> ours (luskit.schema.PATTERNS order).
LABEL_COLUMNS = {"a_lines": "A-lines", "b_lines": "B-lines", "consolidation": "Consolidation",
                 "effusion": "Pleural effusion"}
TEXT_COLUMNS = {f"{col}_text": pattern for col, pattern in LABEL_COLUMNS.items()}
REQUIRED = ("file", "sha256", "patient_group", *LABEL_COLUMNS)
KEPT_COLUMNS = ("file", "sha256", "patient_group", "diagnosis_label", "probe", "container", "codec", "fps", "frames",
                "licence", "licence_url", "source_url", "label_text_conflicts")
_SAFE_GROUP = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # one folder level, no "..", no spaces


class PocusError(ValueError):
    """The POCUS folder or the workdir cannot be used as asked (the message names the file and the fix)."""


def parse_label(value: object) -> int | None:
    """One manifest label cell -> 1, 0, or None (unknown, empty or anything else: no label)."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip().lower()
    return {"1": 1, "1.0": 1, "0": 0, "0.0": 0}.get(text)


def read_manifest(source: Path) -> pd.DataFrame:
    """The dataset's manifest: KEPT_COLUMNS (strings), one Int8 column per pattern (<NA> = no label), and
    `text_<pattern>` Int8 columns from the free-text labels (<NA> where the text says nothing), sorted by file."""
    path = Path(source) / MANIFEST
    if not path.is_file():
        raise PocusError(f"{path} not found: point --source at the POCUS folder (../shared/external/pocus)")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise PocusError(f"{path}: column(s) {missing} missing; this is not the POCUS manifest luskit knows")
    out = pd.DataFrame({c: raw[c].astype(str).str.strip() if c in raw else "" for c in KEPT_COLUMNS})
    for col, pattern in LABEL_COLUMNS.items():
        out[pattern] = pd.array([parse_label(v) for v in raw[col]], dtype="Int8")
    for col, pattern in TEXT_COLUMNS.items():
        out[f"text_{pattern}"] = pd.array([parse_label(v) for v in raw[col]] if col in raw else [None] * len(raw),
                                          dtype="Int8")
    return out.sort_values("file", kind="stable").reset_index(drop=True)


def read_excluded(source: Path) -> pd.DataFrame:
    """excluded.csv (source_path, reason, licence) or an empty table when the dataset has none."""
    path = Path(source) / EXCLUDED
    if not path.is_file():
        return pd.DataFrame(columns=["source_path", "reason", "licence"], dtype=str)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def raw_relpath(group: str, file: str) -> str:
    """The entry under data/raw for one clip: <patient_group>/<DEVELOPMENT_DATE>/<file name>."""
    return f"{group}/{DEVELOPMENT_DATE}/{PurePosixPath(file).name}"


def plan_layout(manifest: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Manifest rows -> the link plan: file, raw_relpath, target (absolute source path), status, detail.

    status: "link" (goes into data/raw) or a reason it does not: "missing_file" (listed but absent),
    "bad_patient_group" (empty, or not usable as one folder name), "name_clash" (two clips of one group
    with the same file name). Checks only the file system's existence of targets (no reading).
    """
    source = Path(source).resolve()
    rows = []
    for rec in manifest.to_dict("records"):
        group, file = rec["patient_group"], rec["file"]
        status, detail = "link", ""
        if not re.fullmatch(_SAFE_GROUP, group):
            status, detail = "bad_patient_group", f"patient_group {group!r} is empty or not a plain folder name"
        elif not (source / file).is_file():
            status, detail = "missing_file", f"{file} is listed in {MANIFEST} but absent"
        rows.append({"file": file, "raw_relpath": raw_relpath(group, file) if status == "link" else "",
                     "target": str(source / file), "status": status, "detail": detail})
    plan = pd.DataFrame(rows, columns=["file", "raw_relpath", "target", "status", "detail"])
    clash = (plan["status"] == "link") & plan["raw_relpath"].duplicated(keep=False)
    plan.loc[clash, "status"] = "name_clash"
    plan.loc[clash, "detail"] = "two clips of one patient_group share a file name; rename one in the dataset"
    plan.loc[clash, "raw_relpath"] = ""
    return plan


def link_raw(plan: pd.DataFrame, raw_dir: Path) -> dict[str, int]:
    """Create the planned symbolic links under raw_dir; {"created": n, "kept": n}.

    An entry already linking to the same target is kept; any other existing entry (another target, a
    regular file) stops with PocusError before anything is created: data/ is never overwritten.
    """
    raw_dir = Path(raw_dir)
    todo = plan[plan["status"] == "link"]
    new = []
    for rel, target in zip(todo["raw_relpath"], todo["target"]):
        entry = raw_dir / rel
        if entry.is_symlink() and os.readlink(entry) == target:
            continue
        if entry.exists() or entry.is_symlink():
            raise PocusError(f"{entry} exists and is not a link to {target}; data/ is never overwritten: "
                             "use a fresh --workdir (or move that entry aside yourself)")
        new.append((entry, target))
    for entry, target in new:
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.symlink_to(target)
    return {"created": len(new), "kept": len(todo) - len(new)}


def stray_raw_entries(plan: pd.DataFrame, raw_dir: Path) -> list[str]:
    """Files under raw_dir that the plan does not name (left there by hand or by an older manifest)."""
    planned = set(plan.loc[plan["status"] == "link", "raw_relpath"])
    found = {p.relative_to(raw_dir).as_posix() for p in Path(raw_dir).rglob("*") if p.is_file() or p.is_symlink()}
    return sorted(found - planned)


def catalogue(manifest: pd.DataFrame, plan: pd.DataFrame, index: pd.DataFrame,
              quarantine: pd.DataFrame) -> pd.DataFrame:
    """One row per manifest clip with its pipeline identity and fate, for the label import and the report.

    index: ingest's videos.parquet (video_id, patient_id, n_frames, fps, source_sha256); quarantine:
    ingest's quarantine.parquet (source_sha256, reason). Joined on the file's sha256 (the manifest's
    `sha256` is the source file's). Returns the manifest columns plus video_id, patient_id, n_frames,
    fps_ingested, status ("ingested" | "quarantined: <reason>" | "not_linked: <plan status>" |
    "not_ingested: file differs from the manifest's sha256") and per pattern `conflict_<pattern>` (bool:
    label_text_conflicts names it).
    """
    idx = index.set_index("source_sha256")[["video_id", "patient_id", "n_frames", "fps"]]
    qua = quarantine.drop_duplicates("source_sha256").set_index("source_sha256")["reason"]
    status_of_plan = plan.set_index("file")["status"]
    out = manifest.copy()
    out["video_id"] = out["sha256"].map(idx["video_id"]).astype("string")
    out["patient_id"] = out["sha256"].map(idx["patient_id"]).astype("string")
    out["n_frames"] = out["sha256"].map(idx["n_frames"]).astype("Int64")
    out["fps_ingested"] = out["sha256"].map(idx["fps"]).astype("Float64")
    status = []
    for file, sha, vid in zip(out["file"], out["sha256"], out["video_id"]):
        linked = status_of_plan.get(file)
        status.append("ingested" if not pd.isna(vid) else f"not_linked: {linked}" if linked != "link"
                      else f"quarantined: {qua[sha]}" if sha in qua.index
                      else "not_ingested: file differs from the manifest's sha256")
    out["status"] = status
    named = out["label_text_conflicts"].fillna("").str.split("|").map(
        lambda parts: {p.split(":")[0].strip() for p in parts if p.strip()})
    for col, pattern in LABEL_COLUMNS.items():
        out[f"conflict_{pattern}"] = named.map(lambda s, c=col: c in s).astype(bool)
    return out


def label_coverage(cat: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per pattern among ingested clips: positive, negative, unknown, text_conflicts (video counts)."""
    ok = cat[cat["status"] == "ingested"]
    return {p: {"positive": int((ok[p] == 1).sum()), "negative": int((ok[p] == 0).sum()),
                "unknown": int(ok[p].isna().sum()), "text_conflicts": int(ok[f"conflict_{p}"].sum())}
            for p in PATTERNS}
