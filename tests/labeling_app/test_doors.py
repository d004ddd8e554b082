"""The review app's doors, on the real server (`luskit review`, started here on 127.0.0.1) driven over its
websocket like a browser tab (tests/labeling_app/streamlit_ws.py):

- pick-a-name only for a request straight from loopback: proxy headers, another Host name, a declared proxy
  lead to a refusal without accounts and to the login page with accounts;
- DNS rebinding: a Host or Origin `rebind.evil.example` gets 403 on the websocket and on HTTP;
- 40 concurrent guesses lead to at most review.login_attempts password checks (per login) and at most
  review.login_attempts_per_client (per client address): counted from the server's own audit log;
- an idle session has expired; an old N=2^14 hash is upgraded at the next login.

No demo run needed: the sign-in page reads only params.yaml and the accounts file.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets
import yaml

from labeling.app import auth, throttle
from tests.labeling_app.helpers import REVIEWER, clean_env, free_port, start_review, stop, wait_healthy
from tests.labeling_app.project import REPO
from tests.labeling_app.streamlit_ws import Tab

PASSWORD = "correct horse battery"
EVIL = "rebind.evil.example"
PUBLIC = "review.example.org"  # a configured public name (review.allowed_hosts), not loopback
PROXY_HEADERS = [{"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-Host": "127.0.0.1"},
                 {"X-Forwarded-Proto": "https"}, {"Forwarded": "for=203.0.113.9;proto=https"},
                 {"X-Real-IP": "203.0.113.9"}]


def make_project(folder: Path, **review) -> Path:
    """A project folder with this repository's params.yaml (review: overrides) and an empty artifacts/."""
    folder.mkdir(parents=True)
    (folder / "artifacts").mkdir()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["review"].update(review)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


class Server:
    def __init__(self, project: Path, accounts: Path, *args: str) -> None:
        self.project, self.accounts, self.port = project, accounts, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = start_review(project, self.port, *args, env=clean_env(LUSKIT_REVIEW_AUTH_FILE=str(accounts)))
        try:
            wait_healthy(self.url, self.proc)
        except Exception:
            stop(self.proc)
            raise

    def log(self) -> str:
        return (self.project / f"review-{self.port}.log").read_text()

    def checks(self, login: str | None = None, client: str | None = None) -> int:
        """Password checks the server ran (its audit log: one line per hash evaluated)."""
        lines = [ln for ln in self.log().splitlines() if "password check for " in ln]
        if login:
            lines = [ln for ln in lines if f"password check for {login} (" in ln]
        if client:
            lines = [ln for ln in lines if f"(client {client})" in ln]
        return len(lines)

    def tab(self, **kw) -> Tab:
        return Tab(self.port, **kw)


def page(server: Server, **kw):
    async def go():
        async with server.tab(**kw) as tab:
            return await tab.run()
    return asyncio.run(go())


def is_picker(run) -> bool:
    return "Reviewer" in run.widgets and "Start reviewing" in run.widgets and "Password" not in run.widgets


def is_login(run) -> bool:
    return "Password" in run.widgets and "Sign in" in run.widgets and "Reviewer" not in run.widgets


@pytest.fixture(scope="module")
def open_app(tmp_path_factory):
    """No accounts, a configured public name: loopback browsers pick a name, nobody else does."""
    root = tmp_path_factory.mktemp("doors-open")
    server = Server(make_project(root / "project", allowed_hosts=[PUBLIC]), root / "none.json")
    yield server
    stop(server.proc)


@pytest.fixture(scope="module")
def accounts_app(tmp_path_factory):
    """Accounts, small limits and a short idle timeout (params, as a team would set them)."""
    root = tmp_path_factory.mktemp("doors-accounts")
    accounts = root / "users.json"
    auth.add_user(accounts, "rev@example.org", PASSWORD)
    project = make_project(root / "project", login_attempts=4, login_attempts_per_client=6, idle_timeout_s=5)
    server = Server(project, accounts)
    yield server
    stop(server.proc)


def test_a_browser_on_loopback_picks_a_name(open_app):
    for host in (f"127.0.0.1:{open_app.port}", f"localhost:{open_app.port}", f"[::1]:{open_app.port}"):
        run = page(open_app, host=host)
        assert is_picker(run) and not run.alerts(), (host, run.texts)


@pytest.mark.parametrize("headers", PROXY_HEADERS, ids=lambda h: next(iter(h)))
def test_proxy_headers_refuse_pick_a_name(open_app, headers):
    run = page(open_app, headers=headers)
    assert not run.widgets, run.texts  # no name picker, nothing else either
    assert "did not come straight from one (it came through a proxy" in run.alerts()
    assert "luskit review add-user" in run.alerts() and "review.behind_proxy: true" in run.alerts()


def test_a_public_host_name_refuses_pick_a_name(open_app):
    run = page(open_app, host=f"{PUBLIC}:{open_app.port}")
    assert not run.widgets and "addressed to a host name other than this machine's loopback" in run.alerts()


