"""Sign-offs of withheld videos (MINIMAL READER: helper deid-release writes the full module with the
`luskit deid release` command; this is only the interface the stage calls, to be merged with theirs).

data/reviews/deid/releases.jsonl is append-only, one JSON object a line:
{"video_id", "output_sha256", "reviewer", "utc", "note"}. A release binds to the sha256 of the output MP4
the stage would publish: a changed output needs a new sign-off.
"""

from __future__ import annotations

import json
from pathlib import Path

RELEASES = Path("deid") / "releases.jsonl"  # under data/reviews


def load_releases(reviews_dir: Path) -> frozenset[tuple[str, str]]:
    """{(video_id, output_sha256)} signed off in `reviews_dir`/deid/releases.jsonl (empty if none)."""
    path = Path(reviews_dir) / RELEASES
    if not path.exists():
        return frozenset()
    out = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.add((str(row["video_id"]), str(row["output_sha256"])))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{RELEASES} line {number} is not a release record: fix or remove that line") from None
    return frozenset(out)


def released(releases: frozenset[tuple[str, str]], video_id: str, output_sha256: str) -> bool:
    """Whether a person released exactly this output of this video."""
    return (video_id, output_sha256) in releases
