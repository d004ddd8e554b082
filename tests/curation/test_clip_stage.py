"""The clips stage end to end through real H.264 files: frame accuracy, cache, manifest, skips.

Test videos carry their own frame number: frame k shows k as an 8-bit code of black/white blocks
in the middle of the picture (inside the central square, so centre crops keep it too). Decoding
that code from every cached clip frame checks that clip position j holds exactly source frame
clip_frame_indices(start, end, length)[j], padded tails included.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import yaml

from curation import clip_stage
from curation.clip_cache import load_cache, load_clip, resize_frame
from curation.clips import MANIFEST_DTYPES, center_crop_box, clip_frame_indices, letterbox_box

BLOCK = 16  # source pixels per code block; 4 x 2 blocks = 8 bits = frames 0..255
SIZE = 64
VIDEOS = {  # video_id: (frames in the file, frames the table claims, width, height, fps)
    "vid-a": (62, 62, 128, 96, 30),  # landscape: letterbox bars top and bottom
    "vid-b": (39, 39, 96, 128, 25),  # portrait: bars left and right
    "vid-c": (40, 45, 128, 96, 30),  # the table claims more frames than the file has
    "vid-e": (40, 35, 128, 96, 30),  # ... and fewer
}
MISSING = "vid-d"  # in the table, no file
CORRUPT = "vid-f"  # in the table, the file is not a video


def _code_centres(height: int, width: int) -> list[tuple[float, float]]:
    """Source-pixel centres of the 8 code blocks (bit i at index i)."""
    top, left = height / 2 - BLOCK, width / 2 - 2 * BLOCK
    return [(top + BLOCK * (i // 4) + BLOCK / 2, left + BLOCK * (i % 4) + BLOCK / 2) for i in range(8)]


def coded_frame(k: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 grey frame showing k as 8 blocks (white = 1) on a textured grey background."""
    y, x = np.mgrid[0:height, 0:width]
    img = (60 + (x * 3 + y * 2 + k) % 60).astype(np.uint8)  # some texture, so the encoder has work
    for i, (cy, cx) in enumerate(_code_centres(height, width)):
        y0, x0 = int(cy - BLOCK / 2), int(cx - BLOCK / 2)
        img[y0:y0 + BLOCK, x0:x0 + BLOCK] = 235 if (k >> i) & 1 else 15
    return np.repeat(img[:, :, None], 3, axis=2)


