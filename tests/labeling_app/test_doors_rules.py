"""The doors' rules without a server: which requests count as loopback, the Host/Origin flags handed to
Streamlit, refusals at launch (declared proxy or plain HTTP without the right settings), and the login
throttle across threads and processes sharing one accounts file (checks counted from auth's audit log)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from labeling.app import auth, doors, launch
from labeling.app.settings import Project, ReviewParams
from luskit.config import ConfigError

PASSWORD = "correct horse battery"
PER_LOGIN = 5


@pytest.mark.parametrize("headers, peer, why", [
    ({}, None, None),  # no HTTP request behind the session (AppTest)
    ({"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:8501"}, None, None),
    ({"Host": "localhost:8501"}, None, None),
    ({"Host": "[::1]:8501", "Origin": "http://[::1]:8501"}, None, None),
    ({"Host": "127.0.0.1:8501", "X-Forwarded-For": "127.0.0.1"}, None, "proxy"),  # even claiming loopback
    ({"Host": "127.0.0.1:8501", "x-forwarded-proto": "https"}, None, "proxy"),
    ({"Host": "127.0.0.1:8501", "Forwarded": "for=1.2.3.4"}, None, "proxy"),
    ({"Host": "127.0.0.1:8501", "X-Real-IP": "1.2.3.4"}, None, "proxy"),
    ({"Host": "127.0.0.1:8501", "Via": "1.1 nginx"}, None, "proxy"),
    ({"Host": "review.example.org"}, None, "host name"),
    ({"Host": "rebind.evil.example:8501"}, None, "host name"),
    ({"Origin": "http://127.0.0.1:8501"}, None, "host name"),  # no Host at all
    ({"Host": "127.0.0.1:8501", "Origin": "http://rebind.evil.example"}, None, "page"),
    ({"Host": "127.0.0.1:8501", "Origin": "null"}, None, "page"),
    ({"Host": "127.0.0.1:8501"}, "192.168.1.20", "another machine"),
])
def test_what_counts_as_a_request_straight_from_loopback(headers, peer, why):
    got = doors.not_direct(headers, peer)
    assert (got is None) if why is None else (why in got), got


def test_streamlit_gets_the_allow_list_and_protections():
    cmd = launch.streamlit_command("127.0.0.1", 8599, ReviewParams(allowed_hosts=("review.example.org",)))
    pairs = list(zip(cmd, cmd[1:]))
    assert [v for k, v in pairs if k == "--server.allowedHosts"] == ["localhost", "127.0.0.1", "::1",
                                                                     "review.example.org"]
    assert ("--server.corsAllowedOrigins", "https://review.example.org") in pairs
    for flag, value in (("--server.enableCORS", "true"), ("--server.enableXsrfProtection", "true"),
                        ("--server.enableAgentApi", "false")):
        assert (flag, value) in pairs
    assert cmd[cmd.index("run") + 1].endswith("labeling/app/serve.py")  # the app behind doors.HostGate
    default = launch.streamlit_command("127.0.0.1", 8599)
    assert [default[i + 1] for i, k in enumerate(default) if k == "--server.allowedHosts"] == list(doors.LOOPBACK_HOSTS)
    env = launch.child_env(_project(Path("/tmp/p"), Path("/tmp/u.json")), Path("/tmp/p/params.yaml"),
                           base={"FORWARDED_ALLOW_IPS": "*", "STREAMLIT_SERVER_ALLOWED_HOSTS": "*", "PATH": "/bin"})
    assert "FORWARDED_ALLOW_IPS" not in env and "STREAMLIT_SERVER_ALLOWED_HOSTS" not in env


@pytest.mark.parametrize("bad", ["*", "http://x.org", "x.org/path", "Upper.Org", ""])
def test_allowed_hosts_must_be_plain_names(bad):
    with pytest.raises((ValueError, ConfigError), match="allowed host"):
        ReviewParams(allowed_hosts=(bad,))


def _project(root: Path, accounts: Path, **review) -> Project:
    return Project(root=root, params=ReviewParams(**review), primary_model="luvnet", auth_file=accounts)


def test_launch_refuses_a_declared_proxy_without_accounts_and_plain_http_logins(tmp_path):
    (tmp_path / "artifacts").mkdir()
    accounts = tmp_path / "users.json"
    with pytest.raises(launch.LaunchError, match="behind a proxy .* without authentication"):
        launch.preflight(_project(tmp_path, accounts, behind_proxy=True), "127.0.0.1", 8599)
    auth.add_user(accounts, "rev@example.org", PASSWORD)
    with pytest.raises(launch.LaunchError, match="over plain HTTP"):
        launch.preflight(_project(tmp_path, accounts), "0.0.0.0", 8599)
    with pytest.raises(launch.LaunchError, match="review.behind_proxy: true"):
        launch.preflight(_project(tmp_path, accounts), "192.168.1.20", 8599)
    # Told otherwise: a TLS proxy in front, or a network trusted on purpose
    assert doors.plain_http_problem("0.0.0.0", ReviewParams(behind_proxy=True), True) is None
    assert doors.plain_http_problem("0.0.0.0", ReviewParams(insecure_http=True), True) is None
    assert doors.plain_http_problem("127.0.0.1", ReviewParams(), True) is None  # never leaves the machine
    assert launch.preflight(_project(tmp_path, accounts, behind_proxy=True), "127.0.0.1", 8599) is True


def _guesses(args: tuple[str, str, int]) -> int:
    """In a fresh process: `threads` concurrent wrong guesses; returns how many password checks ran here."""
    path, client, threads = args
    counted = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("password check for "):
                counted.append(record)

    auth.LOG.addHandler(Count())
    throttle = auth.throttle_for(Path(path), per_account=PER_LOGIN, per_client=100)
    workers = [threading.Thread(target=auth.login, args=(Path(path), "rev@example.org", f"guess {i}!", client,
                                                          throttle)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(counted)


def test_forty_guesses_from_threads_in_four_processes_check_at_most_the_limit(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "rev@example.org", PASSWORD)
    with mp.get_context("spawn").Pool(4) as pool:
        checks = pool.map(_guesses, [(str(path), f"10.0.0.{k}", 10) for k in range(4)])
    assert 1 <= sum(checks) <= PER_LOGIN, checks
    throttle = auth.throttle_for(path, per_account=PER_LOGIN)
    assert throttle.open_attempts(login="rev@example.org") == sum(checks)
    assert auth.login(path, "rev@example.org", PASSWORD, throttle=throttle) is None  # locked for the window


def test_an_old_hash_verifies_and_is_replaced(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "rev@example.org", PASSWORD)
    users = auth.read_users(path)
    users["rev@example.org"]["hash"] = old = auth.hash_password(PASSWORD, n=2**14)
    auth._write_users(path, users)
    assert auth.login(path, "rev@example.org", "not it at all") is None
    assert auth.read_users(path)["rev@example.org"]["hash"] == old  # a failed login changes nothing
    assert auth.login(path, "rev@example.org", PASSWORD) == "rev@example.org"
    new = auth.read_users(path)["rev@example.org"]["hash"]
    assert new != old and auth.is_current(new) and auth.verify_password(PASSWORD, new)
    assert auth.login(path, "rev@example.org", PASSWORD) == "rev@example.org"
