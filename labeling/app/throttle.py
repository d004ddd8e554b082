"""Login throttling that holds under concurrency: an attempt is admitted (counted) before its password is hashed.

Streamlit runs every browser session as a thread of one process, and several `luskit review` processes may
share one accounts file, so the count lives in SQLite next to that file (`<accounts>.attempts.sqlite`,
mode 0600) and each admission is one `BEGIN IMMEDIATE` transaction: count the window's open attempts, then
insert one. At most `per_account` attempts on a login and `per_client` attempts from one client address are
evaluated per `window_s` seconds, however many guesses arrive at once. Table `attempts`:

    id INTEGER PRIMARY KEY, login TEXT, client TEXT, t REAL (UTC epoch s), ok INTEGER (0 = open or failed, 1 = success)

A successful login marks its own row ok=1, so it stops counting; failures and attempts still being hashed count.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = ("CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY, login TEXT NOT NULL, "
          "client TEXT NOT NULL, t REAL NOT NULL, ok INTEGER NOT NULL DEFAULT 0)")
BUSY_TIMEOUT_S = 30.0  # admissions are a few-row transaction; waiting beats failing a login


def db_for(auth_file: Path) -> Path:
    """The attempts database that goes with an accounts file (same folder, never in git)."""
    auth_file = Path(auth_file)
    return auth_file.with_name(auth_file.name + ".attempts.sqlite")


@dataclass(frozen=True)
class Throttle:
    """Per-window limits on password checks, shared by every thread and process using `db`."""

    db: Path
    window_s: float = 600.0
    per_account: int = 10
    per_client: int = 30

    def _connect(self) -> sqlite3.Connection:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        if not self.db.exists():
            os.close(os.open(self.db, os.O_CREAT | os.O_WRONLY, 0o600))  # private from the start
        conn = sqlite3.connect(self.db, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute(SCHEMA)
        return conn

    def admit(self, login: str, client: str, now: float | None = None) -> int | None:
        """Count one attempt and return its id, or None when the login or the client is over its limit."""
        now = time.time() if now is None else now
        since = now - self.window_s
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # one writer at a time: count and insert are one step
            try:
                conn.execute("DELETE FROM attempts WHERE t < ?", (since,))  # the window moved on
                by_login, = conn.execute("SELECT count(*) FROM attempts WHERE login = ? AND ok = 0 AND t >= ?",
                                         (login, since)).fetchone()
                by_client, = conn.execute("SELECT count(*) FROM attempts WHERE client = ? AND ok = 0 AND t >= ?",
                                          (client, since)).fetchone()
                if by_login >= self.per_account or by_client >= self.per_client:
                    conn.execute("COMMIT")
                    return None
                attempt = conn.execute("INSERT INTO attempts (login, client, t) VALUES (?, ?, ?)",
                                       (login, client, now)).lastrowid
                conn.execute("COMMIT")
                return attempt
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def succeeded(self, attempt: int) -> None:
        """The attempt logged in: it no longer counts against the login or the client."""
        conn = self._connect()
        try:
            conn.execute("UPDATE attempts SET ok = 1 WHERE id = ?", (attempt,))
        finally:
            conn.close()

    def open_attempts(self, login: str | None = None, client: str | None = None, now: float | None = None) -> int:
        """How many attempts count now (for one login, one client, or all)."""
        since = (time.time() if now is None else now) - self.window_s
        where, args = ["ok = 0", "t >= ?"], [since]
        for column, value in (("login", login), ("client", client)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        conn = self._connect()
        try:
            return conn.execute(f"SELECT count(*) FROM attempts WHERE {' AND '.join(where)}", args).fetchone()[0]
        finally:
            conn.close()
