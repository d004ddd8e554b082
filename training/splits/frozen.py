"""Stable roles: a frozen patient -> role assignment under data/splits/, and how many patients moved.

Design (README, "Splits"): roles are dealt once by the stratifier, then frozen by an explicit command,
`luskit split freeze`, which copies artifacts/splits/splits.parquet's patient -> role pairs to a NEW file
data/splits/roles-<UTC stamp>.parquet (never overwriting one; data/ is tracked by data.dvc). The split
stage reads the newest frozen file (split.previous: latest): every patient it names keeps its role
whatever the labels say, and only patients it lacks are placed by the stratifier. So a label change or a
review decision moves nobody; re-dealing happens only with split.reshuffle: true (a param: DVC reruns
the stage), and the stage reports how many patients moved against the frozen file either way.

No DVC cycle: the stage never reads its own output; the frozen file is an input under data/ that only a
person's command writes, and writing it cannot change the stage's result (it holds the roles the stage
just produced), so DVC need not track it as a dependency of the stage.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from luskit import paths
from luskit.atomic import write_parquet_atomic

FOLDER = paths.DATA / "splits"
PREFIX = "roles-"
LATEST = "latest"


def frozen_files(folder: Path = FOLDER) -> list[Path]:
    """data/splits/roles-*.parquet, oldest first (the names start with a UTC stamp)."""
    folder = Path(folder)
    return sorted(folder.glob(f"{PREFIX}*.parquet")) if folder.is_dir() else []


def resolve(previous: str, folder: Path = FOLDER) -> Path | None:
    """split.previous -> the frozen file to read: "latest" = the newest frozen file (None when there is none),
    "" = none, anything else = that path."""
    if previous == LATEST:
        found = frozen_files(folder)
        return found[-1] if found else None
    return Path(previous) if previous else None


def patient_roles(splits: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: patient_id, role (sorted by patient); a patient in two roles is an error."""
    roles = splits[["patient_id", "role"]].astype(str).drop_duplicates()
    twice = roles["patient_id"][roles["patient_id"].duplicated()]
    if len(twice):
        raise ValueError(f"{twice.nunique()} patient(s) have two roles: not a valid luskit split; rerun `luskit split`")
    return roles.sort_values("patient_id", kind="stable").reset_index(drop=True)


def freeze(splits_table: Path = paths.SPLITS / "splits.parquet", folder: Path = FOLDER,
           now: datetime | None = None) -> tuple[Path | None, str]:
    """Freeze the current roles: (the new file, or None when the newest frozen file already holds exactly these
    roles; a one-line message). Never overwrites: the name carries the UTC time to the second."""
    splits_table = Path(splits_table)
    if not splits_table.exists():
        raise FileNotFoundError(f"{splits_table} not found: run `luskit split` (or dvc repro split) first")
    roles = patient_roles(pd.read_parquet(splits_table, columns=["patient_id", "role"]))
    found = frozen_files(folder)
    if found and pd.read_parquet(found[-1]).equals(roles):
        return None, f"split freeze: {found[-1]} already holds these {len(roles)} patients' roles; nothing written"
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    target = Path(folder) / f"{PREFIX}{stamp}.parquet"
    if target.exists():
        raise FileExistsError(f"{target} exists (data/ is never overwritten): wait a second and freeze again")
    write_parquet_atomic(target, roles)
    before = pd.read_parquet(found[-1]) if found else roles.iloc[:0]
    moved = movement(dict(zip(before["patient_id"], before["role"])), roles)
    return target, (f"split freeze: {len(roles)} patients' roles -> {target} ({moved['moved']} differ from the "
                    f"previous frozen file); `dvc add data/splits` to version it. The split stage now keeps these roles "
                    "(split.previous: latest)")


def movement(previous: dict[str, str], roles: pd.DataFrame) -> dict:
    """How the roles now (patient_id, role rows) compare with a frozen assignment: {"frozen_patients", "kept",
    "moved", "moved_into_folds_from_test", "new", "gone"}."""
    now = dict(zip(roles["patient_id"].astype(str), roles["role"].astype(str)))
    common = set(previous) & set(now)
    moved = [p for p in common if previous[p] != now[p]]
    from_test = [p for p in moved if previous[p] in ("internal_test", "temporal") and now[p].startswith("fold")]
    return {"frozen_patients": len(previous), "kept": len(common) - len(moved), "moved": len(moved),
            "moved_into_folds_from_test": len(from_test), "new": len(set(now) - set(previous)),
            "gone": len(set(previous) - set(now))}
