"""`luskit predict`'s Label Studio table pushed to a REAL server: the pre-annotated timeline regions are there
through the API (and in the browser, screenshot), only for the videos `luskit label select` listed, and
`--blind` still withholds them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from curation.clips import clip_windows
from labeling.ls import client, projects
from luskit.schema import PATTERN_SLUGS
from training.predict.outputs import ls_predictions

pytestmark = pytest.mark.slow

VERSION = "luvnet@predtest"


def ensemble_clips(videos: pd.DataFrame) -> pd.DataFrame:
    """predict's clips.parquet columns that ls_predictions reads, for the server's videos (16-frame clips,
    overlap 6): B-lines positive on video 0's first clip, Consolidation on video 1's clips 1 and 2."""
    rows = []
    for k, v in enumerate(videos.itertuples(index=False)):
        windows = clip_windows(int(v.n_frames), 16, 6, "pad")
        for c, w in enumerate(windows.itertuples(index=False)):
            row = {"video_id": v.video_id, "start_frame_1based": w.start + 1, "end_frame_1based": w.end}
            for s in PATTERN_SLUGS:
                row[f"prob_{s}"], row[f"positive_{s}"] = 0.1, False
            if k == 0 and c == 0:
                row["prob_b_lines"], row["positive_b_lines"] = 0.8, True
            if k == 1 and c in (1, 2):
                row["prob_consolidation"], row["positive_consolidation"] = 0.6 + 0.1 * c, True
            rows.append(row)
    return pd.DataFrame(rows)


def regions(task) -> list[tuple[str, int, int, float]]:
    return sorted((r["value"]["timelinelabels"][0], r["value"]["ranges"][0]["start"], r["value"]["ranges"][0]["end"],
                   round(r["score"], 3)) for p in task.predictions for r in p.result)


@pytest.fixture
def cli_env(ls_server, monkeypatch):
    monkeypatch.setenv("LUSKIT_LS_URL", ls_server.url)
    monkeypatch.setenv("LUSKIT_LS_TOKEN", ls_server.creds.token)
    monkeypatch.setenv("LUSKIT_LS_PASSWORD", ls_server.creds.password)
    return CliRunner()


def push(runner, round_name: str, art: Path, table: Path, listed: Path, *extra: str):
    from labeling.ls.cli import label_app

    res = runner.invoke(label_app, ["init", "--round", round_name, "--storage-path", str(art / "videos")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(label_app, ["push", "--round", round_name, "--artifacts", str(art), "--gold-fraction", "0",
                                    "--predictions", str(table), "--videos", str(listed), "--quiet", *extra])
    assert res.exit_code == 0, res.output
    return res.output


def push_first_two(ls_server, cli_env, tmp_path, round_name: str, *extra: str) -> tuple[pd.DataFrame, str]:
    """Predictions for the server's development videos, pushed for the first two of them only (--videos)."""
    videos = ls_server.videos
    dev = videos[videos["period"] == "development"].reset_index(drop=True)
    table = tmp_path / "ls_predictions.parquet"
    ls_predictions(ensemble_clips(dev), VERSION).to_parquet(table)
    listed = tmp_path / "selection.csv"
    pd.DataFrame({"video_id": dev["video_id"].iloc[:2]}).to_csv(listed, index=False)
    return dev, push(cli_env, round_name, ls_server.artifacts, table, listed, *extra)


def test_predictions_become_visible_pre_annotations(ls_server, cli_env, tmp_path):
    dev, out = push_first_two(ls_server, cli_env, tmp_path, "pred")
    assert "development: 2 tasks wanted, 2 created" in out

    ls = ls_server.connect()
    project = client.find_project(ls, projects.project_title("pred", projects.DEVELOPMENT))
    assert project.show_collab_predictions is True
    tasks = {t.data["video_id"]: t for t in ls.tasks.list(project=project.id, fields="all")}
    assert set(tasks) == set(dev["video_id"].iloc[:2])  # only the listed videos
    v0, v1 = dev["video_id"].iloc[0], dev["video_id"].iloc[1]
    assert regions(tasks[v0]) == [("B-lines", 1, 16, 0.8)]
    # clips 2 (frames 11-26) and 3 (21-36) of video 1 overlap: one region, mean score
    assert regions(tasks[v1]) == [("Consolidation", 11, 36, 0.75)]
    assert {p.model_version for t in tasks.values() for p in t.predictions} == {VERSION}

    if Path("/usr/bin/chromium").exists():
        shot = screenshot(ls_server, project.id, tasks[v0].id, tmp_path / "pre-annotated.png")
        assert shot.stat().st_size > 10_000


def test_blind_push_withholds_the_predictions(ls_server, cli_env, tmp_path):
    _, out = push_first_two(ls_server, cli_env, tmp_path, "predblind", "--blind")
    assert "blind: predictions withheld" in out
    ls = ls_server.connect()
    project = client.find_project(ls, projects.project_title("predblind", projects.DEVELOPMENT))
    assert project.show_collab_predictions is False
    tasks = list(ls.tasks.list(project=project.id, fields="all"))
    assert len(tasks) == 2 and all(not t.predictions for t in tasks)


def screenshot(ls_server, project_id: int, task_id: int, path: Path) -> Path:
    """Log in with Playwright (Debian chromium), open the pre-annotated task, wait for the video, screenshot, and
    check the prediction's tab (model_version) is shown."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{ls_server.url}/user/login/")
            page.fill("input[name=email]", ls_server.creds.email)
            page.fill("input[name=password]", ls_server.creds.password)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            page.goto(f"{ls_server.url}/projects/{project_id}/data?task={task_id}")
            page.wait_for_selector("video", state="attached", timeout=60_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(path), full_page=True)
            # the model's prediction is offered as its own tab, named by model_version, with its B-lines region
            assert page.get_by_text(VERSION).first.is_visible(), "the prediction tab is not shown"
            assert page.get_by_text("B-lines").first.is_visible()
        finally:
            browser.close()
    print(f"screenshot: {path}")
    return path
