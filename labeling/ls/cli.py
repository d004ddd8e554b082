"""`luskit label ...`: serve, stop, status, init, push, pull (wired into luskit/cli.py).

Imports of the SDK, pandas and the modules behind each command happen inside the command, so
`luskit --help` stays fast. Secrets (password, token) are never printed.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

label_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        help="Label Studio workflow: serve, init, push, label in the browser, pull.")

ROUND = typer.Option("round-1", "--round", help="reading round: one set of projects per round")
PORT = typer.Option(None, "--port", help="loopback port (default $LUSKIT_LS_PORT or 8080)")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _root() -> Path:
    from luskit import paths

    try:
        return paths.project_root()
    except FileNotFoundError as err:
        _fail(str(err))


def _config(port: int | None = None):
    from labeling.ls.server import ServerConfig

    return ServerConfig.for_project(_root(), port)


def _connect(port: int | None = None):
    """SDK client for $LUSKIT_LS_URL (a team server) or the local server this project started."""
    from labeling.ls import client, server

    cfg = _config(port)
    url = os.environ.get("LUSKIT_LS_URL") or server.read_state(cfg).get("url") or cfg.url
    try:
        creds = server.load_credentials(cfg, create=False)
        return client.connect(url, creds.token)
    except (server.ServerError, client.LabelStudioError) as err:
        _fail(str(err))


@label_app.command()
def serve(port: int = PORT, timeout: float = typer.Option(240.0, help="seconds to wait for /health")) -> None:
    """Start a local Label Studio on 127.0.0.1 (data in .luskit/label-studio/, videos from artifacts/)."""
    from labeling.ls import server

    cfg = _config(port)
    try:
        state = server.start(cfg, timeout=timeout)  # checks the venv, artifacts and port before any secret is made
        creds = server.load_credentials(cfg)
    except server.ServerError as err:
        _fail(str(err))
    verb = "already running" if state.get("reused") else "running"
    typer.echo(f"Label Studio {verb} at {state['url']} (pid {state['pid']})")
    typer.echo(f"log in as {creds.email}; password and API token: {cfg.credentials_file} "
               "(or LUSKIT_LS_PASSWORD / LUSKIT_LS_TOKEN)")
    typer.echo("next: luskit label init && luskit label push")


@label_app.command()
def stop(port: int = PORT) -> None:
    """Stop the local Label Studio started by `serve`."""
    from labeling.ls import server

    typer.echo("stopped" if server.stop(_config(port)) else "no Label Studio was running")


@label_app.command()
def status(port: int = PORT) -> None:
    """Print the local server's url, pid and health."""
    from labeling.ls import server

    st = server.status(_config(port))
    typer.echo(f"url: {st['url']}\npid: {st['pid'] or '-'}\nhealth: {'ok' if st['healthy'] else 'down'}\n"
               f"data: {st['data_dir']}\nlog: {st['log']}")
    raise typer.Exit(0 if st["healthy"] else 1)


@label_app.command()
def init(
    round_name: str = ROUND,
    overlap: int = typer.Option(2, min=1, help="readers per development video (maximum_annotations)"),
    adjudication: bool = typer.Option(False, help="also create the clip-level Choices adjudication project"),
    storage_path: Path = typer.Option(None, help="videos folder as the SERVER sees it (default: artifacts/videos)"),
    port: int = PORT,
) -> None:
    """Create or update the round's projects from labeling/ls/configs/*.xml (idempotent)."""
    from labeling.ls import client, projects

    path = storage_path or (_root() / "artifacts" / "videos")
    ls = _connect(port)
    try:
        done = projects.init_round(ls, round_name, str(Path(path).absolute()), overlap, adjudication)
    except (client.LabelStudioError, ValueError) as err:
        _fail(str(err))
    for p in done:
        typer.echo(f"{p['title']}: project {p['id']} {p['action']} (maximum_annotations {p['maximum_annotations']})")


