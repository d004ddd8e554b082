"""A real browser (Playwright + Debian chromium): log in, open a task, the video becomes playable
(readyState 4) and the four timeline labels are there; the page talks to nobody but the server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from labeling.ls import client, projects, push
from luskit.schema import PATTERNS

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
READY = "() => { const v = document.querySelector('video'); return !!v && v.readyState === 4; }"


def test_annotator_sees_video_and_labels(ls_server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `apt-get install chromium` (make test installs it)")
    from playwright.sync_api import sync_playwright

    ls = ls_server.connect()
    projects.init_round(ls, "browser", str(ls_server.artifacts / "videos"))
    push.push_round(ls, "browser", ls_server.videos, gold_fraction=0.0)
    dev = client.find_project(ls, projects.project_title("browser", projects.DEVELOPMENT))
    tasks = client.tasks_by_key(ls, dev.id)
    fps = ls_server.videos.set_index("video_id")["fps"]
    n_frames = ls_server.videos.set_index("video_id")["n_frames"]
    # a 30 fps and a 25 fps video: the player must count the file's frames at the task's frame rate
    chosen = [sorted(v for v in tasks if fps[v] == 30.0)[0], sorted(v for v in tasks if fps[v] == 25.0)[0]]

    hosts = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
            page.goto(f"{ls_server.url}/user/login/")
            page.fill("input[name=email]", ls_server.creds.email)
            page.fill("input[name=password]", ls_server.creds.password)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert "/user/login" not in page.url, "login failed"

            for video_id in chosen:
                page.goto(f"{ls_server.url}/projects/{dev.id}/data?task={tasks[video_id]['id']}")
                page.wait_for_selector("video", state="attached", timeout=60_000)
                page.wait_for_function(READY, timeout=60_000)
                state = page.evaluate("() => { const v = document.querySelector('video');"
                                      " return {src: v.currentSrc, w: v.videoWidth, d: v.duration}; }")
                assert state["src"].endswith(f"/data/local-files/?d=videos/{video_id}.mp4")
                assert state["w"] == 160 and state["d"] > 0
                for label in PATTERNS:
                    assert page.get_by_text(label, exact=True).first.is_visible(), f"label {label} not shown"
                # the frame counter ("1 of N"): Label Studio's own frame count equals the file's
                page.get_by_text(f"of {n_frames[video_id]}", exact=True).first.wait_for(timeout=10_000)
            page.wait_for_timeout(1500)  # let the player paint its first frame for the screenshot
            shot = tmp_path / "label-studio-task.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert hosts == {urlparse(ls_server.url).netloc}, f"the UI contacted other hosts: {hosts}"
