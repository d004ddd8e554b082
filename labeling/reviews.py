"""The reviewer-decision store: data/reviews/decisions.sqlite, append-only, safe for concurrent writers.

A reviewer (senior clinician) watches a clip in the review app and records, per pattern, whether it
is present, absent, or cannot be told. Decisions are never edited or deleted: a change of mind is a
new row, and the latest row of a reviewer wins. The table (triggers refuse UPDATE and DELETE):

    decisions(id INTEGER PRIMARY KEY AUTOINCREMENT, reviewer TEXT, timestamp TEXT (UTC ISO 8601),
              video_id TEXT, clip_id TEXT, pattern TEXT, decision TEXT in {present, absent, cannot_tell},
              note TEXT, app_version TEXT, model_shown INTEGER in {0, 1})

model_shown: whether the reviewer saw any model output (probability, threshold, call, attention,
label-error score, a model-driven queue reason) while deciding. The labels stage keeps two
adjudications: one with every decision, one (`blind_label`) with only the decisions made without the
model, and evaluation scores the test sets on the blind one, so a model-assisted decision can never
become a test label. A store written before this column existed gets it with the value 1: those
decisions were made in an app that showed the model on every clip, so they count as model-assisted.

Concurrency: SQLite in WAL mode (readers never block the writer) with a busy timeout; each write is
one short `BEGIN IMMEDIATE` transaction, retried while another process holds the write lock, so
several app processes (or several reviewers on one server) can record at once without losing a row.
Keep the file on a local disk: SQLite locking is unreliable on network file systems.

"Latest" is by `id` (insertion order in this one file), not by `timestamp`: clocks of different
machines may disagree, the file's own order cannot.

How several reviewers combine (`resolve_reviewers`): each reviewer's latest decision is one vote;
``cannot_tell`` does not vote. More `present` than `absent` votes -> present (label 1); more
`absent` -> absent (0); a tie, or no votes at all -> undecided, and the adjudicated consensus keeps
its base label (the annotators'), recording the tie in the provenance.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from luskit import __version__ as LUSKIT_VERSION
from luskit import paths
from luskit.schema import PATTERNS

DB_NAME = "decisions.sqlite"
DEFAULT_DB = paths.REVIEWS / DB_NAME
DECISIONS = ("present", "absent", "cannot_tell")
COLUMNS = ("id", "reviewer", "timestamp", "video_id", "clip_id", "pattern", "decision", "note", "app_version",
           "model_shown")
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reviewer TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    video_id TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    pattern TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('present', 'absent', 'cannot_tell')),
    note TEXT NOT NULL DEFAULT '',
    app_version TEXT NOT NULL DEFAULT '',
    model_shown INTEGER NOT NULL DEFAULT 1 CHECK (model_shown IN (0, 1))
);
CREATE INDEX IF NOT EXISTS decisions_clip ON decisions (clip_id, pattern, reviewer);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only: record a new decision instead'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only: record a new decision instead'); END;
"""


_MODEL_SHOWN = "model_shown INTEGER NOT NULL DEFAULT 1 CHECK (model_shown IN (0, 1))"


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}


def select_query(conn: sqlite3.Connection) -> str:
    """SELECT of COLUMNS in id order; a store without model_shown (older app) reads it as 1 (assisted)."""
    have = _columns(conn)
    cols = [c if c in have else f"1 AS {c}" for c in COLUMNS]
    return f"SELECT {', '.join(cols)} FROM decisions ORDER BY id"


def utc_now() -> str:
    """UTC ISO 8601 with microseconds and a Z, e.g. 2024-11-30T12:00:00.123456Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _retry(action, db: Path, attempts: int = 200):
    """Run `action()` again while SQLite reports the database locked/busy (another writer)."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err):
                raise
            time.sleep(min(0.005 * (attempt + 1), 0.2))
    raise TimeoutError(f"{db}: still locked after {attempts} tries; another process holds it open in a "
                       "transaction (close it) or the file is on a network disk (move it to a local one)")


def connect(db: Path = DEFAULT_DB) -> sqlite3.Connection:
    """Open (creating if needed) the store in WAL mode with the schema; caller closes it."""
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)  # autocommit; explicit BEGIN
    try:
        _retry(lambda: conn.execute("PRAGMA journal_mode=WAL"), db)
        conn.execute("PRAGMA synchronous=FULL")  # a recorded decision survives a power cut
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='decisions'").fetchone()
        if not exists:  # creating takes the write lock: skip it on every later call
            _retry(lambda: conn.executescript(_SCHEMA), db)
        elif "model_shown" not in _columns(conn):  # a store from before model_shown: old rows count as assisted
            _retry(lambda: conn.execute(f"ALTER TABLE decisions ADD COLUMN {_MODEL_SHOWN}"), db)
    except BaseException:
        conn.close()
        raise
    return conn


