"""The Label Studio workflow's pure parts, without a server: projects, planning, predictions,
credentials, snapshot naming, CLI wiring."""

from __future__ import annotations

import json
import stat

import pandas as pd
import pytest
from typer.testing import CliRunner

from labeling.ls import projects, pull, push, server


def _videos() -> pd.DataFrame:
    ids = [f"P{k % 3:010x}_V{k:08x}" for k in range(40)]
    return pd.DataFrame({"video_id": ids, "patient_id": [i[:11] for i in ids],
                         "period": ["temporal" if k % 5 == 0 else "development" for k in range(40)],
                         "fps": 30.0, "n_frames": 50})


def test_round_specs():
    specs = projects.round_specs("r2", overlap=3, adjudication=True)
    assert [(s.role, s.title, s.maximum_annotations) for s in specs] == [
        ("development", "luskit r2 development", 3), ("temporal", "luskit r2 temporal", 1),
        ("adjudication", "luskit r2 adjudication", 1)]
    assert "$fps" in specs[0].label_config() and 'choice="multiple"' in specs[2].label_config()
    with pytest.raises(ValueError):
        projects.round_specs("a/b")
    with pytest.raises(ValueError):
        projects.round_specs("r", overlap=0)


def test_configs_are_valid_label_studio_xml():
    from label_studio_sdk.label_interface import LabelInterface

    for xml in (projects.TIMELINE_XML, projects.CLIP_CHOICES_XML):
        li = LabelInterface(xml.read_text())
        assert {"patterns", "quality", "comment"} <= {c.name for c in li.controls}
    choices = LabelInterface(projects.CLIP_CHOICES_XML.read_text()).get_control("patterns")
    assert list(choices.labels) == ["A-lines", "B-lines", "Consolidation", "Pleural effusion"]


def test_gold_is_a_fixed_fraction_of_development_reference_videos():
    videos = _videos()
    ref = set(videos["video_id"][:30])
    gold = push.gold_videos(videos, ref, 0.5, "r1")
    assert gold == push.gold_videos(videos, ref, 0.5, "r1")  # deterministic: re-runs are idempotent
    assert gold <= ref and all(videos.set_index("video_id").loc[list(gold), "period"] == "development")
    assert 5 <= len(gold) <= 20
    assert push.gold_videos(videos, ref, 0.0, "r1") == set()
    dev_ref = set(videos.loc[(videos["period"] == "development") & videos["video_id"].isin(ref), "video_id"])
    assert push.gold_videos(videos, ref, 1.0, "r1") == dev_ref
    assert push.gold_videos(videos, ref, 0.5, "r2") != gold  # a new round, a new choice


def test_plan_routes_periods_and_copies_gold_to_the_senior():
    videos = _videos()
    gold = set(videos.query("period == 'development'")["video_id"][:3])
    plans = push.plan_timeline(videos, "r1", gold, readers=4)
    dev, tmp = plans["development"], plans["temporal"]
    assert len(dev) == 32 and len(tmp) == 8 + 3
    assert {p.key for p in dev if p.overlap == 4} == gold and all(p.overlap is None for p in dev if p.key not in gold)
    assert gold <= {p.key for p in tmp}
    task = dev[0].payload
    assert set(task["data"]) == {"video", "video_id", "patient_id", "fps"}
    assert task["data"]["video"] == f"/data/local-files/?d=videos/{task['data']['video_id']}.mp4"
    assert task["meta"]["luskit"]["round"] == "r1"


def test_predictions_merge_frames_into_regions():
    rows = [("v", "B-lines", f, f, s, "m1") for f, s in ((3, 0.2), (4, 0.4), (5, 0.6), (9, 1.0))]
    rows += [("v", "A-lines", 1, 10, 0.5, "m1"), ("v", "A-lines", 8, 12, 0.7, "m1"), ("v", "A-lines", 2, 2, 0.9, "m2")]
    preds = pd.DataFrame(rows, columns=list(push.PREDICTION_COLUMNS))
    out = push.prediction_payloads(preds)["v"]
    m1, m2 = sorted(out, key=lambda p: p["model_version"])
    regions = [(r["value"]["timelinelabels"][0], r["value"]["ranges"][0]["start"], r["value"]["ranges"][0]["end"],
                r["score"]) for r in m1["result"]]
    assert regions == [("A-lines", 1, 12, 0.6), ("B-lines", 3, 5, pytest.approx(0.4)), ("B-lines", 9, 9, 1.0)]
    assert m1["score"] == pytest.approx((0.6 + 0.4 + 1.0) / 3)
    assert [r["value"]["ranges"] for r in m2["result"]] == [[{"start": 2, "end": 2}]]
    assert all(r["from_name"] == "patterns" and r["to_name"] == "video" for r in m1["result"])


