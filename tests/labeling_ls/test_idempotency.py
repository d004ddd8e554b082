"""Re-runs and crashes: push twice adds nothing; the server killed -9 in the middle of a push, restarted,
and pushed again ends with every video exactly once; pulls always equal the server's counts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pandas as pd
import pytest

from labeling.ls import client, projects, pull, push, server
from tests.labeling_ls.helpers import ranges_result

pytestmark = pytest.mark.slow


def _all_video_ids(ls, project_id: int) -> list[str]:
    return [t.data["video_id"] for t in ls.tasks.list(project=project_id, page_size=500)]


def test_push_twice_same_count(ls_server):
    ls = ls_server.connect()
    projects.init_round(ls, "twice", str(ls_server.artifacts / "videos"))
    first = push.push_round(ls, "twice", ls_server.videos, gold_fraction=0.0)
    second = push.push_round(ls, "twice", ls_server.videos, gold_fraction=0.0)
    assert first["development"].created == 4 and first["temporal"].created == 1
    assert second["development"].created == 0 and second["temporal"].created == 0
    assert second["development"].already_there == 4
    dev = client.find_project(ls, projects.project_title("twice", projects.DEVELOPMENT))
    assert client.project_counts(ls, dev.id).tasks == 4
    assert sorted(_all_video_ids(ls, dev.id)) == sorted(ls_server.videos.query("period == 'development'").video_id)


def _many_videos(n: int) -> pd.DataFrame:
    """A videos table of n development videos (import does not open the media; only play would)."""
    ids = [f"P{k % 7:010x}_V{k:08x}" for k in range(n)]
    return pd.DataFrame({"video_id": ids, "patient_id": [i.split("_")[0] for i in ids],
                         "period": "development", "fps": 30.0, "n_frames": 60})


def test_kill_during_push_then_push_again(ls_server, monkeypatch):
    """kill -9 the server while a batch is in flight; restart; push again: zero duplicates, zero missing."""
    ls = ls_server.connect()
    projects.init_round(ls, "crash", str(ls_server.artifacts / "videos"))
    videos = _many_videos(60)
    real_import = client.import_tasks
    calls = {"n": 0}

    def import_then_die(ls_, project_id, tasks):
        calls["n"] += 1
        if calls["n"] == 4:  # the 4th batch: kill the whole server process group while it is being sent
            pid = server.read_pid(ls_server.cfg)
            threading.Timer(0.01, os.killpg, (pid, signal.SIGKILL)).start()
        return real_import(ls_, project_id, tasks)

    monkeypatch.setattr(client, "import_tasks", import_then_die)
    with pytest.raises(Exception):
        push.push_round(ls, "crash", videos, gold_fraction=0.0, batch_size=3)
    time.sleep(0.5)
    assert server.read_pid(ls_server.cfg) is None  # dead (the pid file is stale and ignored)
    assert not server.health(ls_server.url)
    monkeypatch.setattr(client, "import_tasks", real_import)

    t0 = time.monotonic()
    server.start(ls_server.cfg, ls_server.creds, timeout=180)
    print(f"restart after kill -9: {time.monotonic() - t0:.1f} s")
    ls = ls_server.connect()
    dev = client.find_project(ls, projects.project_title("crash", projects.DEVELOPMENT))
    before = client.project_counts(ls, dev.id).tasks
    assert 9 <= before <= 12  # 3 batches of 3 landed; the 4th either fully or not at all
    summary = push.push_round(ls, "crash", videos, gold_fraction=0.0, batch_size=3)
    assert summary["development"].created == 60 - before
    ids = _all_video_ids(ls, dev.id)
    assert len(ids) == len(set(ids)) == 60
    assert set(ids) == set(videos["video_id"])


def test_pull_after_more_annotations(ls_server, tmp_path):
    """A second pull after more annotations holds them all; the first snapshot is never touched."""
    ls = ls_server.connect()
    projects.init_round(ls, "more", str(ls_server.artifacts / "videos"))
    push.push_round(ls, "more", ls_server.videos, gold_fraction=0.0)
    dev = client.find_project(ls, projects.project_title("more", projects.DEVELOPMENT))
    tasks = client.tasks_by_key(ls, dev.id)
    uid = client.ensure_user(ls, "more1@test.luskit.invalid", "More", "One")
    first_video = sorted(tasks)[0]
    client.create_annotation(ls, tasks[first_video]["id"], ranges_result({"B-lines": [(2, 5)]}), uid)
    out = tmp_path / "annotations"
    path1, _ = pull.pull_round(ls, "more", out)
    bytes1 = path1.read_bytes()

    uid2 = client.ensure_user(ls, "more2@test.luskit.invalid", "More", "Two")
    for video_id, task in tasks.items():
        client.create_annotation(ls, task["id"], ranges_result({"A-lines": [(1, 3)]}), uid2)
    time.sleep(1.1)  # snapshot names have one-second resolution; a clash would wait anyway
    path2, _ = pull.pull_round(ls, "more", out)
    assert path2 != path1 and path1.read_bytes() == bytes1
    snap = json.loads(path2.read_text())
    counts = [client.project_counts(ls, p.id) for p in projects.round_projects(
        ls, "more", projects.TIMELINE_ROLES).values()]
    assert len(snap) == sum(c.tasks for c in counts)
    assert sum(len(t["annotations"]) for t in snap) == sum(c.annotations for c in counts) == 1 + len(tasks)


def test_pull_refuses_an_incomplete_export(ls_server, tmp_path, monkeypatch):
    """If the export lost a task, pull fails loudly and writes nothing."""
    ls = ls_server.connect()
    projects.init_round(ls, "short", str(ls_server.artifacts / "videos"))
    push.push_round(ls, "short", ls_server.videos, gold_fraction=0.0)
    real = client.export_snapshot
    monkeypatch.setattr(client, "export_snapshot", lambda ls_, pid, **kw: real(ls_, pid, **kw)[1:])
    with pytest.raises(pull.SnapshotMismatch, match="Nothing was written"):
        pull.pull_round(ls, "short", tmp_path)
    assert list(tmp_path.iterdir()) == []
