"""A private project folder for the review-app tests: real artifacts copied from the session's demo run.

Media (videos, clip caches) are hard-linked when possible: nothing here writes them, and every writer
in luskit replaces files atomically (a new inode), so the source is never touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
MEDIA = {".npy", ".mp4"}


def _link_or_copy(src: str, dst: str) -> str:
    if Path(src).suffix in MEDIA:
        try:
            os.link(src, dst)
            return dst
        except OSError:
            pass
    return shutil.copy2(src, dst)


def copy_project(source: Path, dest: Path, artifacts: bool = True) -> Path:
    """params.yaml (+ dvc.yaml), artifacts/ and the labels stage's inputs (data/annotations, data/reference).

    data/raw (PHI) and data/reviews are never copied: each test project starts with an empty store.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.yaml"):
        if (source / name).exists():
            shutil.copy2(source / name, dest / name)
    if artifacts:
        shutil.copytree(source / "artifacts", dest / "artifacts", copy_function=_link_or_copy, dirs_exist_ok=True)
    for sub in ("annotations", "reference"):
        if (source / "data" / sub).is_dir():
            shutil.copytree(source / "data" / sub, dest / "data" / sub, dirs_exist_ok=True)
    return dest
