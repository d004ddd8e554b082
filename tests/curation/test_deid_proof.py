"""The proof: OCR finds planted text and flags text outside the fan; clean frames give zero; header,
table and MP4 scans; contact sheets hide what they must; the report never holds a PHI string."""

from __future__ import annotations

import json

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from curation.deid import encode, masking, proof
from tests.curation.test_deid_masking import synthetic_screen

PLANTED = {"names": ["DOE^JANE", "DOE JANE", "JANE"], "ids": ["31415926"], "dates": ["1950-01-02", "20230614"],
           "institution": ["ST EXAMPLE HOSPITAL"]}


@pytest.fixture(scope="module")
def planted():
    return proof.PlantedPhi.from_mapping(PLANTED)


def _text_frame(lines, size: int = 16, h: int = 200, w: int = 360) -> np.ndarray:
    img = Image.new("RGB", (w, h), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    for k, line in enumerate(lines):
        draw.text((10, 10 + (size + 8) * k), line, fill=(235, 235, 235), font=ImageFont.load_default(size=size))
    return np.asarray(img).copy()


def test_ocr_reads_planted_text_and_the_proof_flags_it(planted):
    frame = _text_frame(["DOE JANE  ID 31415926", "DOB 1950-01-02"], size=14)
    fan = np.zeros(frame.shape[:2], bool)
    fan[150:, 200:] = True  # the "fan" is elsewhere: all text lies outside it
    found = proof.scan_frame(frame, fan, planted, min_conf=60)
    assert {"names", "ids", "dates"} <= found.phi_kinds
    assert found.tokens_outside >= 3 and found.tokens_inside == 0


def test_ocr_through_ppm_reads_what_tesseract_reads_from_png():
    """ocr_tokens hands tesseract an uncompressed PPM: the words, confidences and boxes must be exactly those
    of pytesseract's default PNG hand-over (the report's token counts depend on them)."""
    import cv2
    import pytesseract

    rng = np.random.default_rng(3)
    frame = _text_frame(["DOE JANE  ID 31415926", "DOB 1950-01-02", "L 4.2 cm"], size=14, w=240)
    frame[120:] = rng.integers(0, 120, frame[120:].shape, dtype=np.uint8)  # speckle: low-confidence misreads
    ours = proof.ocr_tokens(frame)  # 240 px wide: read at 2x
    scaled = cv2.resize(frame, (480, 400), interpolation=cv2.INTER_CUBIC)
    d = pytesseract.image_to_data(scaled, config="--psm 11", output_type=pytesseract.Output.DICT)  # via PNG
    png = [(t.strip(), float(c), (x // 2, y // 2, (x + w) // 2, (y + h) // 2))
           for t, c, x, y, w, h in zip(d["text"], d["conf"], d["left"], d["top"], d["width"], d["height"])
           if t.strip() and float(c) >= 0]
    assert len(ours) >= 3 and [(t.text, t.conf, t.box) for t in ours] == png


def test_one_tesseract_process_reads_each_image_as_alone():
    small = _text_frame(["DOE JANE  ID 31415926"], size=14, h=120, w=240)  # read at 2x
    large = _text_frame(["ST EXAMPLE HOSPITAL", "DOB 1950-01-02"], size=18, h=320, w=400)  # read at 1x
    blank = np.zeros((100, 100, 3), np.uint8)
    together = proof.ocr_tokens_many([small, blank, large, small])
    alone = [proof.ocr_tokens(f) for f in (small, blank, large, small)]
    assert together == alone and len(together[0]) >= 3 and together[1] == [] and len(together[2]) >= 3
    assert proof.ocr_tokens_many([]) == []


def test_stacked_frames_map_tokens_back_to_their_frame(planted):
    """One OCR call for several frames: text in the middle frame is found and placed by its own fan mask."""
    blank = np.zeros((200, 360, 3), np.uint8)
    text = _text_frame(["DOE JANE  ID 31415926"], size=14)  # rows 10-30 of its frame
    fan = np.zeros((200, 360), bool)
    fan[100:, :] = True  # top rows of every frame lie outside the fan
    found = proof.scan_frames([blank, text, blank], fan, planted, min_conf=60)
    assert {"names", "ids"} <= found.phi_kinds
    assert found.tokens_outside >= 2 and found.tokens_inside == 0
    fan_top = np.zeros((200, 360), bool)
    fan_top[:50, :] = True  # now the text rows are inside the fan
    found = proof.scan_frames([blank, text, blank], fan_top, planted, min_conf=60)
    assert found.tokens_inside >= 2 and found.tokens_outside == 0


def test_text_inside_the_fan_is_counted_apart(planted):
    frame = _text_frame(["LUNG RIGHT ANTERIOR"])
    found = proof.scan_frame(frame, np.ones(frame.shape[:2], bool), planted, min_conf=60)
    assert found.tokens_outside == 0 and found.tokens_inside >= 2 and not found.phi_kinds


def test_clean_fan_frames_give_zero(planted):
    frames, fan, _ = synthetic_screen(n=3)
    box = masking.mask_bbox(fan)
    for frame in frames:
        out = masking.mask_and_crop(frame, fan, box)
        found = proof.scan_frame(out, fan[box[1]:box[3] + 1, box[0]:box[2] + 1], planted, min_conf=60)
        assert found.tokens_outside == 0 and not found.phi_kinds


def test_the_unmasked_screen_is_caught(planted):
    frames, fan, _ = synthetic_screen(n=1)
    found = proof.scan_frame(frames[0], fan, planted, min_conf=60)
    assert {"names", "ids", "dates"} <= found.phi_kinds and found.tokens_outside >= 3


def test_planted_matching_rules(planted):
    assert planted.in_text("dob 1950.01.02") == {"dates"}  # separators do not matter
    assert planted.in_text("Jane Doe") == {"names"}  # a part of a name betrays it
    assert planted.in_text("DemoSonics EXAMPLE probe") == set()  # single institution words do not count
    assert planted.in_text("st example hospital") == {"institution"}
    assert planted.in_bytes(b"\x00\x01DOE^JANE\x00") == {"names"}
    assert planted.in_bytes(b"random bytes 3141592") == set()
    short = proof.PlantedPhi.from_mapping({"names": ["LI"]})
    assert short.unchecked == 1 and not short.needles


def test_planted_search_in_big_files_crosses_chunks(tmp_path, planted):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00" * 1000 + b"31415926" + b"\x00" * 1000)
    assert planted.in_file(path, chunk=1004) == {"ids"}  # the needle straddles two chunks
    assert proof.PlantedPhi.load(tmp_path / "absent.json") is None


def _mp4(path, metadata: dict | None = None):
    frames = synthetic_screen(n=4)[0][:, :64, :64]
    if metadata is None:
        encode.write_mp4(path, frames, 10.0)
        return path
    with av.open(str(path), "w", format="mp4") as c:  # an encoder that does leak metadata
        c.metadata.update(metadata)
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_mp4_scan_clean_and_leaky(tmp_path, planted):
    clean = proof.scan_mp4(_mp4(tmp_path / "clean.mp4"), planted)
    assert clean == {"dicom": False, "tags_outside_allowlist": [], "phi_kinds": []}
    leaky = proof.scan_mp4(_mp4(tmp_path / "leaky.mp4", {"title": "DOE^JANE", "comment": "x"}), planted)
    assert "format.title" in leaky["tags_outside_allowlist"] and "format.encoder" in leaky["tags_outside_allowlist"]
    assert leaky["phi_kinds"] == ["names"]


def test_table_scan_flags_fields_and_phi(planted):
    allowed = proof.allowed_header_fields()
    regions = [{"RegionDataType": 1, "RegionLocationMinX0": 3}]
    ok = pd.DataFrame({"video_id": ["P1_V1"], "technical": [json.dumps({"Modality": "US", "Regions": regions})]})
    assert proof.scan_table(ok, planted, allowed) == {"phi": [], "fields_outside_allowlist": []}
    bad = pd.DataFrame({"video_id": ["P1_V1"], "note": ["seen at St Example Hospital"],
                        "technical": [json.dumps({"Modality": "US", "PatientName": "X", "StationName": "Y",
                                                  "Regions": [{"RegionDataType": 1, "OperatorsName": "Z"}]})]})
    found = proof.scan_table(bad, planted, allowed)
    assert found["phi"] == [("note", "institution")]
    assert found["fields_outside_allowlist"] == ["PatientName", "Regions.OperatorsName", "StationName"]


def test_artifact_tables_are_scanned_by_relative_path(tmp_path, planted):
    (tmp_path / "index").mkdir()
    pd.DataFrame({"a": ["31415926"]}).to_parquet(tmp_path / "index" / "videos.parquet")
    (tmp_path / "index" / "extra.json").write_text('{"x": "nothing here"}')
    found = proof.scan_artifact_tables([tmp_path / "index"], planted, frozenset())
    assert [(f["artifact"], f["phi"]) for f in found] == [("index/extra.json", []),
                                                         ("index/videos.parquet", [("a", "ids")])]


def test_contact_sheet_before_column_is_unreadable(planted):
    frames, fan, _ = synthetic_screen(n=1)
    before = proof.obscure_outside(frames[0], fan)
    import cv2

    inner = cv2.erode(fan.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)  # inside the green outline
    assert (before[inner] == frames[0][inner]).all()  # the fan itself is shown as is
    assert not proof.scan_frame(before, fan, planted, 0).phi_kinds
    # pages: 45 videos at 20 per page
    thumbs = [proof.thumbnail(before)] * 3
    pages = proof.contact_sheets([(f"P1_V{k}\nauto-masked", thumbs, thumbs) for k in range(45)], per_page=20)
    assert len(pages) == 3 and pages[0].shape[0] > pages[2].shape[0]
    assert max(proof.thumbnail(np.zeros((720, 1280, 3), np.uint8)).shape[:2]) <= proof.THUMB_W


def _result(video_id, action="auto-masked", kept=0.99, failure=None, ocr_kinds=(), mp4_kinds=()):
    r = {"video_id": video_id, "action": action if failure is None else "failed", "failure": failure,
         "kept_fraction": kept if failure is None else None}
    if failure is None or ocr_kinds:
        r.update(ocr_frames=3, ocr_tokens_outside_fan=0, ocr_tokens_inside_fan=1, ocr_phi_kinds=list(ocr_kinds),
                 mp4={"dicom": False, "tags_outside_allowlist": [], "phi_kinds": list(mp4_kinds)}, crop=(1, 2, 3, 4))
    return r


def test_report_counts_and_carries_no_phi_strings(planted):
    results = [_result("P1_V1"), _result("P1_V2", "region-cropped", 0.8),
               _result("P2_V1", failure={"reason": "no_fan_found", "message": "P2_V1: no fan"}),
               _result("P2_V2", failure={"reason": "planted_phi_in_output", "message": "P2_V2: withheld"},
                       ocr_kinds=["names"])]
    tables = [{"artifact": "index/videos.parquet", "phi": [], "fields_outside_allowlist": ["StationName"]}]
    report = proof.build_report(results, tables, ["contact_sheet_001.png"], set(), planted, indexed=4)
    assert report["videos"] == 2 and report["failed"] == 2 and report["videos_indexed"] == 4
    assert report["actions"] == {"region-cropped": 1, "auto-masked": 1, "manual-region": 0, "failed": 2}
    assert report["ocr_frames"] == 9 and report["planted_phi_found"] == 1
    assert report["phi_findings"] == [{"where": "ocr", "video_id": "P2_V2", "kind": "names"}]
    assert report["header_fields_outside_allowlist"] == 1
    assert report["median_kept_fraction"] == pytest.approx(0.895)
    text = json.dumps(report)
    assert not any(s in text for strings in PLANTED.values() for s in strings)
    lines = proof.summary_lines(report, __import__("pathlib").Path("artifacts/deid"))
    assert any(line.startswith("PLANTED PHI") for line in lines)
    assert any(line.startswith("FAILED P2_V1") for line in lines)
