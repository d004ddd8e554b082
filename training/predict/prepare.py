"""New raw videos -> de-identified clips, through the pipeline's own stages, under the prediction folder.

`luskit predict --input DIR --out OUT` runs, with paths under OUT laid out like a project's artifacts/:
    curation.ingest.main(input -> OUT/index)           pseudonymous ids, quarantine, the key rules
    curation.deid.stage.main(-> OUT/videos, OUT/deid)  the PHI boundary: masked H.264, text search, withholding
    curation.clip_stage.main(-> OUT/clips)             clip windows + uint8 cache, as the checkpoint says
with a params file (OUT/predict_params.yaml) that is the project's params.yaml with its `clips:` section
replaced by the checkpoint's preprocessing. So OUT can be pushed to Label Studio like artifacts/
(`luskit label push --artifacts OUT`). Nothing here re-implements a stage: the same key (a key file or
variable exactly as for ingest; `--demo-key` only for public data), the same fail-closed rules. A video the
de-identification withholds or fails is listed in the outcome and never predicted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from luskit import paths
from luskit.atomic import write_bytes_atomic
from training.predict.ensemble import Preprocessing

PARAMS_NAME = "predict_params.yaml"
REL = {name: getattr(paths, name).relative_to(paths.ARTIFACTS) for name in ("INDEX", "VIDEOS", "DEID", "CLIPS")}


class PrepareError(ValueError):
    """A stage before prediction stopped; the message says which and why (the stage printed the details)."""


@dataclass
class Prepared:
    """What came out of the three stages: the clip manifest and the videos that were not predicted."""

    manifest: pd.DataFrame  # clip manifest (curation/clips.py MANIFEST_DTYPES)
    clips_dir: Path
    not_predicted: pd.DataFrame = field(default_factory=pd.DataFrame)  # label, reason (no paths)


def layout(out: Path) -> dict[str, Path]:
    """OUT/index, OUT/videos, OUT/deid, OUT/clips (the artifacts/ layout)."""
    return {k.lower(): Path(out) / v for k, v in REL.items()}


def check_folders(input_dir: Path, out: Path) -> None:
    """The input (PHI) and the output must be separate trees: outputs inside the raw folder would be scanned
    as raw input on the next run, and raw files inside the output would carry PHI out of the raw folder."""
    inp, dst = Path(input_dir).resolve(), Path(out).resolve()
    if not inp.is_dir():
        raise FileNotFoundError(f"--input {input_dir} is not a folder of videos / DICOM files")
    if dst == inp or inp in dst.parents or dst in inp.parents:
        raise PrepareError("--out must lie outside --input (and not contain it): the input holds PHI, the "
                           "output only de-identified files")
    data = paths.DATA.resolve()
    if dst == data or data in dst.parents:
        raise PrepareError("--out must not lie in data/ (inputs only; nothing there is ever overwritten): use "
                           "artifacts/ or a folder of its own")


def write_params(project_params: Path, prep: Preprocessing, out: Path) -> Path:
    """OUT/predict_params.yaml: the project's params with `clips:` = the checkpoint's preprocessing."""
    params = yaml.safe_load(Path(project_params).read_text()) or {}  # plain dicts (read_params' are tracked)
    workers = int((params.get("clips") or {}).get("workers", 1))
    params["clips"] = prep.clips_section(workers)
    text = ("# Written by `luskit predict`: the project's params.yaml with clips: from the model's checkpoint.\n"
            + yaml.safe_dump(params, sort_keys=False))
    return write_bytes_atomic(Path(out) / PARAMS_NAME, text.encode())


def not_predicted(where: dict[str, Path]) -> pd.DataFrame:
    """label + reason of every input that gets no prediction: quarantined by ingest (its safe file label),
    withheld or failed at de-identification (by video_id), or left out by the clips stage."""
    rows = []
    quarantine = where["index"] / "quarantine.parquet"
    if quarantine.exists():
        for r in pd.read_parquet(quarantine).itertuples(index=False):
            rows.append((r.file_label, f"quarantined by ingest: {r.reason}"))
    index = pd.read_parquet(where["index"] / paths.INDEX_VIDEOS_NAME)
    deid_path = where["deid"] / paths.DEID_VIDEOS_NAME
    published = set(pd.read_parquet(deid_path)["video_id"]) if deid_path.exists() else set()
    for v in sorted(set(index["video_id"]) - published):
        rows.append((v, "withheld or failed at de-identification (see deid/report.json; never predicted)"))
    manifest = where["clips"] / paths.CLIP_MANIFEST_NAME
    clipped = set(pd.read_parquet(manifest)["video_id"]) if manifest.exists() else set()
    for v in sorted(published - clipped):
        rows.append((v, "no clip (undecodable or shorter than a clip under tail: drop)"))
    return pd.DataFrame(rows, columns=["label", "reason"])


def prepare(input_dir: Path, out: Path, project_params: Path, prep: Preprocessing, demo_key: bool | None,
            reviews_dir: Path) -> Prepared:
    """Run ingest, deidentify and clips on input_dir into OUT (module doc)."""
    from curation import clip_stage, ingest
    from curation.deid import stage as deid_stage

    check_folders(input_dir, out)
    where = layout(out)
    params = write_params(project_params, prep, out)
    code = ingest.main(params, Path(input_dir), where["index"], strict=False, demo_key=demo_key)
    if code != 0:
        raise PrepareError(f"ingest stopped (exit {code}): see the messages above")
    code = deid_stage.main(params, where["index"], Path(input_dir), where["videos"], where["deid"], reviews_dir)
    if code not in (0, deid_stage.WITHHELD_EXIT):  # withheld videos are reported and skipped, not a stop
        raise PrepareError(f"deidentify stopped (exit {code}): planted PHI survived or the proof failed; nothing "
                           "is predicted (see deid/report.json)")
    code = clip_stage.main(params, where["deid"], where["videos"], where["clips"])
    if code != 0:
        raise PrepareError(f"clips stopped (exit {code}): see the messages above")
    manifest = pd.read_parquet(where["clips"] / paths.CLIP_MANIFEST_NAME)
    return Prepared(manifest, where["clips"], not_predicted(where))
