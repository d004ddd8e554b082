"""Which pseudonymisation key ingest uses, and the record of its kind next to the tables.

The public demo key is used only for the synthetic demo or on explicit request (ingest.demo_key,
`luskit ingest --demo-key`). The synthetic demo is recognised by the generator's marker, data/raw/
planted_phi.json, *and* by every patient identifier to be pseudonymised being one the generator
planted: a real export copied into a demo folder is not the demo, and stops for want of a key.

artifacts/index/pseudonym_key.json records {"kind": "demo" | "env" | "file", "why": ...}; never the key,
nor anything derived from it. `read_key_kind` gives deidentify (and its report) the kind.
"""

from __future__ import annotations

import json
from pathlib import Path

from luskit import paths
from luskit.atomic import write_bytes_atomic
from luskit.pseudonym import HOW_TO_MAKE_A_KEY, KEY_ENV, KEY_FILE_ENV, PseudonymKeyError, environment_key, resolve_key

DEMO_MARKER = paths.PLANTED_PHI.name  # planted_phi.json: written into raw/ by `luskit synth` only
KEY_RECORD = "pseudonym_key.json"


def demo_identities(raw_dir: Path) -> frozenset[str] | None:
    """The synthetic patients' identifiers the generator planted, or None without a (readable) marker."""
    marker = Path(raw_dir) / DEMO_MARKER
    try:
        ids = json.loads(marker.read_text())["ids"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    return frozenset(i.strip() for i in ids)


def check_key_before_scan(raw_dir: Path, demo_requested: bool) -> None:
    """Stop before the long scan when the key is bound to be missing or bad (not the demo, no key set)."""
    if demo_requested:
        return
    if demo_identities(raw_dir) is None:
        resolve_key(synthetic_demo=False, demo_requested=False)  # raises with how to make a key
    else:
        environment_key()  # a key that is set must be valid even where the demo may not need it


def choose_key(identities: list[str], demo_ids: frozenset[str] | None, demo_requested: bool,
               requested_by: str) -> tuple[bytes, dict]:
    """(key, record) for the patient identifiers about to be pseudonymised (PHI: memory only)."""
    synthetic = demo_ids is not None and all(i.strip() in demo_ids for i in identities)
    if demo_ids is not None and not synthetic and not demo_requested and environment_key() is None:
        foreign = sum(i.strip() not in demo_ids for i in identities)
        raise PseudonymKeyError(
            f"data/raw holds the synthetic demo's marker ({DEMO_MARKER}) but {foreign} of {len(identities)} files "
            "have patient identifiers the generator did not make, so this is not the demo and the public demo key "
            f"is not used. If this is real data, remove the marker and {HOW_TO_MAKE_A_KEY}")
    key, kind = resolve_key(synthetic_demo=synthetic, demo_requested=demo_requested)
    why = {"demo": "synthetic demo data" if synthetic else requested_by, "env": f"${KEY_ENV}",
           "file": f"${KEY_FILE_ENV}"}[kind]
    return key, {"kind": kind, "why": why}


def write_key_record(out_dir: Path, record: dict) -> Path:
    return write_bytes_atomic(Path(out_dir) / KEY_RECORD, (json.dumps(record, sort_keys=True) + "\n").encode())


def read_key_kind(index_dir: Path = paths.INDEX) -> str | None:
    """"demo" | "env" | "file" as ingest recorded it, or None for an index written before the record existed."""
    try:
        kind = json.loads((Path(index_dir) / KEY_RECORD).read_text())["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return kind if kind in ("demo", "env", "file") else None
