"""`luskit review`: check that serving is safe, then replace this process with `streamlit run serve.py`.

serve.py is app.py as an st.App behind doors.HostGate (Host/Origin allow-list on every request). The
Streamlit process gets the project through environment variables (settings.ENV_*), runs in the
project folder, and is started with every option that matters on the command line (flags beat
STREAMLIT_* variables and config files): headless, bound to the chosen address, no usage
statistics, no file watcher, CORS and XSRF protection on, the agent API off, the allowed host names
(doors.streamlit_flags). STREAMLIT_* variables are removed from its environment so a shell setting
cannot quietly weaken it (e.g. switch off XSRF protection); so is FORWARDED_ALLOW_IPS, which would let
uvicorn take a client address from headers sent by hosts other than a local proxy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from labeling.app import auth, doors
from labeling.app.settings import ENV_AUTH_FILE, ENV_PARAMS, ENV_PROJECT, Project, ReviewParams
from luskit.pseudonym import without_key

APP = Path(__file__).with_name("serve.py")


class LaunchError(RuntimeError):
    """The app cannot start; the message says what to do."""


def streamlit_command(host: str, port: int, params: ReviewParams | None = None,
                      python: str = sys.executable) -> list[str]:
    """The `streamlit run` argv (toolchain.md: up in < 1 s, /_stcore/health answers when ready)."""
    return [python, "-m", "streamlit", "run", str(APP),
            "--server.headless", "true", "--server.address", host, "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--client.toolbarMode", "minimal",
            *doors.streamlit_flags(params or ReviewParams())]


def child_env(project: Project, params_path: Path, base: dict | None = None) -> dict[str, str]:
    """The app's environment: the project, its params and accounts file; no STREAMLIT_* overrides, no
    FORWARDED_ALLOW_IPS (uvicorn then trusts X-Forwarded-For only from a proxy on 127.0.0.1) and no
    pseudonymisation key (the app reads only de-identified artifacts)."""
    env = {k: v for k, v in without_key(os.environ if base is None else base).items()
           if not k.startswith("STREAMLIT_") and k != "FORWARDED_ALLOW_IPS"}
    env.update({ENV_PROJECT: str(project.root), ENV_PARAMS: str(Path(params_path).resolve()),
                ENV_AUTH_FILE: str(project.auth_file), "PYTHONUNBUFFERED": "1"})
    return env


def preflight(project: Project, host: str, port: int) -> bool:
    """Refuse unsafe or impossible starts; returns whether logins are required."""
    from labeling.ls.server import port_busy

    try:
        needs_login = auth.check_exposure(host, project.auth_file, project.params.behind_proxy)
    except auth.AuthError as err:
        raise LaunchError(str(err)) from None
    plain = doors.plain_http_problem(host, project.params, needs_login)
    if plain:
        raise LaunchError(plain)
    if not project.artifacts.is_dir():
        raise LaunchError(f"{project.artifacts} does not exist: run the pipeline first (`luskit demo` or `dvc repro`)")
    if port_busy("127.0.0.1" if host in ("0.0.0.0", "::") else host, port):
        raise LaunchError(f"port {port} on {host} is in use (or {host} is not an address of this machine): pick "
                          "another with --port, or a host this machine has")
    return needs_login


def banner(project: Project, host: str, port: int, needs_login: bool) -> str:
    who = ("reviewers log in (accounts in " + str(project.auth_file) + ")" if needs_login else
           f"reviewers pick their name ({', '.join(project.params.reviewers) or 'none configured: add review.reviewers'})")
    names = ", ".join(doors.allowed_hosts(project.params))
    return (f"luskit review: http://{host}:{port}  project {project.root}\n"
            f"  {who}; decisions -> {project.reviews_db}\n"
            f"  browsers must address it as one of: {names} (others are refused; add names in "
            "review.allowed_hosts)\n  Ctrl-C stops it.")


def exec_app(project: Project, params_path: Path, host: str, port: int) -> None:  # pragma: no cover (replaces us)
    """Replace this process with the Streamlit server (signals then reach it directly)."""
    os.chdir(project.root)
    cmd = streamlit_command(host, port, project.params)
    os.execve(cmd[0], cmd, child_env(project, params_path))