def encode(path: Path, n: int, width: int, height: int, fps: int) -> None:
    """H.264 yuv420p MP4 with a 15-frame GOP and B-frames (decode order != presentation order)."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 15
        stream.options = {"crf": "18", "bf": "3"}
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(coded_frame(k, height, width), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def read_code(frame: np.ndarray, height: int, width: int, mode: str) -> int:
    """The frame number shown in a resized (size, size[, 3]) frame made from a (height, width) source."""
    grey = frame if frame.ndim == 2 else frame[..., 0]
    size = grey.shape[0]
    if mode == "letterbox":
        box = letterbox_box(height, width, size)
        sy, sx, oy, ox = box.height / height, box.width / width, box.top, box.left
    else:
        box = center_crop_box(height, width)
        sy = sx = size / box.height
        oy, ox = -box.top * sy, -box.left * sx
    bits = [grey[int(oy + cy * sy), int(ox + cx * sx)] > 128 for cy, cx in _code_centres(height, width)]
    return sum(int(b) << i for i, b in enumerate(bits))


def make_project(root: Path, clips: dict, videos_dir: Path | None = None) -> dict[str, Path]:
    """A tmp project: params.yaml, artifacts/deid/videos.parquet and (unless given) encoded videos."""
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"clips": clips}))
    deid = root / "artifacts" / "deid"
    deid.mkdir(parents=True)
    rows = [{"video_id": v, "patient_id": f"P{v[-1]}", "period": "development", "n_frames": claimed,
             "fps": float(fps), "height": h, "width": w} for v, (_, claimed, w, h, fps) in VIDEOS.items()]
    rows += [{"video_id": v, "patient_id": "Pd", "period": "temporal", "n_frames": 30, "fps": 30.0,
              "height": 96, "width": 128} for v in (MISSING, CORRUPT)]
    pd.DataFrame(rows[::-1]).to_parquet(deid / "videos.parquet", index=False)  # unsorted on purpose
    if videos_dir is None:
        videos_dir = root / "artifacts" / "videos"
        videos_dir.mkdir(parents=True)
        for v, (n, _, w, h, fps) in VIDEOS.items():
            encode(videos_dir / f"{v}.mp4", n, w, h, fps)
        (videos_dir / f"{CORRUPT}.mp4").write_bytes(b"not a video")
    return {"params_path": params, "deid_dir": deid, "videos_dir": videos_dir, "out_dir": root / "artifacts" / "clips"}


def run_stage(dirs: dict[str, Path]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = clip_stage.main(**dirs)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def pad_run(tmp_path_factory):
    dirs = make_project(tmp_path_factory.mktemp("pad"), {"size": SIZE})  # length 30, overlap 6, pad, letterbox, grey
    code, err = run_stage(dirs)
    return dirs, code, err, pd.read_parquet(dirs["out_dir"] / "manifest.parquet")


@pytest.fixture(scope="module")
def shift_run(tmp_path_factory, pad_run):
    clips = {"size": SIZE, "length": 16, "overlap": 4, "tail": "shift", "resize": "center_crop", "grayscale": False}
    dirs = make_project(tmp_path_factory.mktemp("shift"), clips, videos_dir=pad_run[0]["videos_dir"])
    code, err = run_stage(dirs)
    return dirs, code, err, pd.read_parquet(dirs["out_dir"] / "manifest.parquet")


def test_coded_video_round_trip(tmp_path):
    encode(tmp_path / "t.mp4", 20, 128, 96, 30)
    with av.open(str(tmp_path / "t.mp4")) as c:
        codes = [read_code(resize_frame(f.to_ndarray(format="gray"), 96, "letterbox"), 96, 128, "letterbox")
                 for f in c.decode(video=0)]
    assert codes == list(range(20))


def test_stage_writes_good_videos_and_reports_bad_ones(pad_run):
    dirs, code, err, manifest = pad_run
    assert code == 0
    assert manifest.groupby("video_id").size().to_dict() == {"vid-a": 3, "vid-b": 2}
    assert "vid-c: decoded 40 frames but the table says n_frames=45" in err
    assert "vid-e: decoded 40 frames but the table says n_frames=35" in err
    assert f"skipped video {MISSING}" in err and "missing" in err
    assert f"skipped video {CORRUPT}: cannot decode" in err
    cache = dirs["out_dir"] / "cache"
    assert sorted(p.name for p in cache.iterdir()) == ["vid-a.npy", "vid-b.npy"]  # no temporaries left


def test_manifest_columns_dtypes_order(pad_run):
    manifest = pad_run[3]
    assert list(manifest.columns) == list(MANIFEST_DTYPES)
    for col, dtype in MANIFEST_DTYPES.items():
        assert (pd.api.types.is_string_dtype(manifest[col]) if dtype == "str" else manifest[col].dtype == dtype), col
    assert manifest["clip_id"].tolist() == ["vid-a_c000", "vid-a_c001", "vid-a_c002", "vid-b_c000", "vid-b_c001"]
    a = manifest[manifest.video_id == "vid-a"]
    assert list(zip(a.start_frame_1based, a.end_frame_1based)) == [(1, 30), (25, 54), (49, 62)]
    assert (manifest.set_index("video_id").fps.to_dict()) == {"vid-a": 30.0, "vid-b": 25.0}


def test_cache_shape_dtype_mmap(pad_run):
    dirs, _, _, manifest = pad_run
    for vid, (n, _, w, h, _) in VIDEOS.items():
        if vid not in set(manifest.video_id):
            continue
        arr = load_cache(dirs["out_dir"] / "cache" / f"{vid}.npy")
        assert isinstance(arr, np.memmap) and arr.shape == (n, SIZE, SIZE) and arr.dtype == np.uint8
        box = letterbox_box(h, w, SIZE)  # everything outside the letterbox is black
        outside = np.ones((SIZE, SIZE), bool)
        outside[box.top:box.top + box.height, box.left:box.left + box.width] = False
        assert not arr[:, outside].any() and arr[:, ~outside].min() > 0


def check_frame_accuracy(dirs, manifest, length: int, mode: str) -> int:
    checked = 0
    for row in manifest.itertuples():
        n, _, w, h, _ = VIDEOS[row.video_id]
        clip = load_clip(dirs["out_dir"] / row.cache_file, row.start, row.end, length)
        expected = clip_frame_indices(row.start, row.end, length).tolist()
        assert [read_code(f, h, w, mode) for f in clip] == expected, row.clip_id
        checked += 1
    return checked


def test_frame_accuracy_pad_letterbox(pad_run):
    dirs, _, _, manifest = pad_run
    assert check_frame_accuracy(dirs, manifest, 30, "letterbox") == 5
    tail = manifest.iloc[-1]  # vid-b's last clip: frames 25-39 then 15 repeats of frame 39
    assert (tail.start, tail.end, tail.n_real_frames) == (24, 39, 15)


def test_frame_accuracy_shift_center_crop_rgb(shift_run):
    dirs, code, _, manifest = shift_run
    assert code == 0
    a = manifest[manifest.video_id == "vid-a"]  # 62 frames, L=16 step 12: full windows end at 52, then [46, 62)
    assert list(zip(a.start, a.end)) == [(0, 16), (12, 28), (24, 40), (36, 52), (46, 62)]
    assert load_cache(dirs["out_dir"] / "cache" / "vid-a.npy").shape == (62, SIZE, SIZE, 3)
    assert check_frame_accuracy(dirs, manifest, 16, "center_crop") == len(manifest)


def test_cache_matches_decord(pad_run):
    decord = pytest.importorskip("decord")
    dirs = pad_run[0]
    reader = decord.VideoReader(str(dirs["videos_dir"] / "vid-a.mp4"))
    cache = load_cache(dirs["out_dir"] / "cache" / "vid-a.npy")
    assert len(reader) == cache.shape[0]
    for k in (0, 14, 15, 29, 30, 61):  # around keyframes (GOP 15) and the ends
        ours = cache[k].astype(int)
        theirs = resize_frame(reader[k].asnumpy()[..., 0], SIZE, "letterbox").astype(int)
        assert np.abs(ours - theirs).max() <= 2, k  # PyAV luma vs decord RGB: rounding only


def test_bad_inputs_fail_with_a_message(tmp_path):
    dirs = {"params_path": tmp_path / "params.yaml", "deid_dir": tmp_path / "deid",
            "videos_dir": tmp_path / "videos", "out_dir": tmp_path / "clips"}
    dirs["params_path"].write_text(yaml.safe_dump({"clips": {}}))
    code, err = run_stage(dirs)
    assert code == 2 and "run the deidentify stage first" in err
    dirs["deid_dir"].mkdir()
    pd.DataFrame({"video_id": ["x"], "n_frames": [3]}).to_parquet(dirs["deid_dir"] / "videos.parquet")
    code, err = run_stage(dirs)
    assert code == 2 and "lacks column(s)" in err and "patient_id" in err
    dirs["params_path"].write_text(yaml.safe_dump({"clips": {"overlap": 40}}))
    code, err = run_stage(dirs)
    assert code == 2 and "overlap=40" in err


# --- resize and load_clip -------------------------------------------------------------------------

def test_letterbox_resize_pixels_match_seed():
    frame = np.full((771, 988), 200, np.uint8)
    out = resize_frame(frame, 256, "letterbox")
    assert out.shape == (256, 256) and out.dtype == np.uint8
    assert not out[:28].any() and not out[227:].any() and (out[28:227] == 200).all()
    rgb = resize_frame(np.repeat(frame[:, :, None], 3, axis=2), 256, "letterbox")
    assert rgb.shape == (256, 256, 3) and (rgb[..., 0] == out).all()


def test_center_crop_resize_keeps_the_middle():
    frame = np.zeros((100, 160), np.uint8)
    frame[:, 30:130] = 255  # the central 100x100 square
    out = resize_frame(frame, 50, "center_crop")
    assert out.shape == (50, 50) and (out == 255).all()


def test_load_clip_pads_by_repeating_last_frame(tmp_path):
    frames = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    path = tmp_path / "v.npy"
    np.save(path, frames)
    clip = load_clip(path, 5, 8, 6)
    assert clip.shape == (6, 4, 4) and clip.dtype == np.uint8
    assert clip[:, 0, 0].tolist() == [5, 6, 7, 7, 7, 7]
    assert load_clip(path, 0, 6, 6)[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(IndexError, match="rerun the clips stage"):
        load_clip(path, 8, 12, 6)
    with pytest.raises(ValueError):
        load_clip(path, 0, 8, 6)  # more real frames than the clip holds
