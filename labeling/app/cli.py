"""`luskit review` (serve the review app) and `luskit review add-user|remove-user|users` (wired into luskit/cli.py).

Heavy imports happen inside the commands so `luskit --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

review_app = typer.Typer(invoke_without_command=True, add_completion=False, pretty_exceptions_enable=False,
                         help="The review app: `luskit review` serves it; add-user/remove-user/users manage accounts.")

PARAMS = typer.Option(Path("params.yaml"), "--params", help="params.yaml to read (section review:)")
AUTH_FILE = typer.Option(None, "--auth-file", help="accounts file (default $LUSKIT_REVIEW_AUTH_FILE, "
                                                   "review.auth_file, or .luskit/review-users.json)")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _params_path(params: Path, root: Path) -> Path:
    """--params as given (absolute, or relative to the current folder), else the project's own params.yaml."""
    if params.is_absolute() or (Path.cwd() / params).exists():
        return (Path.cwd() / params).resolve()
    return root / params


def _project(params: Path, auth_file: Path | None = None):
    from dataclasses import replace

    from labeling.app.settings import load_project
    from luskit import paths
    from luskit.config import ConfigError

    try:
        root = paths.project_root()
        project = load_project(root, _params_path(params, root))
    except (ConfigError, FileNotFoundError) as err:
        _fail(str(err))
    if auth_file is not None:
        project = replace(project, auth_file=auth_file.resolve())
    return project


@review_app.callback()
def serve(
    ctx: typer.Context,
    params: Path = PARAMS,
    host: str = typer.Option(None, help="address to bind (default review.host, 127.0.0.1); beyond loopback "
                                        "reviewer accounts are required, and TLS (review.behind_proxy) or "
                                        "review.insecure_http"),
    port: int = typer.Option(None, help="port (default review.port)"),
    auth_file: Path = AUTH_FILE,
) -> None:
    """Serve the review app on review.host:review.port (127.0.0.1:8501) for the project's artifacts."""
    if ctx.invoked_subcommand is not None:
        return
    from labeling.app import launch

    project = _project(params, auth_file)
    host = host or project.params.host
    port = port or project.params.port
    try:
        needs_login = launch.preflight(project, host, port)
    except launch.LaunchError as err:
        _fail(str(err))
    typer.echo(launch.banner(project, host, port, needs_login))
    sys.stdout.flush()
    launch.exec_app(project, _params_path(params, project.root), host, port)


def _read_password() -> str:
    """From a hidden prompt (typed twice) on a terminal, else one line of stdin; never from argv."""
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@review_app.command("add-user")
def add_user(name: str = typer.Argument(..., help="login, e.g. the reviewer's e-mail"),
             params: Path = PARAMS, auth_file: Path = AUTH_FILE) -> None:
    """Create or reset a reviewer account; the password is prompted for (or read from stdin when piped)."""
    from labeling.app import auth

    project = _project(params, auth_file)
    try:
        new = auth.add_user(project.auth_file, name, _read_password())
    except auth.AuthError as err:
        _fail(str(err))
    typer.echo(f"{'added' if new else 'reset password of'} {name.strip().lower()} in {project.auth_file}")


@review_app.command("remove-user")
def remove_user(name: str, params: Path = PARAMS, auth_file: Path = AUTH_FILE) -> None:
    """Delete a reviewer account (their recorded decisions stay)."""
    from labeling.app import auth

    project = _project(params, auth_file)
    try:
        gone = auth.remove_user(project.auth_file, name)
    except auth.AuthError as err:
        _fail(str(err))
    if not gone:
        _fail(f"no account {name!r} in {project.auth_file}", 1)
    typer.echo(f"removed {name.strip().lower()} from {project.auth_file}")


@review_app.command("users")
def users(params: Path = PARAMS, auth_file: Path = AUTH_FILE) -> None:
    """List reviewer accounts (names and creation times, never hashes)."""
    from labeling.app import auth

    project = _project(params, auth_file)
    try:
        table = auth.read_users(project.auth_file)
    except auth.AuthError as err:
        _fail(str(err))
    for name, record in sorted(table.items()):
        typer.echo(f"{name}\t{record.get('created', '')}")
    if not table:
        typer.echo(f"no accounts in {project.auth_file}")
