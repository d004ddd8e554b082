"""Pseudonymous identifiers: a keyed HMAC of the real identifiers.

`patient_id` and `video_id` are HMAC-SHA256 digests of the real Patient ID and of the SOP Instance
UID (or the file's sha256 for videos without a header), truncated. Without the key they cannot be
reversed or recomputed from a guessed MRN. The key comes from the environment (LUSKIT_PSEUDONYM_KEY)
or a key file outside git (LUSKIT_PSEUDONYM_KEY_FILE); both need at least MIN_KEY_BYTES.

DEMO_KEY is public and therefore protects nothing: with it, 100,000 candidate MRNs are checked
against a table in half a second. `resolve_key` hands it out only for the synthetic demo or when the
caller was explicitly told to (ingest.demo_key / --demo-key, for public data sets); on anything else
a missing key is an error that says how to make one. Which kind was used (demo | env | file) is
recorded next to the tables; the key itself never is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

from luskit.config import ConfigError

DEMO_KEY = b"luskit-public-DEMO-key--not-a-secret--never-use-for-real-patients"
KEY_ENV = "LUSKIT_PSEUDONYM_KEY"
KEY_FILE_ENV = "LUSKIT_PSEUDONYM_KEY_FILE"
KEY_ENV_PREFIX = "LUSKIT_PSEUDONYM_KEY"  # every variable naming or holding the key starts with this
MIN_KEY_BYTES = 16  # the same floor for a key from the environment and from a key file
HOW_TO_MAKE_A_KEY = (
    "make a key file outside git and point to it:\n"
    "    mkdir -p ~/.luskit && openssl rand -hex 32 > ~/.luskit/key && chmod 600 ~/.luskit/key\n"
    "    export LUSKIT_PSEUDONYM_KEY_FILE=~/.luskit/key\n"
    "Keep the file (and a backup) safe: the same key gives the same pseudonyms on every run; "
    "a lost key means new pseudonyms for everyone."
)


class PseudonymKeyError(ConfigError):
    """No usable key (the message says how to make one); the CLI prints it without a traceback."""


class DemoKeyWarning(UserWarning):
    """The public demo key is in use: pseudonyms protect nothing."""


def environment_key(env: Mapping[str, str] | None = None) -> tuple[bytes, str] | None:
    """(key, "env" | "file") from LUSKIT_PSEUDONYM_KEY, else LUSKIT_PSEUDONYM_KEY_FILE; None when neither is set.

    Raises PseudonymKeyError for a key file that is missing, or a key shorter than MIN_KEY_BYTES, or the
    public demo key passed off as a real one.
    """
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        key, kind, where = env[KEY_ENV].encode(), "env", f"${KEY_ENV}"  # as given: pseudonyms stay as before
    elif env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV]).expanduser()
        if not path.is_file():
            raise PseudonymKeyError(f"{KEY_FILE_ENV} points to {path}, which is not a file: {HOW_TO_MAKE_A_KEY}")
        key, kind, where = path.read_bytes().strip(), "file", str(path)
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the key in {where} is {len(key)} bytes, shorter than {MIN_KEY_BYTES}: "
                                f"{HOW_TO_MAKE_A_KEY}")
    if key == DEMO_KEY:
        raise PseudonymKeyError(f"the key in {where} is the PUBLIC demo key: {HOW_TO_MAKE_A_KEY}")
    return key, kind


def resolve_key(*, synthetic_demo: bool, demo_requested: bool,
                env: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """(key, kind) with kind "demo" | "env" | "file".

    synthetic_demo: the data is the generator's synthetic study (its reference truth is keyed by DEMO_KEY,
    so the demo key is used whatever the environment holds). demo_requested: the user chose the public
    key explicitly (public data sets only). Otherwise a real key is required.
    """
    if synthetic_demo:
        return DEMO_KEY, "demo"
    if demo_requested:
        warnings.warn("using the PUBLIC DEMO KEY as requested (ingest.demo_key / --demo-key): pseudonyms protect "
                      "nothing; only for public or synthetic data, never for real patients.", DemoKeyWarning,
                      stacklevel=2)
        return DEMO_KEY, "demo"
    found = environment_key(env)
    if found is None:
        raise PseudonymKeyError(f"no pseudonymisation key ({KEY_ENV} or {KEY_FILE_ENV} is not set) and this is "
                                f"not the synthetic demo, so the public demo key is not used; {HOW_TO_MAKE_A_KEY}")
    return found


def without_key(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` without LUSKIT_PSEUDONYM_KEY* (for servers and other child processes: they never need it)."""
    return {k: v for k, v in env.items() if not k.upper().startswith(KEY_ENV_PREFIX)}


def _digest(key: bytes, kind: str, value: str, length: int) -> str:
    mac = hmac.new(key, f"{kind}\x00{value.strip()}".encode(), hashlib.sha256)
    return mac.hexdigest()[:length]


def patient_pseudonym(key: bytes, patient_identifier: str) -> str:
    """'P' + 10 hex chars from the real patient identifier (e.g. DICOM PatientID)."""
    if not patient_identifier.strip():
        raise ValueError("empty patient identifier: cannot pseudonymise")
    return "P" + _digest(key, "patient", patient_identifier, 10)


def video_pseudonym(key: bytes, patient_id: str, video_identifier: str) -> str:
    """'<patient_id>_V' + 8 hex chars from the SOP Instance UID or 'sha256:<file hash>'."""
    return f"{patient_id}_V" + _digest(key, "video", video_identifier, 8)


def path_tag(key: bytes, relpath: str) -> str:
    """12 hex chars naming a file that could not be read (no content hash), from its path: PHI-free label."""
    return _digest(key, "path", relpath, 12)
