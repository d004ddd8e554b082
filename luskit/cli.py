"""The `luskit` command: one subcommand per pipeline stage and tool.

Imports happen inside each command so `luskit --help` (and every stage's `--help`, which the tests
call) stays fast and does not load torch.
"""

from __future__ import annotations

from pathlib import Path

import typer

from luskit import paths
from luskit.stages import entry as stage_entry

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="luskit: lung-ultrasound video curation, labelling, training and evaluation.")

PARAMS = typer.Option(paths.PARAMS, "--params", help="params.yaml to read")


def fail(message: str, code: int = 2) -> None:
    """Print a user-facing error (never a traceback) and exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run_stage(main, *args, **kwargs) -> None:
    """Run a stage's main(); bad params or missing inputs become one-line errors, not tracebacks."""
    from luskit.config import ConfigError

    try:
        code = main(*args, **kwargs)
    except (ConfigError, FileNotFoundError) as err:
        fail(str(err))
    raise typer.Exit(code)


@app.command()
def synth(
    params: Path = PARAMS,
    out: Path = typer.Option(paths.DATA, help="data folder to fill (must not hold raw files yet)"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Generate the synthetic demo study (DICOM, screen recordings, truth, annotation snapshot) into data/."""
    from luskit.config import ConfigError, load_section
    from curation.synth.params import SynthParams

    try:
        cfg = load_section(params, "synth", SynthParams)
    except ConfigError as err:
        fail(f"{err}")
    from curation.synth.generate import generate

    try:
        summary = generate(cfg, out, progress=not quiet)
    except (FileExistsError, ValueError) as err:
        fail(str(err))
    typer.echo(
        f"synth: {summary['patients']} patients, {summary['videos']} videos ({summary['frames']} frames), "
        f"{summary['oddities']} odd files, {summary['bytes'] / 1e6:.1f} MB under {out}/"
    )


@app.command()
def ingest(
    params: Path = PARAMS,
    strict: bool = typer.Option(None, "--strict/--no-strict", help="exit 1 if anything was quarantined"),
    show_paths: bool = typer.Option(False, help="print local paths of quarantined files (terminal only)"),
    demo_key: bool = typer.Option(None, "--demo-key/--no-demo-key", help="use the PUBLIC demo key (public data "
                                  "only; default: ingest.demo_key). The synthetic demo selects it by itself"),
) -> None:
    """data/raw/** -> artifacts/index/ (videos.parquet, quarantine.parquet): probe, pseudonymise, dedupe."""
    main = stage_entry("ingest")

    run_stage(main, params, strict=strict, show_paths=show_paths, demo_key=demo_key)


@app.command()
def deidentify(params: Path = PARAMS) -> None:
    """artifacts/index + data/raw -> artifacts/videos/<video_id>.mp4 and the proof in artifacts/deid/."""
    main = stage_entry("deidentify")

    run_stage(main, params)


@app.command()
def clips(params: Path = PARAMS) -> None:
    """artifacts/videos -> artifacts/clips/ (clip manifest and the decoded uint8 training cache)."""
    main = stage_entry("clips")

    run_stage(main, params)


@app.command()
def labels(params: Path = PARAMS) -> None:
    """data/annotations + data/reviews + artifacts/clips -> artifacts/labels/ (clip labels, agreement, consensus)."""
    main = stage_entry("labels")

    run_stage(main, params)


@app.command()
def split(action: str = typer.Argument("", help="freeze: copy the current roles to data/splits/roles-<UTC>.parquet"),
          params: Path = PARAMS, quiet: bool = typer.Option(False, help="no progress bar")) -> None:
    """Consensus labels + clips -> artifacts/splits/: patient-grouped stratified folds, internal test, temporal set,
    balance report; exits 1 when a leakage guard fails. `luskit split freeze` keeps the current roles from now on."""
    if action == "freeze":
        from training.splits.stage import freeze_main

        raise typer.Exit(freeze_main())
    if action:
        raise typer.BadParameter(f"unknown action {action!r}: use `luskit split` or `luskit split freeze`")
    main = stage_entry("split")

    run_stage(main, params, progress=not quiet)


@app.command()
def train(
    params: Path = PARAMS,
    model: str = typer.Option(..., help="model to train: luvnet, luvnet_tfwo, usvn, c3d, r2plus1d, frame2d, cnn_lstm"),
    fold: int = typer.Option(..., help="validation fold K: train on the other folds, validate on fold K"),
    profile: str = typer.Option(None, help="entry of train.profiles to run (default: train.profile)"),
    quiet: bool = typer.Option(None, "--quiet/--progress", help="progress bars off/on (default: train.quiet)"),
) -> None:
    """Clip cache + consensus + splits -> artifacts/models/<model>/fold<K>/ (checkpoint, log, metrics, predictions).
    Rerun after an interruption to resume; start with torchrun for several GPUs or nodes."""
    main = stage_entry("train")

    run_stage(main, params, model=model, fold=fold, profile=profile, quiet=quiet)


@app.command()
def evaluate(params: Path = PARAMS, quiet: bool = typer.Option(False, help="no progress bar")) -> None:
    """Fold predictions of every model -> artifacts/eval/: metrics with patient-bootstrap CIs, DeLong vs the primary
    model, comparison.md, curves and figures, model cost, the label-error ranking."""
    main = stage_entry("evaluate")

    run_stage(main, params, progress=not quiet)


@app.command("review-queue")
def review_queue(params: Path = PARAMS) -> None:
    """Annotator disagreements + model disagreements + likely label errors -> artifacts/review/queue.parquet, ranked."""
    main = stage_entry("review-queue")

    run_stage(main, params)


@app.command()
def demo(params: Path = PARAMS) -> None:
    """Generate the demo data if data/ is empty, run `dvc repro`, and say where the results are."""
    from luskit.demo import run_demo

    raise typer.Exit(run_demo(params))


@app.command()
def pocus(
    source: Path = typer.Option(None, help="the POCUS dataset folder (default: ../shared/external/pocus)"),
    workdir: Path = typer.Option(None, help="standalone project to build, outside the repository "
                                 "(default: ../luskit-pocus)"),
    repro: bool = typer.Option(True, "--repro/--no-repro", help="--no-repro: lay out data/ and the config only"),
    until: str = typer.Option(None, help="stop after this stage (e.g. split); default: the whole pipeline"),
) -> None:
    """The pipeline on the public POCUS videos: link them as raw input (no copies), import the dataset's pattern
    columns as one annotator's labels, every patient_group a patient, all development; then `dvc repro` there."""
    from curation.external_pocus import PocusError
    from luskit.pocus import run_pocus

    try:
        code = run_pocus(source, workdir, repro=repro, until=until)
    except (PocusError, FileExistsError, FileNotFoundError, ValueError) as err:
        fail(str(err))
    raise typer.Exit(code)


@app.command()
def predict(
    models: Path = typer.Option(..., help="trained model folder: artifacts/models/<model> (its fold<k>/ checkpoints)"),
    input: Path = typer.Option(..., "--input", help="folder of new raw videos / DICOM files (PHI: stays there)"),
    out: Path = typer.Option(..., help="output folder (outside --input): index/, deid/, videos/, clips/, "
                             "predictions/, and validation/ with --labels"),
    labels: Path = typer.Option(None, help="optional labels for an external validation: a Label Studio snapshot "
                                "(.json or a folder of them) or a sheet (.csv/.xlsx) keyed by video_id or by `file` "
                                "(path under --input)"),
    label_level: str = typer.Option("auto", help="auto | frames | video: frame ranges or video-level yes/no"),
    recalibrate: bool = typer.Option(False, help="also report a cross-fitted recalibration (separately)"),
    params: Path = PARAMS,
    demo_key: bool = typer.Option(None, "--demo-key/--no-demo-key", help="the PUBLIC demo key (public data only); "
                                  "real data needs a key exactly as for `luskit ingest`"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Run a trained fold ensemble on new videos: ingest -> deidentify -> clips as the pipeline, then per-clip and
    per-video predictions at the validation thresholds with attention, a Label Studio predictions table and a
    report; with --labels also the external validation."""
    from training.predict.run import predict_command

    raise typer.Exit(predict_command(models, input, out, params, demo_key, not quiet, labels, label_level,
                                     recalibrate, fail))


@app.command()
def validate(
    out: Path = typer.Option(..., help="a `luskit predict` output folder"),
    labels: Path = typer.Option(..., help="Label Studio snapshot (.json or folder) or sheet (.csv/.xlsx)"),
    label_level: str = typer.Option("auto", help="auto | frames | video"),
    recalibrate: bool = typer.Option(False, help="also report a cross-fitted recalibration (separately)"),
    input: Path = typer.Option(None, "--input", help="the folder predict read (for a sheet keyed by `file`)"),
    params: Path = PARAMS,
) -> None:
    """External validation of predictions on labelled new videos: AUROC with patient-bootstrap CIs at clip and video
    level, calibration and the development thresholds' operating points (nothing refitted) -> OUT/validation/."""
    from training.predict.run import validate_command

    raise typer.Exit(validate_command(out, labels, label_level, recalibrate, params, fail, input))


from labeling.ls.cli import label_app  # noqa: E402  (light: its commands import their own dependencies)

app.add_typer(label_app, name="label", help="Label Studio workflow: serve, stop, status, init, push, pull.")

from labeling.app.cli import review_app  # noqa: E402  (light: its commands import their own dependencies)

app.add_typer(review_app, name="review", help="The review app: serve it (`luskit review`), add-user, remove-user, users.")

from curation.deid.cli import deid_app  # noqa: E402  (light: its commands import their own dependencies)

app.add_typer(deid_app, name="deid", help="Withheld videos: `luskit deid withheld`, `show`, `release`.")

if __name__ == "__main__":  # pragma: no cover
    app()
