"""Pseudonymous identifiers: a keyed HMAC of the real identifiers.

`patient_id` and `video_id` are HMAC-SHA256 digests of the real Patient ID and of the SOP Instance
UID (or the file's sha256 for videos without a header), truncated. Without the key they cannot be
reversed or recomputed from a guessed MRN. The key comes from the environment (LUSKIT_PSEUDONYM_KEY)
or a key file outside git (LUSKIT_PSEUDONYM_KEY_FILE). The synthetic demo uses DEMO_KEY, which is
public and therefore gives no protection: never use it for real patients.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import warnings
from pathlib import Path

DEMO_KEY = b"luskit-public-DEMO-key--not-a-secret--never-use-for-real-patients"
KEY_ENV = "LUSKIT_PSEUDONYM_KEY"
KEY_FILE_ENV = "LUSKIT_PSEUDONYM_KEY_FILE"


class DemoKeyWarning(UserWarning):
    """The public demo key is in use: pseudonyms protect nothing."""


def load_key() -> tuple[bytes, bool]:
    """Return (key, is_demo). Environment first, then the key file; the demo key (with a warning) last."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode(), False
    if os.environ.get(KEY_FILE_ENV):
        path = Path(os.environ[KEY_FILE_ENV]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{KEY_FILE_ENV} points to {path}, which is not a file: create it or unset it")
        key = path.read_bytes().strip()
        if len(key) < 16:
            raise ValueError(f"the key in {path} is shorter than 16 bytes: use e.g. `openssl rand -hex 32`")
        return key, False
    warnings.warn(
        f"no pseudonymisation key set ({KEY_ENV} or {KEY_FILE_ENV}): using the PUBLIC DEMO KEY. "
        "Fine for the synthetic demo, never for real patients.",
        DemoKeyWarning,
        stacklevel=2,
    )
    return DEMO_KEY, True


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