@label_app.command()
def push(
    round_name: str = ROUND,
    artifacts: Path = typer.Option(None, help="artifacts folder (default: the project's artifacts/)"),
    reference: Path = typer.Option(None, help="reference labels (video_id column) that make videos gold-eligible "
                                              "(default: data/reference/truth.parquet when present)"),
    predictions: Path = typer.Option(None, help="model predictions parquet (video_id, pattern, start, end, "
                                                "score, model_version) pushed as pre-annotations"),
    blind: bool = typer.Option(False, help="withhold predictions (and hide any already there) for first reads"),
    gold_fraction: float = typer.Option(0.1, min=0.0, max=1.0, help="fraction of reference videos made gold"),
    readers: int = typer.Option(2, min=1, help="development readers: every one of them reads the gold videos"),
    clips: Path = typer.Option(None, help="adjudication clip table (video_id, start, end[, clip_id]): push it "
                                          "to the adjudication project instead"),
    batch_size: int = typer.Option(10, min=1, help="tasks per import request (each one is atomic)"),
    videos_list: Path = typer.Option(None, "--videos", help="push only these videos: a list (video_id column "
                                     "or one id per line), e.g. what `luskit label select` wrote"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    port: int = PORT,
) -> None:
    """Send de-identified videos as tasks (re-runs add only what is missing)."""
    import pandas as pd

    from labeling.ls import client
    from labeling.ls import push as push_mod
    from luskit import paths

    art = artifacts or (_root() / "artifacts")
    try:
        videos = push_mod.read_videos(art / paths.DEID_VIDEOS.relative_to(paths.ARTIFACTS))
        if videos_list is not None:
            videos = push_mod.only(videos, _selected(videos_list))
        push_mod.check_media(videos, art / "videos")
        ls = _connect(port)
        if clips is not None:
            s = push_mod.push_clips(ls, round_name, pd.read_parquet(clips), videos, batch_size, not quiet)
            typer.echo(s.line("adjudication"))
            return
        ref_path = reference or (_root() / "data" / "reference" / "truth.parquet")
        ref_ids = set(pd.read_parquet(ref_path, columns=["video_id"])["video_id"]) if ref_path.exists() else set()
        preds = push_mod.read_predictions(predictions, videos) if predictions is not None else None
        done = push_mod.push_round(ls, round_name, videos, ref_ids, preds, blind, gold_fraction, readers,
                                   batch_size, not quiet)
    except (push_mod.PushError, client.LabelStudioError) as err:
        _fail(str(err))
    for role, summary in done.items():
        typer.echo(summary.line(role))
    if blind and predictions is not None:
        typer.echo("blind: predictions withheld")


def _selected(path: Path) -> list[str]:
    from labeling.ls.select import SelectError, read_list

    try:
        return read_list(path)
    except SelectError as err:
        _fail(str(err))


@label_app.command()
def select(
    predictions: Path = typer.Option(..., help="OUT/predictions of `luskit predict`"),
    strategy: str = typer.Option("uncertainty", help="uncertainty | disagreement | random"),
    n: int = typer.Option(..., "--n", min=1, help="videos to pick"),
    out: Path = typer.Option(Path("selection.csv"), help="the list to write (takes `luskit label push --videos`)"),
    exclude: list[Path] = typer.Option([], help="already labelled videos: snapshot .json, folder of snapshots or "
                                       "a list; repeatable"),
    seed: int = typer.Option(0, help="random strategy: the generator's seed"),
) -> None:
    """Pick the next unlabelled videos to annotate from the model's predictions."""
    from labeling.annotations import SnapshotError
    from labeling.ls.select import SelectError, select as run_select

    try:
        chosen = run_select(predictions, strategy, n, out, exclude, seed)
    except (SelectError, SnapshotError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"select ({strategy}): {len(chosen)} video(s) -> {out}")
    typer.echo(f"next: luskit label push --artifacts <predict OUT> --videos {out} --predictions "
               "<predict OUT>/predictions/ls_predictions.parquet")


@label_app.command()
def pull(
    round_name: str = ROUND,
    out: Path = typer.Option(None, help="snapshot folder (default: data/annotations/)"),
    adjudication: bool = typer.Option(False, help="pull the adjudication project into data/reviews/label-studio/ instead"),
    port: int = PORT,
) -> None:
    """Write a verified full-JSON snapshot to data/annotations/<UTC timestamp>.json."""
    from labeling.ls import client
    from labeling.ls import pull as pull_mod
    from labeling.ls.projects import ADJUDICATION, TIMELINE_ROLES
    from luskit import paths

    roles = (ADJUDICATION,) if adjudication else TIMELINE_ROLES
    folder = out or (_root() / (paths.LS_ADJUDICATIONS if adjudication else paths.ANNOTATIONS))
    ls = _connect(port)
    try:
        path, summary = pull_mod.pull_round(ls, round_name, folder, roles, "-adjudication" if adjudication else "")
    except (client.LabelStudioError, pull_mod.SnapshotMismatch) as err:
        _fail(str(err), code=1)
    for role, s in summary["roles"].items():
        typer.echo(f"{role}: project {s['project']}: {s['tasks']} tasks, {s['annotations']} annotations")
    for project_id, who in summary["readers"].items():
        typer.echo(f"project {project_id} readers: " + ", ".join(f"{k} ({v})" for k, v in sorted(who.items())))
    typer.echo(f"wrote {path}")
    typer.echo("next: dvc add data/annotations && dvc repro")


@label_app.command("import-sheet")
def import_sheet(
    sheet: Path = typer.Argument(..., help="CSV or XLSX in the seed's format: one row per video_id, "
                                           "per-pattern columns of 1-based intervals like `24_32, 40_55`"),
    annotator: str = typer.Option(..., "--annotator", help="the reader's e-mail (the identity agreement uses)"),
) -> None:
    """Convert a LUV-Net-style label sheet into a new snapshot in data/annotations/ (no server needed)."""
    from labeling import sheets

    root = _root()
    try:
        path, written = sheets.import_sheet(sheet, annotator, sheets.load_videos(root), root / "data" / "annotations")
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"{'wrote' if written else 'already imported as'} {path.relative_to(root)}")
    typer.echo("next: dvc add data/annotations && dvc repro")
