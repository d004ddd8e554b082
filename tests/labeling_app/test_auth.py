"""Reviewer identity: salted scrypt accounts, exposure rules, the login page blocking every page, the CLI helpers."""

from __future__ import annotations

import json
import stat

import pytest

from labeling.app import auth, launch
from labeling.app.settings import load_project
from tests.labeling_app.helpers import app_test, clean_env, luskit

PASSWORD = "correct horse battery"


def test_hashes_are_salted_scrypt_and_verify():
    one, two = auth.hash_password(PASSWORD), auth.hash_password(PASSWORD)
    assert one != two and one.startswith("scrypt$131072$8$1$")  # a fresh salt each time; OWASP's N=2^17
    assert auth.is_current(one) and not auth.is_current(auth.hash_password(PASSWORD, n=2**14))
    assert auth.verify_password(PASSWORD, one) and auth.verify_password(PASSWORD, two)
    assert not auth.verify_password(PASSWORD + "!", one)
    for broken in ("", "scrypt$1$2", "pbkdf2$x$y$z$a$b", one.replace("scrypt", "md5")):
        assert not auth.verify_password(PASSWORD, broken)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
                                            (None, False), ("10.1.2.3", False), ("review.example.org", False)])
def test_what_counts_as_loopback(host, loopback):
    assert auth.is_loopback(host) is loopback


def test_accounts_file_is_private_and_holds_no_password(tmp_path):
    path = tmp_path / "users.json"
    assert auth.add_user(path, "Dr.Reviewer@Example.org", PASSWORD) is True
    assert auth.add_user(path, "dr.reviewer@example.org", PASSWORD + "2") is False  # reset, same login
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    users = json.loads(text)["users"]
    assert list(users) == ["dr.reviewer@example.org"]
    assert auth.login(path, "DR.REVIEWER@example.org", PASSWORD + "2") == "dr.reviewer@example.org"
    assert auth.login(path, "dr.reviewer@example.org", PASSWORD) is None
    assert auth.login(path, "nobody", PASSWORD) is None
    with pytest.raises(auth.AuthError, match="too short"):
        auth.add_user(path, "x@y.z", "short")
    with pytest.raises(auth.AuthError, match="lower-case login"):
        auth.add_user(path, "../evil", PASSWORD)
    assert auth.remove_user(path, "dr.reviewer@example.org") and auth.read_users(path) == {}


def test_repeated_failures_lock_a_login(tmp_path):
    throttle = auth.throttle_for(tmp_path / "users.json", window_s=600.0, per_account=10, per_client=30)
    for i in range(10):
        assert throttle.admit("a", "1.2.3.4", now=100.0 + i) is not None
    assert throttle.admit("a", "5.6.7.8", now=120.0) is None  # the login is locked, from any client
    assert throttle.admit("b", "1.2.3.4", now=120.0) is not None  # another login is not
    assert throttle.admit("a", "1.2.3.4", now=100.0 + 600.0 + 10) is not None  # the window moved on
    for i in range(30 - 1):
        assert throttle.admit(f"user{i}", "9.9.9.9", now=1000.0) is not None
    assert throttle.admit("c", "9.9.9.9", now=1000.0) is not None  # the 30th from this client
    assert throttle.admit("d", "9.9.9.9", now=1000.0) is None  # the client is over its limit, whatever the login
    ok = throttle.admit("e", "8.8.8.8", now=1000.0)
    throttle.succeeded(ok)  # a successful login stops counting
    assert throttle.open_attempts(login="e", now=1000.0) == 0 and throttle.open_attempts(client="9.9.9.9", now=1000.0) == 30
    assert stat.S_IMODE(throttle.db.stat().st_mode) == 0o600


def test_exposed_hosts_need_accounts(tmp_path):
    path = tmp_path / "users.json"
    assert auth.check_exposure("127.0.0.1", path) is False  # loopback, no accounts: pick a name
    for host in ("0.0.0.0", "192.168.1.20", None):
        with pytest.raises(auth.AuthError, match="refusing to serve"):
            auth.check_exposure(host, path)
    auth.add_user(path, "rev@example.org", PASSWORD)
    assert auth.check_exposure("0.0.0.0", path) is True and auth.check_exposure("127.0.0.1", path) is True


