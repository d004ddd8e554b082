"""Helpers for the review app tests: AppTest driving, the `luskit` CLI, a background `luskit review`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.labeling_app.project import REPO

APP = REPO / "labeling" / "app" / "app.py"
REVIEWER = "senior@demo.luskit.invalid"
ENV_KEYS = ("LUSKIT_PROJECT", "LUSKIT_REVIEW_PARAMS", "LUSKIT_REVIEW_AUTH_FILE")


def app_test():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=90)


def signed_in(reviewer: str = REVIEWER):
    """An AppTest past the loopback sign-in (name picked), on the Queue page."""
    at = app_test().run()
    at.selectbox(key="pick_reviewer").select(reviewer).run()
    at.button(key="start").click().run()
    return at


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def luskit(*args: str, cwd: Path, env: dict | None = None, stdin: str | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `luskit ...` (this interpreter's) in `cwd`."""
    return subprocess.run([sys.executable, "-m", "luskit.cli", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("STREAMLIT_")}
    env.update(extra)
    return env


def start_review(project: Path, port: int, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`luskit review --port P` in the background (its process becomes Streamlit's: terminate() stops it)."""
    log = open(project / f"review-{port}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "luskit.cli", "review", "--port", str(port), *args],
                            cwd=project, env=env or clean_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"luskit review exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url}/_stcore/health did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """Terminate the server we started (its own process group), then make sure it is gone."""
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
