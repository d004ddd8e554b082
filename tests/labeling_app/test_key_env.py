"""The pseudonymisation key never reaches the Streamlit review app: `luskit review` is started for real with
the key in its environment, and the serving process's /proc/<pid>/environ is read once it answers."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.labeling_app.helpers import clean_env, free_port, start_review, stop, wait_healthy
from tests.labeling_app.project import REPO

CANARY_KEY = "canary-pseudonym-key-0123456789abcdef"


def test_review_app_never_gets_the_pseudonym_key(tmp_path):
    project = tmp_path / "project"
    (project / "artifacts").mkdir(parents=True)  # nothing to review: the server starts all the same
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    port = free_port()
    env = clean_env(LUSKIT_PSEUDONYM_KEY=CANARY_KEY, LUSKIT_PSEUDONYM_KEY_FILE=str(tmp_path / "key"),
                    PYTHONPATH=str(REPO))
    proc = start_review(project, port, env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        # `luskit review` replaces itself with Streamlit (execve): the same pid is the server.
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        stop(proc)
    assert b"streamlit" in cmdline and b"LUSKIT_PROJECT=" in environ
    assert b"LUSKIT_PSEUDONYM_KEY" not in environ and CANARY_KEY.encode() not in environ
