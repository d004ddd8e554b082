"""`make demo` from a fresh clone: regenerated data matches data.dvc and raw.dvc, `dvc repro` runs, and again is a no-op.

Uses the session's `demo_project` (tests/conftest.py): a copy of the working tree with its own git repo, the
same venv, and the full default demo size. Slow by nature; CI runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_in

pytestmark = pytest.mark.slow


def test_fresh_clone_demo_twice(demo_project):
    clone = demo_project.path
    first = demo_project
    assert "generating the synthetic demo study" in first.stdout
    dvc = str(Path(sys.executable).parent / "dvc")
    # The regenerated data/ is byte-for-byte what data.dvc and raw.dvc record (DVC sees no change to it).
    status = run_in([dvc, "status", "data.dvc", "raw.dvc"], clone)
    assert "up to date" in status.stdout, status.stdout + status.stderr
    assert subprocess.run(["git", "diff", "--quiet", "data.dvc", "raw.dvc"], cwd=clone).returncode == 0
    second = run_in([sys.executable, "-m", "luskit.cli", "demo"], clone)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already holds files" in second.stdout
    assert "Running stage" not in second.stdout + second.stderr, "second dvc repro re-ran a stage"
    pipeline = run_in([dvc, "status"], clone)
    assert "up to date" in pipeline.stdout, pipeline.stdout
    assert (clone / "artifacts" / "clips" / "manifest.parquet").is_file()
    assert_no_planted_phi(clone, first.stdout + first.stderr + second.stdout + second.stderr)


TEXT_SUFFIXES = {".json", ".parquet", ".csv", ".md", ".txt", ".yaml", ".lock", ".log", ".html", ".sqlite"}


def assert_no_planted_phi(clone: Path, logs: str) -> None:
    """No planted PHI string in artifacts/, in dvc.lock, or in anything the demo printed.

    Binary media (MP4, NPY, PNG) are searched for the long strings only: a 3-letter name matches random
    compressed bytes by chance, and their pixels are checked by the deidentify stage's OCR proof instead.
    """
    import json

    planted = json.loads((clone / "data" / "raw" / "planted_phi.json").read_text())
    needles = sorted({s for group in planted.values() for s in group if len(s) >= 4})
    assert needles, "nothing planted?"
    for needle in needles:
        assert needle not in logs, f"planted PHI ({len(needle)} chars) printed by the demo"
    files = [p for p in (clone / "artifacts").rglob("*") if p.is_file()] + [clone / "dvc.lock"]
    for path in files:
        data = path.read_bytes()
        text_like = path.suffix in TEXT_SUFFIXES
        for needle in needles:
            if text_like or len(needle) >= 8:
                assert needle.encode() not in data, f"planted PHI found in {path.relative_to(clone)}"