def test_launch_refuses_an_exposed_start_and_keeps_streamlit_settings_out(app_project, tmp_path):
    project = load_project(app_project)
    with pytest.raises(launch.LaunchError, match="without authentication"):
        launch.preflight(project, "0.0.0.0", 8599)
    cmd = launch.streamlit_command("127.0.0.1", 8599)
    for flag, value in (("--server.headless", "true"), ("--server.address", "127.0.0.1"),
                        ("--browser.gatherUsageStats", "false"), ("--server.fileWatcherType", "none")):
        assert cmd[cmd.index(flag) + 1] == value
    env = launch.child_env(project, app_project / "params.yaml",
                           base={"STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false", "PATH": "/bin"})
    assert "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION" not in env and env["LUSKIT_PROJECT"] == str(project.root)


def test_cli_refuses_to_start_exposed_without_accounts(app_project, tmp_path):
    env = clean_env(LUSKIT_REVIEW_AUTH_FILE=str(tmp_path / "none.json"))
    run = luskit("review", "--host", "0.0.0.0", "--port", "8599", cwd=app_project, env=env, timeout=60)
    assert run.returncode == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in run.stderr
    assert "luskit review add-user" in run.stderr


def test_cli_add_user_reads_the_password_from_stdin_never_argv(app_project, tmp_path):
    path = tmp_path / "accounts" / "users.json"
    env = clean_env(LUSKIT_REVIEW_AUTH_FILE=str(path))
    run = luskit("review", "add-user", "Rev@Example.org", cwd=app_project, env=env, stdin=PASSWORD + "\n")
    assert run.returncode == 0, run.stderr
    assert f"added rev@example.org in {path}" in run.stdout and PASSWORD not in run.stdout + run.stderr
    assert auth.login(path, "rev@example.org", PASSWORD) == "rev@example.org"
    listed = luskit("review", "users", cwd=app_project, env=env)
    assert listed.stdout.startswith("rev@example.org\t") and "scrypt" not in listed.stdout
    short = luskit("review", "add-user", "x@example.org", cwd=app_project, env=env, stdin="short\n")
    assert short.returncode == 2 and "too short" in short.stderr


@pytest.fixture
def accounts(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "rev@example.org", PASSWORD)
    return path


def test_with_accounts_every_page_needs_a_login(serve_as, app_project, accounts):
    serve_as(app_project, address="0.0.0.0", auth_file=accounts)
    at = app_test().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["luskit review"] and not at.selectbox  # no name picking
    for page in ("views/queue.py", "views/clip.py", "views/data.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)  # not registered until login
    at.text_input(key="login_name").input("rev@example.org")
    at.text_input(key="login_password").input("wrong password!")
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert "wrong password" in " ".join(e.value for e in at.error) and not at.get("progress")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Review queue"]
    assert "rev@example.org" in " ".join(m.value for m in at.sidebar.markdown)


def test_a_picked_name_stops_counting_once_accounts_exist(serve_as, app_project, tmp_path):
    path = tmp_path / "users.json"
    serve_as(app_project, auth_file=path)
    at = app_test().run()
    at.selectbox(key="pick_reviewer").select("senior@demo.luskit.invalid").run()
    at.button(key="start").click().run()
    assert [t.value for t in at.title] == ["Review queue"]
    auth.add_user(path, "rev@example.org", PASSWORD)  # an administrator configures accounts meanwhile
    at.run()
    assert [t.value for t in at.title] == ["luskit review"] and at.text_input(key="login_password")


def test_an_exposed_app_without_accounts_shows_nothing(serve_as, app_project, tmp_path):
    serve_as(app_project, address="0.0.0.0", auth_file=tmp_path / "none.json")
    at = app_test().run()
    assert "refusing to serve on 0.0.0.0" in " ".join(e.value for e in at.error)
    assert not at.selectbox and not at.text_input and not at.get("progress")
