"""One REAL Label Studio server for the whole test session (labeling/ls/server.py).

It runs from the repository's .ls-venv (`make .ls-venv`) on a free loopback port, with its data in
a temporary folder and a temporary artifacts/ holding a few small frame-numbered H.264 videos and
artifacts/deid/videos.parquet. The first start runs migrations (~30-40 s); tests share the server
and keep apart by using their own reading round (project titles).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.labeling_ls.helpers import write_numbered_video

REPO = Path(__file__).resolve().parents[2]
LS_BIN = REPO / ".ls-venv" / "bin" / "label-studio"
CANARY_KEY = "canary-pseudonym-key-0123456789abcdef"

# (video_id, patient_id, period, fps, n_frames): pseudonymous ids in luskit's format.
VIDEOS = (
    ("P1a2b3c4d5e_V0f1e2d3c", "P1a2b3c4d5e", "development", 30, 48),
    ("P1a2b3c4d5e_V1b2c3d4e", "P1a2b3c4d5e", "development", 30, 40),
    ("P2b3c4d5e6f_V2c3d4e5f", "P2b3c4d5e6f", "development", 25, 36),
    ("P2b3c4d5e6f_V3d4e5f60", "P2b3c4d5e6f", "development", 30, 45),
    ("P3c4d5e6f70_V4e5f6071", "P3c4d5e6f70", "temporal", 30, 42),
)


@dataclass
class Harness:
    """The running server and what the tests need to talk to it."""

    cfg: object  # labeling.ls.server.ServerConfig
    creds: object  # labeling.ls.server.Credentials
    artifacts: Path
    videos: pd.DataFrame

    @property
    def url(self) -> str:
        return self.cfg.url

    def connect(self):
        from labeling.ls import client

        return client.connect(self.url, self.creds.token)

    def pid(self) -> int:
        from labeling.ls import server

        return server.read_pid(self.cfg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_artifacts(root: Path) -> pd.DataFrame:
    for video_id, _, _, fps, n in VIDEOS:
        write_numbered_video(root / "videos" / f"{video_id}.mp4", n, fps)
    table = pd.DataFrame(VIDEOS, columns=["video_id", "patient_id", "period", "fps", "n_frames"])
    table["fps"] = table["fps"].astype("float64")
    (root / "deid").mkdir(parents=True, exist_ok=True)
    table.to_parquet(root / "deid" / "videos.parquet", index=False)
    return table


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory) -> Harness:
    """Start Label Studio once (real server, loopback, temp data) and stop it after the session."""
    from labeling.ls import server

    if not LS_BIN.exists():
        pytest.fail(f"{LS_BIN} missing: run `make .ls-venv` (make test does it)")
    saved = {k: os.environ.pop(k) for k in (server.ENV_EMAIL, server.ENV_PASSWORD, server.ENV_TOKEN)
             if k in os.environ}  # the developer's own credentials must not leak into the test server
    base = tmp_path_factory.mktemp("label-studio")
    artifacts = base / "artifacts"
    videos = make_artifacts(artifacts)
    cfg = server.ServerConfig(home=base / "ls-home", artifacts=artifacts, ls_bin=LS_BIN, port=free_port())
    creds = server.load_credentials(cfg)
    # A pseudonymisation key in our environment while the server starts: test_key_env.py checks it stays out.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LUSKIT_PSEUDONYM_KEY", CANARY_KEY)
        mp.setenv("LUSKIT_PSEUDONYM_KEY_FILE", "/nonexistent/canary-key-file")
        server.start(cfg, creds, timeout=300)
    try:
        yield Harness(cfg=cfg, creds=creds, artifacts=artifacts, videos=videos)
    finally:
        server.stop(cfg)
        os.environ.update(saved)
