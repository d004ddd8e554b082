"""The Data page lists withheld videos: pixelated thumbnail, reason, release state and the commands to run.

A small project built here (no demo run): params.yaml, a deidentify report with a `withheld` list in the
shape the stage writes, the stage's pixelated thumbnails under artifacts/deid/withheld/, and one sign-off
in data/reviews/deid/releases.jsonl.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from curation.deid import release
from luskit import paths
from tests.labeling_app.helpers import REVIEWER, signed_in
from tests.labeling_app.project import REPO

SHOWN, RELEASED, NO_THUMB = "P01ab_V0000aaaa", "P01ab_V0000bbbb", "P02cd_V0000cccc"


def _project(root):
    (root / paths.DEID_WITHHELD).mkdir(parents=True)
    (root / "params.yaml").write_text((REPO / "params.yaml").read_text())
    report = {"videos": 3, "videos_indexed": 7, "failed": 0, "actions": {"region-cropped": 2, "auto-masked": 1},
              "per_video": [], "contact_sheets": [],
              "withheld": [{"video_id": SHOWN, "reason": "text_in_image", "output_sha256": "1" * 64},
                           {"video_id": RELEASED, "reason": "text_outside_fan", "output_sha256": "2" * 64},
                           {"video_id": NO_THUMB, "reason": "text_in_image", "output_sha256": "3" * 64},
                           {"video_id": "../../etc/passwd", "reason": "x", "output_sha256": "4" * 64}]}
    (root / paths.DEID_REPORT).write_text(json.dumps(report))
    blocks = np.kron(np.random.default_rng(0).integers(0, 255, (6, 8), np.uint8), np.ones((12, 12), np.uint8))
    for video_id in (SHOWN, RELEASED):
        Image.fromarray(blocks).save(root / paths.DEID_WITHHELD / f"{video_id}.png")
    release.append_release(root / paths.DEID_RELEASES, RELEASED, "2" * 64, "senior")
    release.append_release(root / paths.DEID_RELEASES, SHOWN, "9" * 64, "senior")  # an older output of it
    return root


def _withheld_table(at):
    """The page's withheld table (st.dataframe keys are not exposed to AppTest without a selection mode)."""
    tables = [d.value for d in at.dataframe if list(d.value.columns) == ["video_id", "reason", "status"]]
    assert len(tables) == 1
    return tables[0]


def test_withheld_videos_with_thumbnail_reason_and_release_command(serve_as, tmp_path):
    project = serve_as(_project(tmp_path / "project"))
    at = signed_in()
    at.switch_page("views/data.py").run()
    assert not at.exception, at.exception
    assert "3 video(s) withheld" in " ".join(w.value for w in at.warning)
    table = _withheld_table(at).set_index("video_id")
    assert list(table.index) == [SHOWN, RELEASED, NO_THUMB]  # the path-like id is never shown
    assert table.loc[SHOWN, "status"] == "withheld"  # its sign-off was for another output
    assert table.loc[RELEASED, "status"].startswith("released")
    images = at.get("image")
    assert len(images) == 2, "one pixelated thumbnail per withheld video that has one"
    code = " ".join(c.value for c in at.code)
    for video_id in (SHOWN, RELEASED, NO_THUMB):
        assert f"luskit deid release {video_id} --reviewer '{REVIEWER}'" in code
        assert f"luskit deid show {video_id} --out /tmp/{video_id}.mp4" in code
    assert "passwd" not in code
    markdown = " ".join(m.value for m in at.markdown)
    assert f"**{SHOWN}**: text_in_image; withheld" in markdown
    assert "no thumbnail" in " ".join(c.value for c in at.caption)
    assert not (project / paths.VIDEOS).exists()


def test_no_withheld_video_and_a_broken_sign_off_file(serve_as, tmp_path):
    project = _project(tmp_path / "project")
    report = json.loads((project / paths.DEID_REPORT).read_text())
    report["withheld"] = []
    (project / paths.DEID_REPORT).write_text(json.dumps(report))
    serve_as(project)
    at = signed_in()
    at.switch_page("views/data.py").run()
    assert not at.exception and "No video is withheld." in " ".join(s.value for s in at.success)
    report["withheld"] = [{"video_id": SHOWN, "reason": "text_in_image", "output_sha256": "1" * 64}]
    (project / paths.DEID_REPORT).write_text(json.dumps(report))
    with open(project / paths.DEID_RELEASES, "a") as fh:
        fh.write("hand edit\n")
    at.run()
    assert not at.exception
    assert "releases.jsonl" in " ".join(e.value for e in at.error)
    assert _withheld_table(at)["status"].tolist() == ["withheld"]
