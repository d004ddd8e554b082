"""Fixtures for the review app: project folders, the AppTest driver signed in, a Streamlit server.

Everything builds on the session's `demo_project` (tests/conftest.py: a project on which `luskit demo`
ran the whole pipeline, real evaluation outputs and review queue included); tests work on private copies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.labeling_app.project import copy_project
from tests.labeling_app.helpers import ENV_KEYS


@pytest.fixture(scope="session")
def app_project(demo_project, tmp_path_factory) -> Path:
    """A private copy of the demo project for page tests (they write decisions)."""
    return copy_project(demo_project.path, tmp_path_factory.mktemp("app") / "project")


@pytest.fixture(scope="session")
def bare_project(demo_project, tmp_path_factory) -> Path:
    """The demo project before any model: no models/, eval/ or review/ (pages must say so, not crash)."""
    dest = copy_project(demo_project.path, tmp_path_factory.mktemp("bare") / "project")
    for sub in ("models", "eval", "review"):
        shutil.rmtree(dest / "artifacts" / sub, ignore_errors=True)
    return dest


@pytest.fixture
def fresh_store(app_project):
    """app_project with an empty decision store (each test counts its own decisions)."""
    shutil.rmtree(app_project / "data" / "reviews", ignore_errors=True)
    return app_project


@pytest.fixture
def serve_as(monkeypatch):
    """serve_as(project, address='127.0.0.1', auth_file=None): the environment `luskit review` gives the app."""
    from streamlit import config

    old = config.get_option("server.address")

    def apply(project: Path, address: str | None = "127.0.0.1", auth_file: Path | None = None) -> Path:
        for key in ENV_KEYS:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("LUSKIT_PROJECT", str(project))
        if auth_file is not None:
            monkeypatch.setenv("LUSKIT_REVIEW_AUTH_FILE", str(auth_file))
        config.set_option("server.address", address)
        return project

    yield apply
    config.set_option("server.address", old)
