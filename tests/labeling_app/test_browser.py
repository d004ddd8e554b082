"""A real browser (Playwright + Debian chromium) on `luskit review`: sign in, queue, a clip whose video
plays (readyState 4) from the clip's start, a decision saved to the store, the labels stage turning it
into an adjudicated label; every page screenshotted; with accounts, nothing is shown before login.

Screenshots go to the test's tmp folder, and also to $LUSKIT_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from labeling import reviews
from labeling.app import auth, queue_logic
from luskit.schema import PATTERNS
from tests.labeling_app.project import copy_project
from tests.labeling_app.helpers import REVIEWER, clean_env, free_port, luskit, start_review, stop, wait_healthy

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
VIDEO = "() => { const v = document.querySelector('video'); return v && {ready: v.readyState, t: v.currentTime, " \
        "paused: v.paused, clip: v.dataset.clip, start: Number(v.dataset.clipStart), end: Number(v.dataset.clipEnd), " \
        "src: v.currentSrc, w: v.videoWidth}; }"
READY = "(clip) => { const v = document.querySelector('video'); return !!v && v.readyState === 4 && " \
        "v.dataset.clip === clip && v.currentTime >= Number(v.dataset.clipStart) - 0.05 && " \
        "v.currentTime <= Number(v.dataset.clipEnd) + 0.05; }"
PASSWORD = "a long reviewer password"


@pytest.fixture
def project(demo_project, tmp_path) -> Path:
    return copy_project(demo_project.path, tmp_path / "project")


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `apt-get install chromium` (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, page, name: str) -> Path:
        page.wait_for_timeout(800)  # charts and images finish painting
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        extra = os.environ.get("LUSKIT_SCREENSHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(extra) / path.name)
        assert path.stat().st_size > 10_000
        return path


def new_page(browser, url: str, hosts: set):
    page = browser.new_page(viewport={"width": 1440, "height": 1800})
    page.set_default_timeout(60_000)
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None)
    return page


def wait_ready(page, clip: str, shots: Shots) -> None:
    """Wait until the clip's video is loaded and positioned; on a timeout, fail with the video's state, the
    page text and a screenshot (a stalled seek once showed up here only as a bare timeout)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(READY, arg=clip)
    except PlaywrightTimeout:
        shot = shots.take(page, f"not-ready-{clip}")
        state = page.evaluate("() => { const v = document.querySelector('video'); return v && "
                              "{ready: v.readyState, clip: v.dataset.clip, t: v.currentTime, "
                              "start: v.dataset.clipStart, error: v.error && v.error.code}; }")
        pytest.fail(f"clip {clip} not ready at {page.url}: video {state}; screenshot {shot}; page text: "
                    f"{page.inner_text('body')[:1500]!r}")


def pick_decision(page, pattern: str, decision: str, note: str = "") -> None:
    group = page.get_by_role("radiogroup", name=pattern)
    group.get_by_text(decision, exact=True).click()
    if note:
        page.get_by_label("note").nth(list(PATTERNS).index(pattern)).fill(note)


