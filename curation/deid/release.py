"""A person's release of a withheld video: the append-only sign-off file data/reviews/deid/releases.jsonl.

De-identification fails closed: on real data a video in which the text search finds unexplained text is
withheld (not written to artifacts/videos, listed in report.json's `withheld`). A person looks at the
candidate output (`luskit deid show`), and when nothing in it identifies anyone, releases it
(`luskit deid release VIDEO_ID --reviewer NAME`). The stage then publishes that exact output on the next
`dvc repro`.

A sign-off is bound to the output's sha256, not to the video: when the output changes (new params, a new
mask, a new encoder) the old sign-off no longer matches and the video is withheld again until someone
looks again. The file is an input (data/, tracked by DVC, a dependency of the deidentify stage): one JSON
object per line,

    {"video_id": str, "output_sha256": 64 hex, "reviewer": str, "utc": ISO 8601 with Z, "note": str}

appended, never rewritten (luskit.atomic.append_line: one write under a lock, fsync). It holds
pseudonymous ids, hashes and the reviewer's words only: no text read from the video, no path.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from luskit.atomic import append_line

FIELDS = ("video_id", "output_sha256", "reviewer", "utc", "note")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VIDEO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")  # the pseudonyms ingest makes (P…_V…)


class ReleaseError(ValueError):
    """A sign-off that cannot be recorded (unknown video, bad hash, malformed file); the message says why."""


def load_releases(path: Path) -> dict[str, set[str]]:
    """video_id -> the output sha256s a person released. A missing file is {} (nothing released yet).

    Raises ReleaseError naming the line when the file is malformed (a hand edit): a broken sign-off file
    must stop the stage rather than silently release or withhold.
    """
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, set[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            video_id, sha = entry["video_id"], entry["output_sha256"]
        except (ValueError, TypeError, KeyError):
            raise ReleaseError(f"{path.name} line {number} is not a sign-off (JSON with video_id and "
                               "output_sha256): the file is append-only, restore it from DVC "
                               "(`dvc checkout data`) and record the release again") from None
        if not (isinstance(video_id, str) and isinstance(sha, str) and _SHA256.match(sha)):
            raise ReleaseError(f"{path.name} line {number}: video_id must be text and output_sha256 64 hex "
                               "digits: restore the file from DVC (`dvc checkout data`)")
        out.setdefault(video_id, set()).add(sha)
    return out


def released(releases: dict[str, set[str]], video_id: str, output_sha256: str) -> bool:
    """True when a person released exactly this output of this video."""
    return output_sha256 in releases.get(video_id, set())


def sign_off(video_id: str, output_sha256: str, reviewer: str, note: str = "", utc: str | None = None) -> dict:
    """One checked sign-off record (pure). Raises ReleaseError for a malformed id, hash or reviewer."""
    if not isinstance(video_id, str) or not _VIDEO_ID.match(video_id):
        raise ReleaseError(f"{video_id!r} is not a video id (letters, digits, _ and -)")
    if not isinstance(output_sha256, str) or not _SHA256.match(output_sha256):
        raise ReleaseError("output_sha256 must be 64 lower-case hex digits (the report's value)")
    reviewer = " ".join(str(reviewer).split())
    if not reviewer:
        raise ReleaseError("a release needs the reviewer's name (--reviewer NAME)")
    stamp = utc or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"video_id": video_id, "output_sha256": output_sha256, "reviewer": reviewer, "utc": stamp,
            "note": " ".join(str(note).split())}


def append_release(path: Path, video_id: str, output_sha256: str, reviewer: str, note: str = "") -> dict:
    """Append one sign-off to the file (created with its folder when missing); returns the record."""
    record = sign_off(video_id, output_sha256, reviewer, note)
    append_line(Path(path), json.dumps(record, sort_keys=True, ensure_ascii=True).encode("ascii"))
    return record


def withheld_entries(report: dict) -> dict[str, dict]:
    """video_id -> report.json `withheld` entry ({video_id, reason, output_sha256, ...}); {} when none."""
    entries = report.get("withheld") or []
    return {e["video_id"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("video_id"), str)}


def withheld_entry(report: dict, video_id: str) -> dict:
    """The report's withheld entry of `video_id`; ReleaseError (listing what is withheld) when there is none."""
    entries = withheld_entries(report)
    if video_id not in entries:
        listed = ", ".join(sorted(entries)[:10]) + (" ..." if len(entries) > 10 else "")
        raise ReleaseError(f"{video_id!r} is not withheld in artifacts/deid/report.json "
                           f"({'withheld: ' + listed if entries else 'nothing is withheld'}): "
                           "only a withheld video can be released; `luskit deid withheld` lists them")
    sha = entries[video_id].get("output_sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ReleaseError(f"the report's entry for {video_id} has no output_sha256 (its output was not "
                           "written, e.g. it failed): nothing to release; rerun `dvc repro deidentify`")
    return entries[video_id]
