"""Shared fixtures: the real external recordings, hermetic DVC settings, and one full demo run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"


def pytest_collection_modifyitems(items):
    """A test that needs the session's full demo run (directly or through app fixtures) is slow: the run
    takes ~9 minutes, so `-m "not slow"` stays a quick loop."""
    for item in items:
        if "demo_project" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def external_dir() -> Path:
    """../shared/external (real recordings nobody here made); tests using it skip when it is absent."""
    if not EXTERNAL.is_dir():
        pytest.skip("../shared/external is absent")
    return EXTERNAL


@pytest.fixture(autouse=True, scope="session")
def _hermetic_dvc(tmp_path_factory):
    """DVC must not phone home or write its site cache to /var/tmp during tests."""
    cfg = tmp_path_factory.mktemp("dvc-config")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ["DVC_SITE_CACHE_DIR"] = str(cfg / "site")
    os.environ["DVC_GLOBAL_CONFIG_DIR"] = str(cfg / "global")
    yield


@dataclass(frozen=True)
class DemoRun:
    """A copy of the working tree on which `luskit demo` ran the whole pipeline once."""

    path: Path
    stdout: str
    stderr: str


def copy_worktree(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files of this checkout into `dest`, committed as a new git repo."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=dest, check=True)


def run_in(args: list[str], cwd: Path, timeout: float = 1800, env_extra: dict | None = None
           ) -> subprocess.CompletedProcess:
    """Run a command the way `make` would: this venv's bin first on PATH, no pseudonym key (demo key)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": str(cwd), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", **(env_extra or {})}
    for key in ("LUSKIT_PSEUDONYM_KEY", "LUSKIT_PSEUDONYM_KEY_FILE", "OMP_NUM_THREADS", "OMP_THREAD_LIMIT"):
        env.pop(key, None)  # thread limits a developer exports for quick test loops would throttle the demo
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> DemoRun:
    """`luskit demo` at full demo size in a fresh copy of the working tree (once per test session).

    Treat it as read-only: tests that write (decisions, stage reruns) work on a private copy
    (tests/labeling_app/project.py), so test order never matters.
    """
    clone = tmp_path_factory.mktemp("demo") / "clone"
    clone.mkdir()
    copy_worktree(clone)
    assert not (clone / "data").exists()
    (clone / ".luskit").mkdir()  # every stage appends the params keys it reads (tests/luskit/test_dvc_params.py)
    reads = {"LUSKIT_PARAMS_READS": str(clone / ".luskit" / "params-reads.tsv")}
    first = run_in([sys.executable, "-m", "luskit.cli", "demo"], clone, env_extra=reads)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return DemoRun(clone, first.stdout, first.stderr)

