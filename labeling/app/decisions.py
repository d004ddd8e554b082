"""The app's write path into the decision store (labeling/reviews.py) and its live read (no Streamlit here).

Decisions are appended, never edited; each reviewer's latest per clip and pattern counts, and the
labels stage turns them into `adjudicated` consensus on the next `dvc repro`. "cannot tell" is stored
(the reviewer looked) but casts no vote, so the annotators' label stands (reviews.resolve_reviewers).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd

from labeling import reviews
from luskit import __version__

APP_VERSION = f"luskit-review {__version__}"


def save(db: Path, reviewer: str, video_id: str, clip_id: str, items: list[tuple[str, str, str]],
         app_version: str = APP_VERSION) -> list[int]:
    """Record each (pattern, decision, note) of `items` for one clip; returns the new row ids.

    `reviewer` is the logged-in identity (or the name picked on loopback), never a form field.
    Each row is its own short transaction, so concurrent reviewers never block each other for long.
    """
    return [reviews.record_decision(reviewer, video_id, clip_id, pattern, decision, note=note,
                                    app_version=app_version, db=db)
            for pattern, decision, note in items]


def read_live(db: Path) -> pd.DataFrame:
    """Every decision (reviews.COLUMNS) read through SQLite's WAL, so rows other reviewers are writing
    right now are seen consistently; empty (and nothing created) when the store does not exist yet.

    The pipeline's reader (reviews.read_decisions) opens the file immutable when its WAL is empty,
    which is right for a DVC input at rest but not for a file the app and other apps write to.
    """
    db = Path(db)
    if not db.exists():
        return reviews.read_decisions(db)
    query = f"SELECT {', '.join(reviews.COLUMNS)} FROM decisions ORDER BY id"
    try:
        with closing(reviews.connect(db)) as conn:
            frame = pd.read_sql_query(query, conn)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as err:
        raise ValueError(f"{db}: not a readable decision store ({err}); move it aside or restore it from DVC") from None
    return frame.astype({"id": "int64"})


def latest(db: Path) -> pd.DataFrame:
    """reviews.latest_decisions of the live store."""
    return reviews.latest_decisions(read_live(db))
