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
         model_shown: bool = True, app_version: str = APP_VERSION) -> list[int]:
    """Record each (pattern, decision, note) of `items` for one clip; returns the new row ids.

    model_shown: whether the page showed any model output for this clip (clip_logic.model_shown; True unless
    the caller knows it hid the model): a decision made with it never reaches a test label (blind_label).

    `reviewer` is the logged-in identity (or the name picked on loopback), never a form field.
    Each row is its own short transaction, so concurrent reviewers never block each other for long.
    """
    return [reviews.record_decision(reviewer, video_id, clip_id, pattern, decision, note=note,
                                    app_version=app_version, db=db, model_shown=model_shown)
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
    try:
        with closing(reviews.connect(db)) as conn:
            frame = pd.read_sql_query(reviews.select_query(conn), conn)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as err:
        raise ValueError(f"{db}: not a readable decision store ({err}); move it aside or restore it from DVC") from None
    return frame.astype({"id": "int64", "model_shown": "int64"})


def latest(db: Path) -> pd.DataFrame:
    """reviews.latest_decisions of the live store."""
    return reviews.latest_decisions(read_live(db))
