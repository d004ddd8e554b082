"""The whole Label Studio round trip against a real server: init, push, annotate as two readers and a
senior, predictions, pull, parse; every number checked against what the test created."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from labeling.ls import client, projects, pull, push
from luskit.schema import ls_video_url
from tests.labeling_ls.helpers import parse_ranges, ranges_result
from tests.labeling_ls.conftest import REPO

pytestmark = pytest.mark.slow

ROUND = "rt"
READERS = (("reader1@test.luskit.invalid", "Reader", "One"), ("reader2@test.luskit.invalid", "Reader", "Two"))
SENIOR = ("senior@test.luskit.invalid", "Senior", "Reader")


def _ranges_for(video_index: int, reader: int) -> dict[str, list[tuple[int, int]]]:
    """Known, distinct ranges per video and reader (reader 2 disagrees a little, as people do)."""
    base = 3 + video_index
    out = {"B-lines": [(base, base + 10)], "A-lines": [(base + 15, base + 20 + reader)]}
    if reader == 1:
        out["Pleural effusion"] = [(1, 4), (30, 33)]
    return out


def _predictions(videos: pd.DataFrame) -> pd.DataFrame:
    """Per-frame rows for the first video (frames 5..9 then 12 merge into two regions), a range row for the second."""
    v0, v1 = videos["video_id"].iloc[0], videos["video_id"].iloc[1]
    rows = [(v0, "B-lines", f, f, 0.8, "m-test-1") for f in (5, 6, 7, 8, 9, 12)]
    rows.append((v1, "Consolidation", 10, 20, 0.6, "m-test-1"))
    return pd.DataFrame(rows, columns=list(push.PREDICTION_COLUMNS))


def test_round_trip(ls_server, tmp_path, monkeypatch):
    ls = ls_server.connect()
    videos = ls_server.videos
    storage = str(ls_server.artifacts / "videos")

    created = projects.init_round(ls, ROUND, storage, overlap=2)
    assert [p["action"] for p in created] == ["created", "created"]
    assert [p["maximum_annotations"] for p in created] == [2, 1]
    again = projects.init_round(ls, ROUND, storage, overlap=2)
    assert [p["action"] for p in again] == ["unchanged", "unchanged"]
    assert [p["id"] for p in again] == [p["id"] for p in created]
    assert [p["storage"] for p in again] == [p["storage"] for p in created]
    dev_id, tmp_id = created[0]["id"], created[1]["id"]

    reference = set(videos["video_id"])
    gold = push.gold_videos(videos, reference, 0.5, ROUND)
    assert 0 < len(gold) < 4, f"round {ROUND!r} should make a mix of gold and non-gold videos, got {gold}"
    summary = push.push_round(ls, ROUND, videos, reference, _predictions(videos), gold_fraction=0.5, readers=3,
                              batch_size=2)
    n_dev = int((videos["period"] == "development").sum())
    n_tmp = len(videos) - n_dev
    assert summary["development"].created == n_dev and summary["temporal"].created == n_tmp + len(gold)
    assert summary["development"].overlap_set == len(gold)

    dev_tasks = client.tasks_by_key(ls, dev_id)
    tmp_tasks = client.tasks_by_key(ls, tmp_id)
    assert set(dev_tasks) == set(videos.loc[videos["period"] == "development", "video_id"])
    assert set(tmp_tasks) == set(videos.loc[videos["period"] == "temporal", "video_id"]) | gold
    assert {v: t["overlap"] for v, t in dev_tasks.items()} == {v: 3 if v in gold else 2 for v in dev_tasks}

    # two readers on every development task, the senior on every temporal-project task
    reader_ids = [client.ensure_user(ls, *r) for r in READERS]
    assert [client.ensure_user(ls, *r) for r in READERS] == reader_ids  # idempotent
    senior_id = client.ensure_user(ls, *SENIOR)
    expected = set()
    index = {v: k for k, v in enumerate(videos["video_id"])}
    for video_id, task in dev_tasks.items():
        for r, (uid, reader) in enumerate(zip(reader_ids, READERS), start=1):
            ranges = _ranges_for(index[video_id], r)
            client.create_annotation(ls, task["id"], ranges_result(ranges), completed_by=uid)
            expected |= {(video_id, reader[0], p, s, e) for p, spans in ranges.items() for s, e in spans}
    for video_id, task in tmp_tasks.items():
        ranges = _ranges_for(index[video_id], 3)
        client.create_annotation(ls, task["id"], ranges_result(ranges), completed_by=senior_id)
        expected |= {(video_id, SENIOR[0], p, s, e) for p, spans in ranges.items() for s, e in spans}

    path, info = pull.pull_round(ls, ROUND, tmp_path / "annotations")
    assert path.parent == tmp_path / "annotations" and path.name.endswith("Z.json")
    print(f"snapshot: {path}")
    tasks = json.loads(path.read_text())
    assert len(tasks) == n_dev + n_tmp + len(gold)
    assert sum(len(t["annotations"]) for t in tasks) == 2 * n_dev + n_tmp + len(gold)
    assert info["readers"][dev_id] == {READERS[0][0]: n_dev, READERS[1][0]: n_dev}
    assert info["readers"][tmp_id] == {SENIOR[0]: n_tmp + len(gold)}

    # the parsed ranges are exactly the ones written, attributed to the right people
    assert parse_ranges(tasks) == expected
    from labeling.annotations import parse_export

    # the labels stage's own parser reads the pulled snapshot identically
    records, ranges = parse_export(tasks, path.name)
    assert len(records) == 2 * n_dev + n_tmp + len(gold)
    got = {(r.video_id, r.annotator, r.pattern, r.start, r.end) for r in ranges.itertuples()}
    assert got == expected

    _check_snapshot_shape(tasks, videos, gold)
    _check_predictions(tasks, videos)
    _check_labels_stage(tmp_path / "project", path, videos, gold, monkeypatch)


def _check_labels_stage(project, snapshot, videos: pd.DataFrame, gold: set[str], monkeypatch) -> None:
    """`luskit labels` on the pulled snapshot: agreement and consensus equal what the written ranges imply.

    By construction (see _ranges_for) every reader marks the same B-line frames; only reader 1 marks
    effusion (frames 1-4 and 30-33). Default consensus = majority with ties positive: two readers ->
    a tie -> positive; on gold videos the senior is a third reader without effusion -> 1 of 3 -> negative.
    """
    import shutil

    import yaml

    from curation.clips import ClipParams, build_manifest
    from labeling.labels_stage import main as labels_main

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["labels"]["bootstrap"] = 50
    for folder in ("data/annotations", "data/reviews", "data/reference", "artifacts/clips"):
        (project / folder).mkdir(parents=True)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(snapshot, project / "data" / "annotations" / snapshot.name)
    manifest = build_manifest(videos, ClipParams(**params["clips"]))
    manifest.to_parquet(project / "artifacts" / "clips" / "manifest.parquet", index=False)
    monkeypatch.chdir(project)
    assert labels_main() == 0

    agreement = json.loads((project / "artifacts" / "labels" / "agreement.json").read_text())["agreement"]
    for level in ("clip", "frame"):
        assert agreement[level]["B-lines"]["percent_agreement"]["value"] == 1.0
    dev_frames = int(videos.loc[videos["period"] == "development", "n_frames"].sum())
    n_dev = int((videos["period"] == "development").sum())
    # effusion: 8 frames of every development video are marked by reader 1 alone: pairwise agreement 0 there
    # with two readers, 1/3 on gold videos (reader 1 vs reader 2 and the senior); 1 on all other frames
    n_gold = len(gold)
    assert agreement["frame"]["Pleural effusion"]["percent_agreement"]["value"] == pytest.approx(
        1 - (8 * (n_dev - n_gold) + 8 * (2 / 3) * n_gold) / dev_frames, abs=1e-4)

    consensus = pd.read_parquet(project / "artifacts" / "labels" / "consensus.parquet")
    index = {v: k for k, v in enumerate(videos["video_id"])}
    period = videos.set_index("video_id")["period"]
    for row in manifest.itertuples():
        frames = set(range(row.start_frame_1based, row.end_frame_1based + 1))
        base = 3 + index[row.video_id]
        want_b = bool(frames & set(range(base, base + 11)))
        want_eff = (period[row.video_id] == "development" and row.video_id not in gold
                    and bool(frames & {1, 2, 3, 4, 30, 31, 32, 33}))
        got = consensus[consensus["clip_id"] == row.clip_id].set_index("pattern")["label"]
        assert got["B-lines"] == want_b and got["Pleural effusion"] == want_eff, row.clip_id


def _check_snapshot_shape(tasks: list[dict], videos: pd.DataFrame, gold: set[str]) -> None:
    """README "Annotation snapshot format": exactly these data keys, expanded users, gold in meta."""
    info = videos.set_index("video_id")
    for task in tasks:
        data = task["data"]
        assert set(data) == {"video", "video_id", "patient_id", "fps"}
        assert data["video"] == ls_video_url(data["video_id"])
        assert data["fps"] == info.loc[data["video_id"], "fps"]
        assert data["patient_id"] == info.loc[data["video_id"], "patient_id"]
        assert task["meta"]["luskit"]["gold"] == (data["video_id"] in gold)
        for ann in task["annotations"]:
            assert {"id", "email", "first_name", "last_name"} <= set(ann["completed_by"])
            assert ann["was_cancelled"] is False
    # what the demo's simulated annotators write has no key a real export lacks
    from curation.synth.annotators import TaskTruth, build_export
    from curation.synth.params import ReaderProfile

    reader = ReaderProfile(email="r@x.invalid", first_name="R", last_name="X")
    truth = TaskTruth(video_id="V", patient_id="P", fps=30.0, n_frames=40,
                      intervals={p: ((2, 9),) for p in ("A-lines", "B-lines", "Consolidation", "Pleural effusion")},
                      quality="usable", period="development")
    synthetic = build_export([truth], (reader,), reader, seed=1, export_time="2024-01-01T00:00:00Z")[0]
    real = next(t for t in tasks if t["annotations"])
    # file_upload is only exported for tasks made from an uploaded file (push imports JSON)
    assert set(synthetic) - set(real) - {"file_upload"} == set()
    assert set(synthetic["annotations"][0]) - set(real["annotations"][0]) == set()
    # the user object: what the README shows; the simulation may add display fields (avatar, initials)
    assert set(real["annotations"][0]["completed_by"]) == {"id", "email", "first_name", "last_name"}
    assert set(real["annotations"][0]["completed_by"]) <= set(synthetic["annotations"][0]["completed_by"])


def _check_predictions(tasks: list[dict], videos: pd.DataFrame) -> None:
    v0, v1 = videos["video_id"].iloc[0], videos["video_id"].iloc[1]
    by_video = {}
    for t in tasks:
        by_video.setdefault(t["data"]["video_id"], []).extend(t["predictions"])
    (p0,) = by_video[v0] if len(by_video[v0]) == 1 else by_video[v0][:1]
    assert p0["model_version"] == "m-test-1" and p0["score"] == pytest.approx(0.8)
    regions = sorted((r["value"]["timelinelabels"][0], r["value"]["ranges"][0]["start"], r["value"]["ranges"][0]["end"])
                     for r in p0["result"])
    assert regions == [("B-lines", 5, 9), ("B-lines", 12, 12)]
    (p1,) = by_video[v1][:1]
    assert [(r["value"]["ranges"][0]["start"], r["value"]["ranges"][0]["end"]) for r in p1["result"]] == [(10, 20)]
    others = [v for v in videos["video_id"] if v not in (v0, v1)]
    assert all(not by_video.get(v) for v in others)


def test_cli_round_trip(ls_server, tmp_path, monkeypatch):
    """The same through `luskit label init/push/pull` (pointed at the test server by environment)."""
    from labeling.ls.cli import label_app

    monkeypatch.setenv("LUSKIT_LS_URL", ls_server.url)
    monkeypatch.setenv("LUSKIT_LS_TOKEN", ls_server.creds.token)
    monkeypatch.setenv("LUSKIT_LS_PASSWORD", ls_server.creds.password)
    runner = CliRunner()
    art = ls_server.artifacts
    res = runner.invoke(label_app, ["init", "--round", "cli", "--storage-path", str(art / "videos")])
    assert res.exit_code == 0, res.output
    assert "luskit cli development: project" in res.output and "created" in res.output
    res = runner.invoke(label_app, ["push", "--round", "cli", "--artifacts", str(art), "--gold-fraction", "0",
                                    "--blind", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "development: 4 tasks wanted, 4 created" in res.output
    assert "temporal: 1 tasks wanted, 1 created" in res.output
    res = runner.invoke(label_app, ["push", "--round", "cli", "--artifacts", str(art), "--gold-fraction", "0",
                                    "--quiet"])
    assert res.exit_code == 0 and "development: 4 tasks wanted, 0 created, 4 already there" in res.output
    res = runner.invoke(label_app, ["pull", "--round", "cli", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "dvc add data" in res.output
    (snap,) = tmp_path.glob("*.json")
    assert len(json.loads(snap.read_text())) == 5
    # blind: the project hides pre-annotations from readers
    ls = ls_server.connect()
    dev = client.find_project(ls, projects.project_title("cli", projects.DEVELOPMENT))
    assert dev.show_collab_predictions is False
    res = runner.invoke(label_app, ["push", "--round", "nope", "--artifacts", str(art), "--quiet"])
    assert res.exit_code == 2 and "luskit label init --round nope" in res.output
