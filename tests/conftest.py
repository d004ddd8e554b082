"""Shared fixtures: where the real external recordings are, and hermetic DVC settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"


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
