"""The real Philips cine (deid-data GREYSCALE_CINE, ../shared/external/dicom): its region box covers a UI panel.

Its Sequence of Ultrasound Regions box [10, 31, 788, 592] holds the image and, on its left, a text panel
(preset "Adv Breast", probe "L12-5", "36Hz", "2D", "60%", "Dyn R 58", "P Med", "Res", "TAC1"). Trusted
whole, that panel was in the output (issue 13 d). Here the file goes through real ingest and the stage's
own per-video steps (`luskit deid show`, which re-creates the candidate output); every output frame is
read by OCR. The file is copied into a temporary project, never into the repository.
"""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from curation import ingest
from curation.deid import candidate, masking, stage
from curation.deid.proof import normalize, ocr_tokens_many
from luskit import paths
from luskit.cli import app
from tests.curation.test_deid_stage import REPO

CINE = "deid-data_GREYSCALE_CINE.dcm"
REGION = (10, 31, 788, 592)
PANEL = (10, 31, 74, 210)  # x0, y0, x1, y1 inclusive: the left UI text panel inside the region box
PANEL_WORDS = {"ADV", "BREAST", "L125", "36HZ", "DYN", "R58", "MED", "RES", "TAC1", "60"}


@pytest.fixture(scope="module")
def cine_project(external_dir, tmp_path_factory):
    """A project folder (params.yaml, data/raw with the cine, artifacts/index from real ingest) and the video id."""
    root = tmp_path_factory.mktemp("cine")
    raw = root / paths.RAW / "10101010101" / "20170302"
    raw.mkdir(parents=True)
    shutil.copy(external_dir / "dicom" / CINE, raw / "US0001.dcm")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["deidentify"]["workers"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    mp = pytest.MonkeyPatch()
    mp.setenv("LUSKIT_PSEUDONYM_KEY", "deid-test-key-0123456789")
    assert ingest.main(root / "params.yaml", root / paths.RAW, root / paths.INDEX) == 0
    mp.undo()
    index = stage.read_index(root / paths.INDEX)
    assert len(index) == 1 and tuple(index.iloc[0][[f"region_{c}" for c in ("x0", "y0", "x1", "y1")]]) == REGION
    return root, str(index.iloc[0]["video_id"])


def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _words(frames: list[np.ndarray]) -> set[str]:
    return {normalize(t.text) for tokens in ocr_tokens_many(frames) for t in tokens} - {""}


@pytest.mark.external
def test_ui_panel_inside_the_region_box_is_gone(cine_project, tmp_path, monkeypatch):
    root, video_id = cine_project
    from curation.readers import iter_frames, probe

    source = next(root.joinpath(paths.RAW).rglob("*.dcm"))
    first = next(iter_frames(source, probe(source)))
    x0, y0, x1, y1 = REGION
    before = _words([np.ascontiguousarray(first[y0:y1 + 1, x0:x1 + 1])]) & PANEL_WORDS
    assert len(before) >= 5, before  # inside the region box the panel is readable

    made = candidate.render_candidate(video_id, tmp_path / "a.mp4", root / "params.yaml", root / paths.INDEX,
                                      root / paths.RAW)
    frames = _decode(tmp_path / "a.mp4")
    assert len(frames) == made["n_frames"] == 27 and made["action"] == "region-cropped"
    cx0, cy0, cx1, cy1 = made["crop"]
    assert x0 <= cx0 and y0 <= cy0 and cx1 <= x1 and cy1 <= y1
    assert cx0 > 60 and (cx1 - cx0) > 560 and (cy1 - cy0) > 450  # the image (x 99-703, y 70-558) is kept
    px0, py0, px1, py1 = PANEL  # the panel's pixels in output coordinates (none when the crop left them out)
    left = np.stack(frames)[:, max(py0 - cy0, 0):max(py1 - cy0 + 1, 0), max(px0 - cx0, 0):max(px1 - cx0 + 1, 0)]
    assert left.size == 0 or left.max() <= masking.NONBLACK
    after = _words(frames)
    assert not after & PANEL_WORDS, sorted(after & PANEL_WORDS)

    # `luskit deid show` makes the same bytes (the encode is deterministic), only outside data/ and artifacts/
    monkeypatch.chdir(root)
    res = CliRunner().invoke(app, ["deid", "show", video_id, "--out", str(tmp_path / "b.mp4")])
    assert res.exit_code == 0, res.output
    assert made["sha256"][:12] in res.output and "keep it on this machine" in res.output
    assert (tmp_path / "b.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    assert not (root / paths.VIDEOS).exists(), "show must never publish"


@pytest.mark.external
def test_the_candidate_is_the_stages_output(cine_project, tmp_path):
    """The sha256 a release is bound to: the stage's output (published, or withheld with its hash) equals
    the candidate `luskit deid show` re-creates."""
    root, video_id = cine_project
    out = tmp_path / "project"
    stage.main(root / "params.yaml", root / paths.INDEX, root / paths.RAW, out / "videos", out / "deid")
    report = json.loads((out / "deid" / "report.json").read_text())
    published = out / "videos" / f"{video_id}.mp4"
    withheld = {e["video_id"]: e for e in report.get("withheld") or []}
    made = candidate.render_candidate(video_id, tmp_path / "c.mp4", root / "params.yaml", root / paths.INDEX,
                                      root / paths.RAW)
    if published.exists():
        assert ingest.file_sha256(published) == made["sha256"]
    else:
        assert withheld[video_id]["output_sha256"] == made["sha256"]
