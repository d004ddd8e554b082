"""A tiny trained project (3 LUV-Net fold models, seconds on a CPU) and a folder of real POCUS videos laid out as
raw input (patient/YYYYMMDD/file, symlinks into ../shared/external: nothing copied), predicted once per session."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from tests.training.train.project import make_project
from training.predict.stage import predict

REPO = Path(__file__).resolve().parents[3]
TRAIN_LENGTH = 16  # the clip length the models were trained with (the project's params say otherwise later)
# (patient folder, POCUS file): short convex clips (24-32 frames) of 4 patient groups, two from one group.
POCUS = (("pat7", "Reg_liftl_pneucase3_clip1.mp4"), ("pat7", "Pneu_liftl_pneu_case3_clip3.mp4"),
         ("pat40", "Reg_liftl_case3_clip2.mp4"), ("pat6", "Pneu_Basal-pneumonia-RUQ_crop.mp4"),
         ("pat8", "Pneu_Pneumonia-LITFL-Ultrasound_crop.mp4"))
BROKEN = ("pat9", "broken.mp4")  # not a video: quarantined, reported, never predicted
BURNED = ("pat3", "burned.mp4")  # a POCUS clip with a name and an MRN burned into the image: withheld
BURNED_TEXT = ("DOE JOHN", "MRN 4471902")


def burn_text(source: Path, target: Path) -> Path:
    """Re-encode a real clip with BURNED_TEXT drawn over the middle of every frame (PHI inside the image, which
    de-identification cannot mask away: the video must be withheld)."""
    import av
    import cv2
    import numpy as np

    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    out = av.open(str(target), "w")
    stream = out.add_stream("libx264", rate=15)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    for frame in frames:
        frame = np.ascontiguousarray(frame[:h, :w])
        for k, text in enumerate(BURNED_TEXT):
            cv2.putText(frame, text, (w // 5, h // 2 + k * h // 7), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return target


def project_params(root: Path, **clips) -> Path:
    """The repository's params.yaml with the tiny project's train section and `clips` overrides."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    tiny = yaml.safe_load((root / "params.yaml").read_text())
    params["train"] = tiny["train"]
    params["clips"].update(clips)
    params["evaluate"]["bootstrap"] = 200
    params["deidentify"]["workers"] = params["ingest"]["workers"] = params["clips"]["workers"] = 1
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """Root of a tiny project with artifacts/models/luvnet/fold{0,1,2}/checkpoint.pt."""
    from training.train import stage

    root = make_project(tmp_path_factory.mktemp("project"))
    params = project_params(root, length=TRAIN_LENGTH)
    for fold in (0, 1, 2):
        assert stage.main(params, model="luvnet", fold=fold, root=root) == 0
    # From here on the project's clips section differs from the models': predict must follow the checkpoints.
    project_params(root, length=30, size=64, overlap=2)
    return root


def pocus_rows(external: Path) -> dict[str, dict]:
    with open(external / "pocus" / "manifest.csv", newline="") as fh:
        return {Path(r["file"]).name: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="session")
def pocus_input(tmp_path_factory, external_dir) -> Path:
    folder = tmp_path_factory.mktemp("raw-input")
    for patient, name in POCUS:
        target = folder / patient / "20200101"
        target.mkdir(parents=True, exist_ok=True)
        (target / name).symlink_to(external_dir / "pocus" / "videos" / "convex" / name)
    broken = folder / BROKEN[0] / "20200101"
    broken.mkdir(parents=True)
    (broken / BROKEN[1]).write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    burned = folder / BURNED[0] / "20200101"
    burned.mkdir(parents=True)
    burn_text(external_dir / "pocus" / "videos" / "convex" / POCUS[2][1], burned / BURNED[1])
    return folder


@pytest.fixture(scope="session")
def predicted(trained, pocus_input, tmp_path_factory):
    """(project root, OUT, Predictions) of one `predict` run on the POCUS folder with the public demo key."""
    out = tmp_path_factory.mktemp("predict") / "out"
    result = predict(trained / "artifacts" / "models" / "luvnet", pocus_input, out, trained / "params.yaml",
                     demo_key=True, progress=False)
    return trained, out, result
