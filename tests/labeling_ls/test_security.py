"""The server listens on 127.0.0.1 only, is started offline, and its secrets stay secret: never in
command output or Python logs, never in a git-tracked file, stored owner-only."""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labeling.ls import server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _listening(port: int) -> set[str]:
    """Local addresses listening on `port`, from /proc/net/tcp{,6} (what `ss -ltn` shows)."""
    found = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        path = Path(f"/proc/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state != "0A" or int(hexport, 16) != port:  # 0A = LISTEN
                continue
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
            else:
                raw = b"".join(bytes.fromhex(addr[i:i + 8])[::-1] for i in range(0, 32, 8))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent; this only picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_listens_on_loopback_only(ls_server):
    assert _listening(ls_server.cfg.port) == {"127.0.0.1"}
    ip = _non_loopback_ip()
    if ip is not None:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((ip, ls_server.cfg.port)) != 0, f"reachable on {ip}"
    ss = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True) if _has("ss") else None
    if ss is not None and ss.returncode == 0:
        lines = [ln for ln in ss.stdout.splitlines() if f":{ls_server.cfg.port} " in ln]
        assert lines and all(f"127.0.0.1:{ls_server.cfg.port}" in ln for ln in lines), lines


def _has(cmd: str) -> bool:
    from shutil import which

    return which(cmd) is not None


def test_server_environment_is_offline_and_clean(ls_server):
    """The running process got the offline switches and none of the un-prefixed names it would misread."""
    env = dict(kv.split("=", 1) for kv in Path(f"/proc/{ls_server.pid()}/environ").read_bytes()
               .decode(errors="replace").split("\0") if "=" in kv)
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
    assert env["COLLECT_ANALYTICS"] == "false" and env["LATEST_VERSION_CHECK"] == "false"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"] == str(ls_server.artifacts.resolve())
    assert not {"HOST", "PORT", "USERNAME", "PASSWORD"} & set(env)
    leaky = {"HOST": "0.0.0.0", "PORT": "1", "USERNAME": "x", "PASSWORD": "y", "HEARTEX_PORT": "2"}
    child = server.child_env(ls_server.cfg, ls_server.creds, base={**leaky, "PATH": "/bin"})
    assert not set(leaky) & set(child)


def test_busy_port_is_refused(ls_server, tmp_path):
    """Label Studio would silently move to another port; server.start refuses instead."""
    cfg = server.ServerConfig(home=tmp_path / "other", artifacts=ls_server.artifacts, ls_bin=ls_server.cfg.ls_bin,
                              port=ls_server.cfg.port)
    with pytest.raises(server.ServerError, match="in use"):
        server.start(cfg, ls_server.creds)
    assert not (tmp_path / "other" / "server.pid").exists()


def test_secrets_stored_owner_only(ls_server):
    assert stat.S_IMODE(ls_server.cfg.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(ls_server.cfg.home.stat().st_mode) == 0o700
    assert len(ls_server.creds.token) == 40 and int(ls_server.creds.token, 16) >= 0
    assert ls_server.creds.token not in repr(ls_server.creds)
    assert ls_server.creds.password not in repr(ls_server.creds)


def test_token_never_in_output_or_logs(ls_server, tmp_path, monkeypatch, caplog, capfd):
    """Every `luskit label` command's output and every Python log record are free of the token/password."""
    from labeling.ls.cli import label_app

    monkeypatch.setenv("LUSKIT_LS_URL", ls_server.url)
    monkeypatch.setenv("LUSKIT_LS_TOKEN", ls_server.creds.token)
    monkeypatch.setenv("LUSKIT_LS_PASSWORD", ls_server.creds.password)
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    art = str(ls_server.artifacts)
    outputs = []
    for args in (["status"], ["init", "--round", "sec", "--storage-path", f"{art}/videos"],
                 ["push", "--round", "sec", "--artifacts", art, "--gold-fraction", "0", "--quiet"],
                 ["pull", "--round", "sec", "--out", str(tmp_path)]):
        res = runner.invoke(label_app, args)
        outputs.append(res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    # a wrong token: the error must not echo either token
    monkeypatch.setenv("LUSKIT_LS_TOKEN", "0" * 40)
    res = runner.invoke(label_app, ["pull", "--round", "sec", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "refused the API token" in res.output
    outputs.append(res.output)
    captured = capfd.readouterr()
    text = "\n".join(outputs) + caplog.text + captured.out + captured.err
    for secret in (ls_server.creds.token, ls_server.creds.password):
        assert secret not in text


def test_token_not_in_tracked_files(ls_server):
    """No git-tracked file holds this session's token, nor the project's own stored token if there is one."""
    tokens = {ls_server.creds.token}
    project_creds = REPO / ".luskit" / "label-studio" / "credentials.json"
    if project_creds.exists():
        import json

        tokens.add(json.loads(project_creds.read_text())["token"])
    tokens |= {os.environ[k] for k in (server.ENV_TOKEN,) if os.environ.get(k)}
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    assert len(files) > 10
    offenders = []
    for name in filter(None, files):
        path = REPO / name.decode()
        if path.is_file():
            data = path.read_bytes()
            offenders += [name.decode() for t in tokens if t.encode() in data]
    assert offenders == []
    for path in (".luskit/label-studio/credentials.json", ".ls-venv/bin/label-studio"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert ignored.returncode == 0, f"{path} must stay git-ignored"
