"""`luskit deid withheld|show|release`: a person looks at a withheld video and releases it (wired into luskit/cli.py).

Run from the project folder (paths are the pipeline's, relative to it). Heavy imports happen inside the
commands so `luskit --help` stays fast. Nothing here prints a path under data/raw or text read from a video.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from luskit import paths

deid_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       help="Withheld videos: list them, look at one (show), release it after looking.")

NEXT = "dvc add data/reviews && dvc repro"


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _report() -> dict:
    """artifacts/deid/report.json, or a one-line error saying how to make it."""
    try:
        return json.loads(paths.DEID_REPORT.read_text())
    except FileNotFoundError:
        _fail(f"{paths.DEID_REPORT} not found: run `dvc repro deidentify` (from the project folder) first")
    except ValueError:
        _fail(f"{paths.DEID_REPORT} is not JSON: rerun `dvc repro deidentify`")


def _releases() -> dict[str, set[str]]:
    from curation.deid.release import ReleaseError, load_releases

    try:
        return load_releases(paths.DEID_RELEASES)
    except ReleaseError as err:
        _fail(str(err))


@deid_app.command()
def withheld() -> None:
    """List the withheld videos: id, reason, and whether this exact output was released (and awaits `dvc repro`)."""
    from curation.deid.release import released, withheld_entries

    entries, releases = withheld_entries(_report()), _releases()
    if not entries:
        typer.echo("nothing is withheld.")
        return
    for video_id, entry in sorted(entries.items()):
        state = ("released, publish with `" + NEXT + "`") if released(releases, video_id, str(
            entry.get("output_sha256"))) else "withheld"
        typer.echo(f"{video_id}  {entry.get('reason', '?')}  {state}")
    typer.echo(f"look: luskit deid show VIDEO_ID --out /tmp/VIDEO_ID.mp4; release: luskit deid release VIDEO_ID "
               f"--reviewer NAME")


@deid_app.command()
def show(
    video_id: str = typer.Argument(..., help="the video's id (see `luskit deid withheld`)"),
    out: Path = typer.Option(..., "--out", help="the .mp4 to write, outside data/ and artifacts/ (a new file)"),
    params: Path = typer.Option(paths.PARAMS, "--params", help="params.yaml to read"),
) -> None:
    """Re-create a video's candidate output from data/raw (the stage's own masking and encoding) to look at it."""
    from curation.deid.candidate import CandidateError, check_out_path, render_candidate
    from curation.deid.release import withheld_entries
    from curation.deid.stage import DeidFailure
    from luskit.config import ConfigError

    try:
        target = check_out_path(out, Path.cwd())
        made = render_candidate(video_id, target, params)
    except (CandidateError, ConfigError, FileNotFoundError) as err:
        _fail(str(err))
    except DeidFailure as err:
        _fail(f"{video_id}: {err.reason}: {err}")
    typer.echo(f"wrote {target} ({made['n_frames']} frames, {made['action']}, sha256 {made['sha256'][:12]}...). "
               "It may show identifiable text: keep it on this machine and delete it after looking.")
    entry = withheld_entries(_report()).get(video_id) if paths.DEID_REPORT.exists() else None
    if entry is None:
        typer.echo(f"{video_id} is not withheld in {paths.DEID_REPORT}: nothing to release.")
    elif entry.get("output_sha256") == made["sha256"]:
        typer.echo(f"this is the output the stage withheld ({entry.get('reason', '?')}). If nothing in it identifies "
                   f"anyone: luskit deid release {video_id} --reviewer NAME")
    else:
        typer.echo("warning: this differs from the output the stage withheld (raw file or params changed since): "
                   "run `dvc repro deidentify` and look again before releasing", err=True)


@deid_app.command()
def release(
    video_id: str = typer.Argument(..., help="the withheld video's id (see `luskit deid withheld`)"),
    reviewer: str = typer.Option(..., "--reviewer", help="who looked at the output and releases it"),
    note: str = typer.Option("", "--note", help="what you checked (kept in the sign-off file)"),
) -> None:
    """Release a withheld video after looking at it: appends a sign-off bound to its output's sha256 to
    data/reviews/deid/releases.jsonl (a changed output needs a new sign-off)."""
    from curation.deid.release import ReleaseError, append_release, released, withheld_entry

    try:
        entry = withheld_entry(_report(), video_id)
        sha = entry["output_sha256"]
        if released(_releases(), video_id, sha):
            typer.echo(f"{video_id} is already released for this output; publish it with `{NEXT}`.")
            return
        append_release(paths.DEID_RELEASES, video_id, sha, reviewer, note)
    except ReleaseError as err:
        _fail(str(err))
    typer.echo(f"released {video_id} (withheld for {entry.get('reason', '?')}; output sha256 {sha[:12]}...) "
               f"by {' '.join(reviewer.split())}: recorded in {paths.DEID_RELEASES}.")
    typer.echo(f"next: {NEXT}   (records the sign-off with the data and publishes the video)")
