"""A local Label Studio server: start (`serve`), `stop` and `status`, safely configured.

Label Studio 1.23.2 lives in its own venv (`.ls-venv`, made by `make .ls-venv`): its Django stack
must not share a resolver with torch. Its data (SQLite database, Django secret key, exports,
uploads) lives under the git-ignored `.luskit/label-studio/`, where HOME points too, so nothing is
written to the user's ~/.local.

Every trap seen with 1.23.2 is closed here (see ../shared/docs/toolchain.md):
- it binds every interface unless `--internal-host 127.0.0.1` is given;
- when the port is taken it silently starts on another one: we refuse a busy port up front and
  stop it again if its log says it moved;
- it reads un-prefixed HOST/PORT/USERNAME/PASSWORD variables: removed from its environment;
- the preset API token is refused unless LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true was set before
  the very first start (it is always set here);
- Sentry, the version check and analytics reach the internet unless switched off (always off here).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from luskit.pseudonym import without_key

LS_VERSION = "1.23.2"
DEFAULT_PORT = 8080
DEFAULT_EMAIL = "admin@luskit.local"
TOKEN_RE = re.compile(r"^[0-9a-f]{40}$")
ENV_EMAIL, ENV_PASSWORD, ENV_TOKEN = "LUSKIT_LS_ADMIN_EMAIL", "LUSKIT_LS_PASSWORD", "LUSKIT_LS_TOKEN"
# Label Studio reads these un-prefixed names too (get_env tries LABEL_STUDIO_X, HEARTEX_X, X):
# a shell's PORT or USERNAME must not reconfigure it.
_LEAKY = ("HOST", "PORT", "USERNAME", "PASSWORD")


class ServerError(RuntimeError):
    """A problem the user can fix; the message says how."""


@dataclass(frozen=True)
class Credentials:
    """The admin account. Secrets never appear in repr(), logs or output."""

    email: str
    password: str = field(repr=False)
    token: str = field(repr=False)


@dataclass(frozen=True)
class ServerConfig:
    """Where a server's files live and where it listens.

    `home` holds everything the server writes (data/, home/, the pid, state and log files and
    credentials.json); `artifacts` is the local-files document root (task URLs are
    /data/local-files/?d=videos/<video_id>.mp4, see luskit.schema.ls_video_url).
    """

    home: Path
    artifacts: Path
    ls_bin: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"

    @classmethod
    def for_project(cls, root: Path, port: int | None = None) -> "ServerConfig":
        """The project's server: .luskit/label-studio, artifacts/, .ls-venv (LUSKIT_LS_BIN overrides)."""
        root = Path(root).resolve()
        port = port or int(os.environ.get("LUSKIT_LS_PORT", DEFAULT_PORT))
        ls_bin = Path(os.environ.get("LUSKIT_LS_BIN", root / ".ls-venv" / "bin" / "label-studio"))
        return cls(home=root / ".luskit" / "label-studio", artifacts=root / "artifacts", ls_bin=ls_bin, port=port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def state_file(self) -> Path:
        return self.home / "server.json"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def credentials_file(self) -> Path:
        return self.home / "credentials.json"


# ---------------------------------------------------------------- credentials


def _write_private(path: Path, text: str) -> None:
    """Create `path` with mode 0600 from the first byte (never world-readable, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def load_credentials(cfg: ServerConfig, create: bool = True) -> Credentials:
    """Admin email/password/token: each from LUSKIT_LS_* if set, else from credentials.json.

    The file is generated once (random 40-hex token, random password) with 0600 permissions when
    it is missing and `create` is true.
    """
    path = cfg.credentials_file
    stored: dict = {}
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # someone loosened it: secrets stay owner-only
        stored = json.loads(path.read_text())
    elif create and not all(os.environ.get(k) for k in (ENV_PASSWORD, ENV_TOKEN)):
        stored = {"email": DEFAULT_EMAIL, "password": secrets.token_urlsafe(18), "token": secrets.token_hex(20)}
        _write_private(path, json.dumps(stored, indent=2) + "\n")
    creds = Credentials(
        email=os.environ.get(ENV_EMAIL) or stored.get("email") or DEFAULT_EMAIL,
        password=os.environ.get(ENV_PASSWORD) or stored.get("password", ""),
        token=os.environ.get(ENV_TOKEN) or stored.get("token", ""),
    )
    if not creds.token or not creds.password:
        raise ServerError(f"no Label Studio credentials: set {ENV_TOKEN} and {ENV_PASSWORD}, "
                          f"or run `luskit label serve` once to generate {path}")
    if not TOKEN_RE.match(creds.token):
        raise ServerError(f"{ENV_TOKEN} must be 40 lowercase hex characters (e.g. `openssl rand -hex 20`)")
    return creds


# ---------------------------------------------------------------- environment


def child_env(cfg: ServerConfig, creds: Credentials, base: dict | None = None) -> dict[str, str]:
    """The Label Studio process environment: loopback-only, offline, preset admin, local files on; never the
    pseudonymisation key (Label Studio has no use for it)."""
    env = without_key(os.environ if base is None else base)
    for name in _LEAKY:
        env.pop(name, None)
        env.pop(f"HEARTEX_{name}", None)
    env.update({
        "HOME": str(cfg.home / "home"),
        "LABEL_STUDIO_BASE_DATA_DIR": str(cfg.data_dir),
        "LABEL_STUDIO_USERNAME": creds.email,
        "LABEL_STUDIO_PASSWORD": creds.password,
        "LABEL_STUDIO_USER_TOKEN": creds.token,
        # Must be true before the very first start or the preset token is refused with 401.
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(Path(cfg.artifacts).resolve()),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "PYTHONUNBUFFERED": "1",
    })
    # A reader who opens a task and walks away holds its lock this long; with overlap 2 that lock
    # keeps the task from the second reader (Label Studio's default is a whole day).
    env.setdefault("LABEL_STUDIO_TASK_LOCK_TTL", "3600")
    return env


# ---------------------------------------------------------------- process helpers


def port_busy(host: str, port: int) -> bool:
    """True if something listens on host:port or the port cannot be bound there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def health(url: str, timeout: float = 2.0) -> bool:
    """True if GET {url}/health answers 200."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _is_label_studio(pid: int) -> bool:
    """The pid still belongs to a label-studio process (pids get reused after a crash)."""
    try:
        return b"label-studio" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def read_pid(cfg: ServerConfig) -> int | None:
    """The recorded server pid if that process is still a running label-studio, else None."""
    try:
        pid = int(cfg.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and _is_label_studio(pid) else None


def read_state(cfg: ServerConfig) -> dict:
    try:
        return json.loads(cfg.state_file.read_text())
    except (OSError, ValueError):
        return {}


def log_tail(cfg: ServerConfig, creds: Credentials | None = None, lines: int = 15) -> str:
    """The end of the server log with secrets masked (for error messages)."""
    try:
        text = cfg.log_file.read_text(errors="replace")
    except OSError:
        return ""
    if creds is not None:
        text = text.replace(creds.token, "<token>").replace(creds.password, "<password>")
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- serve / stop / status


def start(cfg: ServerConfig, creds: Credentials | None = None, timeout: float = 240.0) -> dict:
    """Start Label Studio in the background and wait until /health answers; returns the state dict.

    Idempotent: a healthy server already recorded for this config is reused. Raises ServerError
    (with what to do) when the venv is missing, the port is busy, or the server does not come up.
    """
    pid = read_pid(cfg)
    if pid is not None:
        state = read_state(cfg)
        if state.get("port") == cfg.port and health(cfg.url):
            return {**state, "reused": True}
        raise ServerError(f"a Label Studio (pid {pid}) from {cfg.home} is already running on port "
                          f"{state.get('port')}: run `luskit label stop` first")
    if not Path(cfg.ls_bin).exists():
        raise ServerError(f"{cfg.ls_bin} not found: run `make .ls-venv` (Label Studio {LS_VERSION} in its own venv)")
    if not Path(cfg.artifacts).is_dir():
        raise ServerError(f"{cfg.artifacts} does not exist: run `dvc repro deidentify` first (videos are served from it)")
    if port_busy(cfg.host, cfg.port):
        raise ServerError(f"port {cfg.port} on {cfg.host} is in use: pick another with --port "
                          "(Label Studio would silently move to a different port)")
    creds = creds or load_credentials(cfg)
    cfg.home.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.home, 0o700)  # the database, Django secret key and exports: owner only
    for d in (cfg.data_dir, cfg.home / "home"):
        d.mkdir(parents=True, exist_ok=True)
    log_offset = cfg.log_file.stat().st_size if cfg.log_file.exists() else 0
    cmd = [str(Path(cfg.ls_bin).absolute()), "start", "--no-browser", "--internal-host", cfg.host, "-p", str(cfg.port)]
    with open(cfg.log_file, "ab") as log:
        log.write(f"\n=== luskit: starting Label Studio on {cfg.url} at {time.strftime('%FT%TZ', time.gmtime())}\n".encode())
        proc = subprocess.Popen(cmd, env=child_env(cfg, creds), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cfg.home, start_new_session=True)
    cfg.pid_file.write_text(f"{proc.pid}\n")
    state = {"url": cfg.url, "pid": proc.pid, "host": cfg.host, "port": cfg.port, "log": str(cfg.log_file),
             "data_dir": str(cfg.data_dir), "document_root": str(Path(cfg.artifacts).resolve())}
    cfg.state_file.write_text(json.dumps(state, indent=2) + "\n")
    _wait_healthy(cfg, proc, creds, timeout, log_offset)
    return state


def _moved_port(cfg: ServerConfig, log_offset: int) -> bool:
    """This start's log says Label Studio found the port taken and went elsewhere."""
    with open(cfg.log_file, "rb") as fh:
        fh.seek(log_offset)
        return b"Trying to start at" in fh.read()


def _wait_healthy(cfg: ServerConfig, proc: subprocess.Popen, creds: Credentials, timeout: float,
                  log_offset: int) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _forget(cfg)
            raise ServerError(f"Label Studio exited with code {proc.returncode} during start; "
                              f"log {cfg.log_file}:\n{log_tail(cfg, creds)}")
        if health(cfg.url, timeout=1.0):
            if _moved_port(cfg, log_offset):
                stop(cfg)
                raise ServerError(f"Label Studio moved off port {cfg.port} (it was taken meanwhile): stopped it; "
                                  "start again with another --port")
            return
        time.sleep(0.5)
    stop(cfg)
    raise ServerError(f"Label Studio did not answer {cfg.url}/health within {timeout:.0f} s (first start runs "
                      f"migrations, ~30 s); stopped it. Log {cfg.log_file}:\n{log_tail(cfg, creds)}")


def _forget(cfg: ServerConfig) -> None:
    cfg.pid_file.unlink(missing_ok=True)
    cfg.state_file.unlink(missing_ok=True)


def stop(cfg: ServerConfig, timeout: float = 20.0) -> bool:
    """Terminate the recorded server (its whole process group); True if one was running."""
    pid = read_pid(cfg)
    if pid is None:
        _forget(cfg)
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # started with start_new_session: pgid == pid
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(pid)
    _forget(cfg)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(cfg: ServerConfig) -> dict:
    """{url, pid, running, healthy, data_dir, log} of the recorded server."""
    pid = read_pid(cfg)
    state = read_state(cfg)
    url = state.get("url", cfg.url)
    return {"url": url, "pid": pid, "running": pid is not None, "healthy": pid is not None and health(url),
            "data_dir": str(cfg.data_dir), "log": str(cfg.log_file)}


if __name__ == "__main__":  # pragma: no cover
    print("use `luskit label serve|stop|status`", file=sys.stderr)