def _status(server: Server, host: str, origin: str | None = None, path: str = "/_stcore/health") -> int:
    headers = {"Host": host, **({"Origin": origin} if origin else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(server.url + path, headers=headers), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def _ws_status(server: Server, host: str, origin: str | None) -> int:
    async def go():
        try:
            async with server.tab(host=host, origin=origin or ""):
                return 101
        except websockets.InvalidStatus as err:
            return err.response.status_code
    return asyncio.run(go())


def test_a_rebinding_host_or_origin_is_refused(open_app):
    port = open_app.port
    evil, loop = f"{EVIL}:{port}", f"127.0.0.1:{port}"
    assert _ws_status(open_app, loop, f"http://{loop}") == 101 and _status(open_app, loop) == 200
    assert _status(open_app, loop, path="/") == 200
    assert _ws_status(open_app, evil, f"http://{evil}") == 403  # DNS rebinding: Host and Origin the attacker's
    assert _ws_status(open_app, evil, None) == 403
    assert _ws_status(open_app, loop, f"http://{evil}") == 403  # a foreign page opening ws://127.0.0.1
    for path in ("/", "/_stcore/health", "/queue"):
        assert _status(open_app, evil, path=path) == 403
        assert _status(open_app, loop, origin=f"http://{evil}", path=path) == 403
    assert _status(open_app, f"{PUBLIC}:{port}") == 200  # a name the project configured
    assert "external ip" not in open_app.log().lower()  # refused before Streamlit would ask a public service


@pytest.mark.parametrize("headers", PROXY_HEADERS + [{}], ids=lambda h: next(iter(h), "direct"))
def test_with_accounts_every_request_gets_the_login_page(accounts_app, headers):
    run = page(accounts_app, headers=headers)
    assert is_login(run) and not run.alerts(), run.texts


def _guess(server: Server, login: str, password: str, headers: dict | None = None):
    async def go():
        async with server.tab(headers=headers or {}) as tab:
            form = await tab.run()
            return await tab.submit(form, {"Login": login, "Password": password}, "Sign in")
    return go()


def _gather(*coroutines):
    async def go():
        return await asyncio.gather(*coroutines)
    return asyncio.run(go())


def test_forty_concurrent_guesses_run_at_most_the_limit_of_password_checks(accounts_app):
    params = yaml.safe_load((accounts_app.project / "params.yaml").read_text())["review"]
    per_login, per_client = params["login_attempts"], params["login_attempts_per_client"]
    before = accounts_app.checks(login="rev@example.org")
    runs = _gather(*(_guess(accounts_app, "rev@example.org", f"guess {i}!") for i in range(40)))
    assert all("Unknown login or wrong password" in r.alerts() for r in runs)
    evaluated = accounts_app.checks(login="rev@example.org") - before
    assert 1 <= evaluated <= per_login, evaluated
    assert accounts_app.log().count("login throttled for rev@example.org") >= 40 - per_login
    # Per client: 40 guesses at 40 different logins from one address (a local proxy's X-Forwarded-For)
    client = "203.0.113.7"
    runs = _gather(*(_guess(accounts_app, f"user{i}@example.org", "whatever pass", {"X-Forwarded-For": client})
                     for i in range(40)))
    assert 1 <= accounts_app.checks(client=client) <= per_client
    # The count lives in SQLite beside the accounts file: what the server admitted is what it checked
    table = throttle.Throttle(throttle.db_for(accounts_app.accounts), params["login_window_s"])
    assert table.open_attempts(login="rev@example.org") == evaluated
    assert table.open_attempts(client=client) == accounts_app.checks(client=client)


def test_an_idle_session_has_expired(accounts_app, tmp_path):
    accounts_app.accounts.with_name("users.json.attempts.sqlite").unlink(missing_ok=True)  # earlier guesses
    auth.add_user(accounts_app.accounts, "idle@example.org", PASSWORD)
    idle_s = yaml.safe_load((accounts_app.project / "params.yaml").read_text())["review"]["idle_timeout_s"]

    async def go():
        async with accounts_app.tab() as tab:
            form = await tab.run()
            inside = await tab.submit(form, {"Login": "idle@example.org", "Password": PASSWORD}, "Sign in")
            still = await tab.run()  # active: still signed in
            await asyncio.sleep(idle_s + 1.0)  # idle longer than review.idle_timeout_s
            return inside, still, await tab.run()
    inside, still, after = asyncio.run(go())
    assert not is_login(inside) and "Review queue" in inside.text(), inside.texts
    assert not is_login(still) and "Review queue" in still.text()
    assert is_login(after) and "has been signed out" in after.text(), after.texts


def test_an_old_hash_is_upgraded_at_the_next_login(accounts_app):
    old = auth.hash_password(PASSWORD, n=2**14)
    users = json.loads(accounts_app.accounts.read_text())
    users["users"]["old@example.org"] = {"hash": old, "created": "2025-01-01T00:00:00Z"}
    accounts_app.accounts.write_text(json.dumps(users))

    async def go():
        async with accounts_app.tab() as tab:
            form = await tab.run()
            return await tab.submit(form, {"Login": "old@example.org", "Password": PASSWORD}, "Sign in")
    inside = asyncio.run(go())
    assert "Review queue" in inside.text(), inside.texts
    stored = auth.read_users(accounts_app.accounts)["old@example.org"]["hash"]
    assert stored.startswith(f"scrypt${2**17}$8$1$") and auth.verify_password(PASSWORD, stored)
    assert "upgraded the password hash of old@example.org" in accounts_app.log()


def test_a_proxy_on_plain_http_gets_no_login_form(accounts_app):
    run = page(accounts_app, headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"})
    assert "Password" not in run.widgets and "over plain HTTP" in run.alerts(), run.texts