def test_review_a_clip_end_to_end(project, browser, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    queue = pd.read_parquet(project / "artifacts" / "review" / "queue.parquet")
    order = queue_logic.clip_order(queue)
    first = order[0]
    pattern = queue.loc[queue["clip_id"] == first].sort_values("rank")["pattern"].iloc[0]
    consensus = pd.read_parquet(project / "artifacts" / "labels" / "consensus.parquet")
    before = consensus.set_index(["clip_id", "pattern"]).loc[(first, pattern), "label"]
    flipped = "absent" if before == 1 else "present"  # a decision that must change the label
    shots, hosts = Shots(tmp_path / "screens"), set()
    server = start_review(project, port)
    try:
        wait_healthy(url, server)
        page = new_page(browser, url, hosts)
        page.goto(url)
        page.get_by_text("Start reviewing").wait_for()
        shots.take(page, "review-00-sign-in")
        page.get_by_role("combobox").click()
        page.get_by_role("option", name=REVIEWER).click()
        page.get_by_role("button", name="Start reviewing").click()
        page.get_by_text(f"You decided 0 of {len(queue)} queued clip-patterns").wait_for()
        shots.take(page, "review-01-queue")

        page.get_by_role("button", name="Open clip").click()
        wait_ready(page, first, shots)
        state = page.evaluate(VIDEO)
        clip = pd.read_parquet(project / "artifacts" / "clips" / "manifest.parquet").set_index("clip_id").loc[first]
        assert state["start"] == pytest.approx(clip["start"] / clip["fps"], abs=1e-6)
        assert state["end"] == pytest.approx((clip["start"] + clip["n_real_frames"]) / clip["fps"], abs=1e-6)
        assert state["src"].startswith(f"{url}/media/") and state["w"] > 0
        page.evaluate("() => document.querySelector('video').play()")
        # Played past the clip's start: the played ranges, not currentTime, since a tail clip can be 2 frames
        # (67 ms) long and the loop puts currentTime back to the start between two polls.
        page.wait_for_function("() => { const v = document.querySelector('video'); const p = v.played; "
                               "return !v.paused && p.length > 0 && "
                               "p.end(p.length - 1) > Number(v.dataset.clipStart) + 0.01; }")
        playing = page.evaluate(VIDEO)
        assert state["start"] <= playing["t"] <= state["end"] + 0.1  # it plays inside the clip's window
        shots.take(page, "review-02-clip")

        pick_decision(page, pattern, flipped, note="checked frame by frame")
        page.get_by_role("button", name="Save decisions").click()
        page.get_by_text(f"Saved 1 decision(s) on {first} as {REVIEWER}.").wait_for()
        store = reviews.read_decisions(project / "data" / "reviews" / "decisions.sqlite")
        assert store[["reviewer", "clip_id", "pattern", "decision", "note"]].values.tolist() == [
            [REVIEWER, first, pattern, flipped, "checked frame by frame"]]

        page.get_by_label("note").first.press_sequentially("no keys here n p")  # typing is not navigating
        assert f"clip={first}" in page.url
        page.evaluate("() => document.activeElement.blur()")
        page.keyboard.press("n")  # keyboard: next clip
        page.wait_for_url(f"**clip={order[1]}")
        wait_ready(page, order[1], shots)

        for name in ("Agreement", "Models", "Data"):
            page.get_by_role("link", name=name).click()
            page.get_by_role("heading", name={"Agreement": "Annotator agreement"}.get(name, name)).wait_for()
            page.locator("[data-testid=stVegaLiteChart]").first.wait_for()
            shots.take(page, f"review-0{3 + ['Agreement', 'Models', 'Data'].index(name)}-{name.lower()}")
    finally:
        stop(server)
    assert hosts == {f"127.0.0.1:{port}"}, f"the app made the browser contact other hosts: {hosts}"

    run = luskit("labels", cwd=project, env=clean_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    after = pd.read_parquet(project / "artifacts" / "labels" / "consensus.parquet").set_index(["clip_id", "pattern"])
    row = after.loc[(first, pattern)]
    assert row["label"] == (1 if flipped == "present" else 0) and row["label"] != before
    assert row["method"] == "adjudicated" and row["provenance"].startswith(f"review ({flipped}: {REVIEWER}")


def test_an_exposed_app_shows_nothing_before_login(project, browser, tmp_path):
    accounts = tmp_path / "accounts.json"
    env = clean_env(LUSKIT_REVIEW_AUTH_FILE=str(accounts))
    refused = luskit("review", "--host", "0.0.0.0", "--port", str(free_port()), cwd=project, env=env, timeout=60)
    assert refused.returncode == 2 and "without authentication" in refused.stderr
    made = luskit("review", "add-user", "rev@example.org", cwd=project, env=env, stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    plain = luskit("review", "--host", "0.0.0.0", "--port", str(free_port()), cwd=project, env=env, timeout=60)
    assert plain.returncode == 2 and "over plain HTTP" in plain.stderr  # passwords would cross the network
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  insecure_http: false", "  insecure_http: true"))  # told so
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    clip = queue_logic.clip_order(pd.read_parquet(project / "artifacts" / "review" / "queue.parquet"))[0]
    shots, hosts = Shots(tmp_path / "screens"), set()
    server = start_review(project, port, "--host", "0.0.0.0", env=env)
    try:
        wait_healthy(url, server)
        page = new_page(browser, url, hosts)
        for path in (f"/clip?clip={clip}", "/queue", "/data", "/"):
            page.goto(url + path)
            page.get_by_role("textbox", name="Password").wait_for()
            assert page.locator("video").count() == 0 and page.get_by_text("Review queue").count() == 0
            assert page.get_by_role("link", name="Data").count() == 0  # no navigation before login
        page.goto(f"{url}/clip?clip={clip}")
        page.get_by_role("textbox", name="Login").fill("rev@example.org")
        page.get_by_role("textbox", name="Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Unknown login or wrong password").wait_for()
        shots.take(page, "review-06-login-refused")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        wait_ready(page, clip, shots)  # the deep link opens once signed in
        pick_decision(page, "Pleural effusion", "cannot tell")
        page.get_by_role("button", name="Save decisions").click()
        page.get_by_text(f"Saved 1 decision(s) on {clip} as rev@example.org.").wait_for()
    finally:
        stop(server)
    store = reviews.read_decisions(project / "data" / "reviews" / "decisions.sqlite")
    assert store[["reviewer", "clip_id", "decision"]].values.tolist() == [["rev@example.org", clip, "cannot_tell"]]
    assert auth.read_users(accounts).keys() == {"rev@example.org"}
    assert hosts == {f"127.0.0.1:{port}"}, hosts
