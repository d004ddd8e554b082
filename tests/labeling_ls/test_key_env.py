"""The pseudonymisation key never reaches the Label Studio process (read from the real server's environ)."""

from __future__ import annotations

from pathlib import Path

from labeling.ls import server
from tests.labeling_ls.conftest import CANARY_KEY


def test_label_studio_never_gets_the_pseudonym_key(ls_server):
    """The session's server was started with LUSKIT_PSEUDONYM_KEY(_FILE) set in our environment (conftest)."""
    environ = Path(f"/proc/{ls_server.pid()}/environ").read_bytes()
    assert b"LUSKIT_PSEUDONYM_KEY" not in environ and CANARY_KEY.encode() not in environ
    assert b"LABEL_STUDIO_BASE_DATA_DIR=" in environ  # the real server's environment, not an empty read
    base = {"PATH": "/bin", "LUSKIT_PSEUDONYM_KEY": CANARY_KEY, "LUSKIT_PSEUDONYM_KEY_FILE": "/k"}
    child = server.child_env(ls_server.cfg, ls_server.creds, base=base)
    assert not [k for k in child if k.startswith("LUSKIT_PSEUDONYM")]
