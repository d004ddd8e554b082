"""A real browser (Playwright + Debian chromium) through the doors, on a project without a demo run:

- on loopback without accounts, a name is picked and the Queue page opens (the app served as st.App behind
  doors.HostGate works in a browser, websocket and all);
- a browser that resolves `rebind.evil.example` to 127.0.0.1 (chromium's host-resolver rule: what DNS
  rebinding does) gets 403 for the page, and its websocket never opens;
- with accounts over `--host 0.0.0.0` and `review.insecure_http: true`, the login form, then the queue.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from labeling.app import auth
from tests.labeling_app.helpers import REVIEWER, stop
from tests.labeling_app.test_browser import ARGS, CHROMIUM
from tests.labeling_app.test_doors import EVIL, Server, make_project

PASSWORD = "a long reviewer password"


@pytest.fixture
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `apt-get install chromium` (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # EVIL resolves to this machine, as a rebinding DNS server would make it
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=[*ARGS, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"])
        try:
            yield b
        finally:
            b.close()


def _page(browser, hosts: set):
    page = browser.new_page()
    page.set_default_timeout(90_000)
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None)
    return page


def test_a_browser_on_loopback_is_served_and_a_rebinding_one_is_refused(chromium, tmp_path):
    server = Server(make_project(tmp_path / "project"), tmp_path / "none.json")
    hosts, sockets = set(), []
    try:
        page = _page(chromium, hosts)
        page.goto(server.url)
        page.get_by_role("combobox").click()
        page.get_by_role("option", name=REVIEWER).click()
        page.get_by_role("button", name="Start reviewing").click()
        page.get_by_role("heading", name="Review queue").wait_for()
        evil = _page(chromium, set())
        evil.on("websocket", lambda ws: sockets.append(ws.url))
        response = evil.goto(f"http://{EVIL}:{server.port}/")
        assert response.status == 403 and "refused" in evil.inner_text("body")
        assert evil.evaluate(f"() => fetch('/_stcore/health').then(r => r.status)") == 403
        assert not sockets  # the app's page never loaded, so no websocket was even tried
    finally:
        stop(server.proc)
    assert hosts == {f"127.0.0.1:{server.port}"}, hosts


def test_accounts_beyond_loopback_need_a_login_in_the_browser(chromium, tmp_path):
    accounts = tmp_path / "users.json"
    auth.add_user(accounts, "rev@example.org", PASSWORD)
    server = Server(make_project(tmp_path / "project", insecure_http=True), accounts, "--host", "0.0.0.0")
    try:
        page = _page(chromium, set())
        page.goto(server.url + "/queue")
        page.get_by_role("textbox", name="Login").fill("rev@example.org")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        assert page.get_by_role("link", name="Data").count() == 0  # no navigation before login
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Reviewing as rev@example.org").wait_for()
        page.get_by_role("heading", name="Review queue").wait_for()
    finally:
        stop(server.proc)
