"""The reviewer-decision store: append-only, WAL, concurrent writers, latest-per-reviewer, combination rule."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pandas as pd
import pytest

from labeling import reviews

V = "P1_V1"


def _record(db, reviewer="boss@x.invalid", clip=f"{V}_c000", pattern="B-lines", decision="present", **kw):
    return reviews.record_decision(reviewer, V, clip, pattern, decision, db=db, **kw)


def test_record_and_read_back(tmp_path):
    db = tmp_path / "reviews" / "decisions.sqlite"
    first = _record(db, note="clear B-lines", timestamp="2024-12-01T10:00:00.000000Z")
    second = _record(db, reviewer="Other@X.invalid", decision="cannot_tell")
    assert (first, second) == (1, 2)
    table = reviews.read_decisions(db)
    assert table.columns.tolist() == list(reviews.COLUMNS)
    assert table["reviewer"].tolist() == ["boss@x.invalid", "other@x.invalid"]
    assert table.loc[0, "timestamp"] == "2024-12-01T10:00:00.000000Z" and table.loc[0, "note"] == "clear B-lines"
    assert table.loc[1, "timestamp"].endswith("Z") and table.loc[1, "app_version"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_missing_store_reads_as_empty(tmp_path):
    table = reviews.read_decisions(tmp_path / "none.sqlite")
    assert table.empty and table.columns.tolist() == list(reviews.COLUMNS)
    assert reviews.resolve_reviewers(reviews.latest_decisions(table)).empty


def test_store_is_append_only(tmp_path):
    db = tmp_path / "decisions.sqlite"
    _record(db)
    with sqlite3.connect(db) as conn:
        for sql in ("UPDATE decisions SET decision='absent'", "DELETE FROM decisions"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)


@pytest.mark.parametrize("kwargs, message", [
    ({"pattern": "Lung sliding"}, "pattern"), ({"decision": "maybe"}, "decision"), ({"reviewer": " "}, "reviewer"),
    ({"clip": "P2_V9_c000"}, "not a clip of video"),
])
def test_bad_decisions_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _record(tmp_path / "d.sqlite", **kwargs)


def test_reading_leaves_no_files_behind(tmp_path):
    db = tmp_path / "d.sqlite"
    _record(db)
    before = sorted(p.name for p in tmp_path.iterdir())
    reviews.read_decisions(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["d.sqlite"]


def test_latest_per_reviewer_and_how_reviewers_combine(tmp_path):
    db = tmp_path / "d.sqlite"
    c0, c1, c2, c3 = (f"{V}_c00{i}" for i in range(4))
    _record(db, "a@x", c0, decision="absent")
    _record(db, "a@x", c0, decision="present")  # a changed her mind: the later row wins
    _record(db, "b@x", c0, decision="present")
    _record(db, "c@x", c0, decision="absent")
    _record(db, "a@x", c1, decision="present")  # 1 present vs 1 absent: a tie
    _record(db, "b@x", c1, decision="absent")
    _record(db, "a@x", c2, decision="cannot_tell")  # cannot_tell does not vote
    _record(db, "a@x", c3, decision="cannot_tell")
    _record(db, "b@x", c3, decision="absent")
    latest = reviews.latest_decisions(reviews.read_decisions(db))
    assert len(latest) == 8 and latest.set_index(["clip_id", "reviewer"]).loc[(c0, "a@x"), "decision"] == "present"
    out = reviews.resolve_reviewers(latest).set_index("clip_id")
    assert out.loc[c0, "label"] == 1 and out.loc[c0, "n_present"] == 2 and out.loc[c0, "n_absent"] == 1
    assert out.loc[c0, "provenance"] == "review (present: a@x, b@x; absent: c@x)"
    assert pd.isna(out.loc[c1, "label"]) and out.loc[c1, "provenance"].startswith("reviewers undecided")
    assert pd.isna(out.loc[c2, "label"])
    assert out.loc[c3, "label"] == 0 and out.loc[c3, "n_cannot_tell"] == 1


def _writer(args):
    db, k, n = args
    return [reviews.record_decision(f"rev{k}@x.invalid", V, f"{V}_c{i % 7:03d}", "A-lines", "present",
                                    note=f"{k}-{i}", db=db) for i in range(n)]


def test_eight_concurrent_writers_lose_nothing(tmp_path):
    db = tmp_path / "d.sqlite"
    with mp.get_context("spawn").Pool(8) as pool:
        ids = pool.map(_writer, [(str(db), k, 200) for k in range(8)])
    flat = sorted(i for chunk in ids for i in chunk)
    assert flat == list(range(1, 1601))  # every call got its own id, none failed
    table = reviews.read_decisions(db)
    assert len(table) == 1600 and table["note"].nunique() == 1600
    assert table.groupby("reviewer").size().tolist() == [200] * 8
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