def test_bad_inputs_say_what_to_do(tmp_path):
    videos = _videos()
    bad = pd.DataFrame([("x", "Lung sliding", 1, 2, 0.5, "m")], columns=list(push.PREDICTION_COLUMNS))
    bad.to_parquet(tmp_path / "p.parquet")
    with pytest.raises(push.PushError, match="unknown pattern"):
        push.read_predictions(tmp_path / "p.parquet", videos)
    beyond = pd.DataFrame([(videos.video_id[1], "B-lines", 40, 51, 0.5, "m")], columns=list(push.PREDICTION_COLUMNS))
    beyond.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(push.PushError, match="after the last frame"):
        push.read_predictions(tmp_path / "b.parquet", videos)
    with pytest.raises(push.PushError, match="dvc repro deidentify"):
        push.read_videos(tmp_path / "missing.parquet")
    videos.drop(columns=["fps"]).to_parquet(tmp_path / "v.parquet")
    with pytest.raises(push.PushError, match="fps"):
        push.read_videos(tmp_path / "v.parquet")
    with pytest.raises(push.PushError, match="missing under"):
        push.check_media(videos, tmp_path)


def test_credentials_generated_once_owner_only(tmp_path, monkeypatch):
    for k in (server.ENV_EMAIL, server.ENV_PASSWORD, server.ENV_TOKEN):
        monkeypatch.delenv(k, raising=False)
    cfg = server.ServerConfig(home=tmp_path / "ls", artifacts=tmp_path, ls_bin=tmp_path / "nope")
    with pytest.raises(server.ServerError, match="luskit label serve"):
        server.load_credentials(cfg, create=False)
    first = server.load_credentials(cfg)
    assert stat.S_IMODE(cfg.credentials_file.stat().st_mode) == 0o600
    assert server.load_credentials(cfg) == first and len(first.token) == 40
    assert json.loads(cfg.credentials_file.read_text())["token"] == first.token
    monkeypatch.setenv(server.ENV_TOKEN, "ab" * 20)
    monkeypatch.setenv(server.ENV_EMAIL, "lead@hospital.invalid")
    env_creds = server.load_credentials(cfg)
    assert env_creds.token == "ab" * 20 and env_creds.email == "lead@hospital.invalid"
    monkeypatch.setenv(server.ENV_TOKEN, "not-hex")
    with pytest.raises(server.ServerError, match="40 lowercase hex"):
        server.load_credentials(cfg)


def test_start_refuses_without_label_studio_venv(tmp_path):
    cfg = server.ServerConfig(home=tmp_path / "ls", artifacts=tmp_path, ls_bin=tmp_path / "nope", port=1)
    with pytest.raises(server.ServerError, match="make .ls-venv"):
        server.start(cfg)
    assert server.stop(cfg) is False
    assert server.status(cfg)["running"] is False


def test_snapshot_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setattr(pull, "_stamp", lambda now=None: "20250101T000000Z")
    monkeypatch.setattr(pull.time, "sleep", lambda s: None)
    path = pull.write_snapshot([{"id": 1}], tmp_path)
    assert path.name == "20250101T000000Z.json"
    assert pull.write_snapshot([{"id": 1}], tmp_path) == path  # same bytes: nothing to do
    with pytest.raises(FileExistsError):
        pull.write_snapshot([{"id": 2}], tmp_path)
    assert json.loads(path.read_text()) == [{"id": 1}]


def test_luskit_label_is_wired():
    from luskit.cli import app

    res = CliRunner().invoke(app, ["label", "--help"])
    assert res.exit_code == 0
    for command in ("serve", "stop", "status", "init", "push", "pull"):
        assert command in res.output


@pytest.mark.parametrize("extra", [[], ["--adjudication"]])
def test_pull_without_out_resolves_its_folder_then_needs_a_server(tmp_path, monkeypatch, extra):
    """The default snapshot folder is worked out before connecting: with no server and no credentials the
    command must stop with the credentials message (exit 2), not crash on the way."""
    from labeling.ls.cli import label_app

    (tmp_path / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    for key in ("LUSKIT_LS_URL", "LUSKIT_LS_TOKEN", "LABEL_STUDIO_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    res = CliRunner().invoke(label_app, ["pull", *extra, "--port", "1"])
    assert res.exit_code == 2, (res.output, res.exception)
    assert "error:" in res.output and not list(tmp_path.rglob("*.json"))