def _check(reviewer: str, video_id: str, clip_id: str, pattern: str, decision: str) -> None:
    if not reviewer or not str(reviewer).strip():
        raise ValueError("reviewer is empty: pass the reviewer's login e-mail")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern {pattern!r} is not one of {list(PATTERNS)}")
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r} is not one of {list(DECISIONS)}")
    if not video_id or not str(clip_id).startswith(f"{video_id}_"):
        raise ValueError(f"clip_id {clip_id!r} is not a clip of video {video_id!r}: take both from "
                         "artifacts/clips/manifest.parquet")


def record_decision(reviewer: str, video_id: str, clip_id: str, pattern: str, decision: str, note: str = "",
                    app_version: str = LUSKIT_VERSION, db: Path = DEFAULT_DB, timestamp: str | None = None,
                    model_shown: bool = True) -> int:
    """Append one decision and return its id. Safe to call from many processes at once.

    Arguments are pseudonymous ids (video_id, clip_id from the clip manifest), a pattern from
    luskit.schema.PATTERNS and a decision from DECISIONS; `note` is free text: it must not hold
    patient identifiers (the review app should say so next to the box). model_shown: whether any model
    output was on screen (default True: only a caller that knows it hid the model may say False).
    """
    _check(reviewer, video_id, clip_id, pattern, decision)
    row = (str(reviewer).strip().lower(), timestamp or utc_now(), str(video_id), str(clip_id), pattern, decision,
           str(note or ""), str(app_version or ""), int(bool(model_shown)))

    def insert(conn: sqlite3.Connection) -> int:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        try:
            cur = conn.execute("INSERT INTO decisions (reviewer, timestamp, video_id, clip_id, pattern, decision, "
                               "note, app_version, model_shown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return int(cur.lastrowid)

    with closing(connect(db)) as conn:
        return _retry(lambda: insert(conn), Path(db))


def read_decisions(db: Path = DEFAULT_DB) -> pd.DataFrame:
    """Every decision (COLUMNS), in id order; empty when the store does not exist yet."""
    db = Path(db)
    if not db.exists():
        return empty()
    try:
        with closing(_open_readonly(db)) as conn:
            frame = pd.read_sql_query(select_query(conn), conn)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as err:
        raise ValueError(f"{db}: not a readable decision store ({err}); restore it from DVC "
                         "(`dvc checkout data`) or move it aside") from None
    return frame.astype({"id": "int64", "model_shown": "int64"})


def empty() -> pd.DataFrame:
    """A decision table (COLUMNS) with no rows."""
    return pd.DataFrame({c: pd.Series([], dtype="int64" if c in ("id", "model_shown") else "str") for c in COLUMNS})


def _open_readonly(db: Path) -> sqlite3.Connection:
    """Read without writing anything next to the store: the pipeline must not touch a DVC-tracked input.

    With no WAL content (every writer closed, the normal state: record_decision closes its
    connection, which checkpoints the WAL into the file) the file is opened immutable, so SQLite
    creates no -wal/-shm files. Rows still in a WAL (an app is writing right now) need mode=ro,
    which reads through the WAL.
    """
    db = Path(db)
    wal = db.with_name(db.name + "-wal")
    uri = db.resolve().as_uri()
    if wal.exists() and wal.stat().st_size > 0:
        return sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def latest_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """The latest decision (highest id) of each reviewer for each clip and pattern (COLUMNS)."""
    ordered = decisions.sort_values("id", kind="stable")
    latest = ordered.drop_duplicates(["reviewer", "clip_id", "pattern"], keep="last")
    return latest.sort_values(["clip_id", "pattern", "reviewer"], kind="stable").reset_index(drop=True)


def resolve_reviewers(latest: pd.DataFrame) -> pd.DataFrame:
    """Combine reviewers per clip and pattern (rule in the module doc).

    latest: latest_decisions(). Returns clip_id, video_id, pattern, label (Int8: 1, 0 or <NA> when
    undecided), n_present, n_absent, n_cannot_tell, reviewers (comma-joined), provenance (text).
    """
    rows = []
    for (clip, pattern), grp in latest.groupby(["clip_id", "pattern"], sort=True):
        votes = {d: sorted(grp.loc[grp["decision"] == d, "reviewer"]) for d in DECISIONS}
        n_p, n_a = len(votes["present"]), len(votes["absent"])
        label = 1 if n_p > n_a else 0 if n_a > n_p else pd.NA
        said = "; ".join(f"{d}: {', '.join(v)}" for d, v in votes.items() if v)
        provenance = f"review ({said})" if label is not pd.NA else f"reviewers undecided ({said}) -> base"
        rows.append((clip, grp["video_id"].iloc[0], pattern, label, n_p, n_a, len(votes["cannot_tell"]),
                     ", ".join(sorted(grp["reviewer"])), provenance))
    out = pd.DataFrame.from_records(rows, columns=["clip_id", "video_id", "pattern", "label", "n_present", "n_absent",
                                                   "n_cannot_tell", "reviewers", "provenance"])
    out["label"] = out["label"].astype("Int8")
    return out
