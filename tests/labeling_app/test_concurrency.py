"""Several reviewers at once lose nothing: 8 writer processes x 200 decisions through the app's save path,
while the app's live reader keeps reading; every decision is there afterwards, in each writer's order."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from labeling import reviews
from labeling.app import decisions
from luskit.schema import PATTERNS

pytestmark = pytest.mark.slow  # ~17 s on 2 cores: 1600 fsync'd transactions

V = "P1234567890_Vabcdef01"
N_WRITERS, N_EACH = 8, 200


def _writer(args: tuple[str, int]) -> list[int]:
    db, k = args
    ids = []
    for i in range(N_EACH):  # one form submission = one save call, as in the Clip page
        item = (PATTERNS[i % 4], ("present", "absent", "cannot_tell")[i % 3], f"{k}-{i}")
        ids += decisions.save(db, f"rev{k}@example.org", V, f"{V}_c{i % 9:03d}", [item])
    return ids


def _reader(args: tuple[str, int]) -> list[int]:
    db, rounds = args
    seen = []
    for _ in range(rounds):
        seen.append(len(decisions.read_live(db)))
    return seen


def test_eight_reviewers_at_once_lose_nothing(tmp_path):
    db = str(tmp_path / "reviews" / "decisions.sqlite")
    decisions.save(db, "first@example.org", V, f"{V}_c000", [("A-lines", "present", "")])  # the store exists
    ctx = mp.get_context("spawn")
    with ctx.Pool(N_WRITERS + 1) as pool:
        reading = pool.map_async(_reader, [(db, 60)])
        ids = pool.map(_writer, [(db, k) for k in range(N_WRITERS)])
        counts = reading.get(timeout=600)[0]
    total = 1 + N_WRITERS * N_EACH
    assert sorted(i for chunk in ids for i in chunk) == list(range(2, total + 1))  # each save got its own row
    assert counts == sorted(counts) and counts[0] >= 1  # the live reader never saw rows vanish, never failed
    table = decisions.read_live(db)
    assert len(table) == total and table["note"].nunique() == total
    for k in range(N_WRITERS):
        mine = table[table["reviewer"] == f"rev{k}@example.org"]
        assert mine["note"].tolist() == [f"{k}-{i}" for i in range(N_EACH)]  # in the order it wrote them
    assert set(table["app_version"]) == {decisions.APP_VERSION}
    latest = reviews.latest_decisions(table)
    assert len(latest) == len(table.drop_duplicates(["reviewer", "clip_id", "pattern"]))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
