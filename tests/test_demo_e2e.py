"""`make demo` from a fresh clone: regenerated data matches data.dvc, `dvc repro` runs, and again is a no-op.

Runs in a copy of the working tree (tracked and untracked-not-ignored files) with its own git repo, the
same venv, and the full default demo size. Slow by nature; CI runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _copy_worktree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=dest, check=True)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": str(cwd), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    env.pop("LUSKIT_PSEUDONYM_KEY", None)
    env.pop("LUSKIT_PSEUDONYM_KEY_FILE", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)


def test_fresh_clone_demo_twice(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    _copy_worktree(clone)
    assert not (clone / "data").exists()
    first = _run([sys.executable, "-m", "luskit.cli", "demo"], clone)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "generating the synthetic demo study" in first.stdout
    # The regenerated data/ is byte-for-byte what data.dvc records (DVC sees no change to it).
    status = _run([str(Path(sys.executable).parent / "dvc"), "status", "data.dvc"], clone)
    assert "up to date" in status.stdout, status.stdout + status.stderr
    assert subprocess.run(["git", "diff", "--quiet", "data.dvc"], cwd=clone).returncode == 0
    second = _run([sys.executable, "-m", "luskit.cli", "demo"], clone)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already holds files" in second.stdout
    assert "Running stage" not in second.stdout + second.stderr, "second dvc repro re-ran a stage"
    pipeline = _run([str(Path(sys.executable).parent / "dvc"), "status"], clone)
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
