"""curation.readers: DICOM and video probing/decoding on real recordings, synthetic codecs and a corrupt corpus."""

from __future__ import annotations

import json
import logging
import tracemalloc
import warnings
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.pixels import apply_color_lut, iter_pixels

from curation import readers_dicom
from curation.exact_pixels import ExactReformatter
from curation.readers import (
    ALLOWED_HEADER_FIELDS, REASONS, REGION_FIELDS, Region, UnreadableInput, iter_frames, probe, resample_nearest,
    sniff, tissue_region,
)
from tests.curation import corrupt

DICOM_EXPECTED = {  # file -> (n_frames, fps, fps_source) or the reason it must be refused
    "deid-data_GREYSCALE_CINE.dcm": (27, 30.0, "FrameTime"),
    "pydicom-data_color3d_jpeg_baseline.dcm": (120, 30.0, "FrameTime"),
    "pydicom-data_OBXXXX1A_2frame.dcm": (2, 30.0, "default"),  # no timing in the header
    "deid-data_GREYSCALE_IMAGE.dcm": "single_frame_image",
    "pydicom-data_US1_J2KR.dcm": "single_frame_image",
    "pydicom-data_US1_UNCR.dcm": "single_frame_image",
}
# One of each container/codec family, decoded fully in the fast suite (the rest: test_external_decode_all).
FAST_DECODE = (
    "pocus/videos/convex/Cov-Atlas+(45).gif",  # palette GIF
    "pocus/videos/convex/Pneu_Avi_Video_004.mp4",  # H.264 yuv444p
    "pocus/videos/convex/Pneu_northumbria_0409_set2_vid4.avi",  # MPEG-4 Part 2 in AVI
    "pocus/videos/convex/Pneu_northumbria_0409_set6_vid4.avi",  # an MP4 named .avi
    "pocus/videos/convex/Reg_pat1Image_133410.mpeg",  # MPEG-2 PS, no frame count in the container
    "pocus/videos/convex/Reg-NormalLungs.mp4",  # odd size 148x141
    "dicom/deid-data_GREYSCALE_CINE.dcm",
    "dicom/pydicom-data_OBXXXX1A_2frame.dcm",
)


def external_videos(root: Path) -> list[Path]:
    pocus = sorted(p for p in (root / "pocus" / "videos").rglob("*") if p.is_file())
    return pocus + sorted((root / "raw_ui").glob("*.mp4"))


def decode_count(path: Path, info) -> int:
    count = 0
    for frame in iter_frames(path, info):
        assert frame.shape == (info.height, info.width, 3) and frame.dtype == np.uint8
        count += 1
    return count


# ---------------------------------------------------------------- real recordings

@pytest.mark.external
def test_external_videos_probe_matches_manifest(external_dir):
    manifest = pd.read_csv(external_dir / "manifest_all_videos.csv").set_index("file")
    files = external_videos(external_dir)
    assert len(files) == 125
    for path in files:
        row = manifest.loc[path.relative_to(external_dir).as_posix()]
        info = probe(path)
        assert (info.kind, info.width, info.height) == ("video", row.width, row.height), path.name
        # MPEG-2 PS states no count: the manifest's count came from decoding, like ours (demuxed packets).
        assert info.n_frames == row.frames, path.name
        assert info.fps == pytest.approx(row.fps, rel=2e-3) and info.fps_source == "container", path.name
        assert not info.variable_frame_rate, path.name
        assert info.patient_key is None and info.instance_key is None and info.acquired is None
        assert set(info.technical) <= set(ALLOWED_HEADER_FIELDS)


@pytest.mark.external
def test_external_dicoms(external_dir):
    manifest = pd.read_csv(external_dir / "dicom" / "manifest.csv").set_index("file")
    for name, expected in DICOM_EXPECTED.items():
        path = external_dir / "dicom" / name
        assert sniff(path) == "dicom"
        if isinstance(expected, str):
            with pytest.raises(UnreadableInput) as err:
                probe(path)
            assert err.value.reason == expected, name
            continue
        info = probe(path)
        n, fps, source = expected
        assert (info.n_frames, info.fps, info.fps_source) == (n, fps, source)
        assert n == manifest.loc[name, "frames"]
        assert (info.height, info.width) == (manifest.loc[name, "rows"], manifest.loc[name, "cols"])
        assert info.patient_key and info.instance_key and info.acquired is not None
        x0, y0, x1, y1 = (int(v) for v in manifest.loc[name, "us_regions"].split("]")[0].strip("[").split(","))
        assert (info.regions[0].x0, info.regions[0].y0, info.regions[0].x1, info.regions[0].y1) == (x0, y0, x1, y1)
        # OBXXXX1A states x1 = 800 on an 800-wide image: the tissue box is clipped to the frame.
        assert tissue_region(info.regions, info.height, info.width) == (x0, y0, min(x1, info.width - 1), y1)


@pytest.mark.external
@pytest.mark.parametrize("relpath", FAST_DECODE)
def test_external_decode_sample(external_dir, relpath):
    info = probe(external_dir / relpath)
    assert decode_count(external_dir / relpath, info) == info.n_frames


@pytest.mark.external
@pytest.mark.slow
def test_external_decode_all(external_dir):
    """Every frame of every real file (~35 s): probe's n_frames is exactly what iter_frames yields."""
    files = external_videos(external_dir) + sorted((external_dir / "dicom").glob("*.dcm"))
    for path in files:
        try:
            info = probe(path)
        except UnreadableInput as err:
            assert DICOM_EXPECTED.get(path.name) == err.reason, path.name
            continue
        assert info.fps > 0
        assert decode_count(path, info) == info.n_frames, path.name


@pytest.mark.external
def test_codec_paths_match_reference_decoders(external_dir):
    folder = external_dir / "dicom"
    frames = {}
    for name in ("pydicom-data_US1_J2KR.dcm", "pydicom-data_US1_UNCR.dcm"):  # single frames: decoder path only
        header, _, _ = readers_dicom.read_header(folder / name)
        frames[name] = next(readers_dicom.decoded_frames(folder / name, header, 480, 640))
    assert np.array_equal(*frames.values())  # JPEG 2000 lossless == uncompressed, as the NOTE says
    palette = folder / "pydicom-data_OBXXXX1A_2frame.dcm"
    ours = list(iter_frames(palette, probe(palette)))
    ds = pydicom.dcmread(palette)
    reference = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)
    assert np.array_equal(np.stack(ours), reference) and np.ptp(ours[0].astype(int), axis=2).max() > 0
    jpeg = folder / "pydicom-data_color3d_jpeg_baseline.dcm"
    first = next(iter_frames(jpeg, probe(jpeg))).astype(int)
    reference = next(iter_pixels(jpeg, indices=[0])).astype(int)  # pydicom's float YBR_FULL_422 -> RGB
    # ours converts with OpenCV's fixed-point BT.601: the same formula, at most 1 grey level of rounding apart
    assert np.abs(first - reference).max() <= 1 and (first != reference).mean() < 0.01


@pytest.mark.external
def test_memory_stays_flat_on_a_long_native_cine(external_dir):
    path = external_dir / "dicom" / "deid-data_GREYSCALE_CINE.dcm"  # 13 MB, 27 frames of 800x600
    info = probe(path)
    tracemalloc.start()
    for _ in iter_frames(path, info):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 600 * 800 * 3  # a few RGB frames, not the whole 13 MB loop


# ---------------------------------------------------------------- synthetic codecs

@pytest.mark.parametrize("codec", ["native", "rgb", "jpeg", "rle", "j2k", "palette"])
def test_synthetic_dicom_codecs(tmp_path, codec):
    path = tmp_path / "IM0001"  # no extension: detected by the preamble
    path.write_bytes(corrupt.make_dicom(3, n=5, codec=codec))
    info = probe(path)
    assert (info.kind, info.n_frames, info.height, info.width) == ("dicom", 5, 48, 64)
    frames = np.stack(list(iter_frames(path, info)))
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    source = corrupt.frames_for(3, 5, rgb=codec in ("rgb", "jpeg"))
    if codec in ("native", "rle", "j2k"):
        assert np.array_equal(frames, np.repeat(source[..., None], 3, axis=3))
    elif codec == "rgb":
        assert np.array_equal(frames, source)
    elif codec == "jpeg":
        assert np.abs(frames.astype(int) - source).mean() < 8  # lossy, but the same picture
    else:  # palette: red ramp, green inverse ramp, blue half ramp (corrupt.make_dicom)
        assert np.array_equal(frames[..., 0], source) and np.array_equal(frames[..., 1], 255 - source)
    assert info.patient_key == corrupt.PATIENT_ID and info.acquired.isoformat() == "2023-06-14"


def test_grey_frames_become_three_equal_channels():
    from curation.readers import to_rgb_uint8

    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (9, 14), dtype=np.uint8)
    for src in (grey, grey[:, ::2], grey[:, :, None], np.asfortranarray(grey)):
        out = to_rgb_uint8(src)
        plane = src[:, :, 0] if src.ndim == 3 else src
        assert out.shape == (*plane.shape, 3) and out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]
        assert np.array_equal(out, np.repeat(plane[:, :, None], 3, axis=2))
    deep = rng.integers(0, 4096, (5, 6), dtype=np.uint16)  # 12 bits stored: the top 8 bits are kept
    assert np.array_equal(to_rgb_uint8(deep, bits_stored=12)[..., 1], (deep >> 4).astype(np.uint8))
    assert np.array_equal(to_rgb_uint8(grey, invert=True)[..., 2], 255 - grey)


def test_ycbcr_channel_swap_equals_fancy_indexing():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (7, 10, 3), dtype=np.uint8)
    for src in (arr, arr[:, ::2], np.asfortranarray(arr)):  # contiguous, strided and Fortran-ordered input
        out = readers_dicom.ycbcr_to_ycrcb(src)
        assert out.flags["C_CONTIGUOUS"] and out.dtype == np.uint8
        assert np.array_equal(out, src[..., [0, 2, 1]])


def test_memory_flat_for_long_jpeg_loops(tmp_path):
    peaks = []
    for n in (20, 200):
        path = tmp_path / f"loop{n}.dcm"
        path.write_bytes(corrupt.make_dicom(n, n=n, codec="jpeg", rows=96, cols=128))
        info = probe(path)
        tracemalloc.start()
        assert sum(1 for _ in iter_frames(path, info)) == n
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0] + 200_000  # 10x the frames, about the same memory


def test_frame_rate_sources_in_order(tmp_path):
    def rate(**values):
        path = tmp_path / "x.dcm"
        path.write_bytes(corrupt.make_dicom(1, frame_time=None, mutate=corrupt._set(**values)))
        info = probe(path, default_fps=12.5)
        return info.fps, info.fps_source

    assert rate(FrameTime=40.0, CineRate=30, RecommendedDisplayFrameRate=20) == (25.0, "FrameTime")
    assert rate(FrameTime=33.333) == (30.0, "FrameTime")
    assert rate(CineRate=30, RecommendedDisplayFrameRate=20) == (30.0, "CineRate")
    assert rate(FrameTime=0.0, RecommendedDisplayFrameRate=20) == (20.0, "RecommendedDisplayFrameRate")
    assert rate() == (12.5, "default")


def test_irregular_frame_time_vector_resamples(tmp_path):
    path = tmp_path / "vfr.dcm"
    vector = [0, 100, 100, 300, 100, 100]  # ms between frames; frame 3 lasts three times as long
    path.write_bytes(corrupt.make_dicom(5, n=6, frame_time=None, mutate=corrupt._set(FrameTimeVector=vector)))
    info = probe(path)
    assert info.variable_frame_rate and info.fps_source == "FrameTimeVector"
    assert info.fps == pytest.approx(6 / 0.8) and info.n_frames == 6
    raw = corrupt.frames_for(5, 6)
    times = np.cumsum(vector) / 1000.0
    want = [int(np.argmin(np.abs(times - k / info.fps))) for k in range(6)]
    got = [int(np.flatnonzero([np.array_equal(f[..., 0], r) for r in raw])[0]) for f in iter_frames(path, info)]
    assert got == want and len(set(got)) < 6  # a frame repeats across the long gap


@pytest.mark.parametrize("kind", ["gif", "mp4"])
def test_variable_rate_video_is_resampled_to_nearest_frames(tmp_path, kind):
    path = tmp_path / f"vfr.{kind}"
    durations_ms = [100, 100, 100, 500, 100, 100, 100]  # a 0.5 s stall (no target lands on a tie)
    if kind == "gif":
        path.write_bytes(corrupt.make_gif(11, durations_ms))
    else:
        path.write_bytes(corrupt.make_video(11, n=7, pts=[0, 10, 20, 30, 80, 90, 100]))
    info = probe(path)
    assert info.variable_frame_rate and info.n_frames == 7 and info.fps == pytest.approx(7 / 1.1, rel=1e-3)
    rgb = ExactReformatter()  # the readers convert on swscale's exact path (the same RGB on any CPU)
    with av.open(str(path)) as container:
        decoded = [(f.time, rgb.array(f, "rgb24")) for f in container.decode(video=0)]
    times = np.array([t for t, _ in decoded]) - decoded[0][0]
    out = list(iter_frames(path, info))
    chosen = [int(np.argmin(np.abs(times - k / info.fps))) for k in range(info.n_frames)]
    assert chosen == [0, 2, 3, 3, 4, 4, 5]  # frames repeat across the stall and are dropped where dense
    assert len(out) == 7 and all(np.array_equal(f, decoded[i][1]) for f, i in zip(out, chosen))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.001, 1.0), min_size=1, max_size=40), st.floats(1.0, 60.0), st.integers(0, 80))
def test_resample_nearest_properties(gaps, fps, n_out):
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    picked = list(resample_nearest(((float(t), i) for i, t in enumerate(times)), fps, n_out))
    assert len(picked) == n_out and picked == sorted(picked)
    for k, index in enumerate(picked):
        distance = np.abs(times - k / fps)
        assert distance[index] <= distance.min() + 1e-9


def test_regions_and_tissue_choice(tmp_path):
    items = [corrupt._region((0, 0, 63, 10), data_type=2), corrupt._region((2, 3, 64, 47)),
             corrupt._region((0, 0, 5, 5))]
    path = tmp_path / "r.dcm"
    path.write_bytes(corrupt.make_dicom(2, regions=items))
    info = probe(path)
    assert len(info.regions) == 3 and info.regions[1] == Region(2, 3, 64, 47, 1, 1, 0.05, 0.05)
    assert tissue_region(info.regions, 48, 64) == (2, 3, 63, 47)  # largest tissue box, clipped to the frame
    assert [set(r) <= set(REGION_FIELDS) for r in info.technical["Regions"]] == [True] * 3


def test_acquisition_date_order(tmp_path):
    path = tmp_path / "d.dcm"
    path.write_bytes(corrupt.make_dicom(4, acquired=None, mutate=corrupt._set(
        StudyDate="20200101", ContentDate="20210202", AcquisitionDateTime="20220303101010")))
    assert probe(path).acquired.isoformat() == "2022-03-03"
    path.write_bytes(corrupt.make_dicom(4, acquired=None, mutate=corrupt._set(StudyDate="20200101")))
    assert probe(path).acquired.isoformat() == "2020-01-01"
    path.write_bytes(corrupt.make_dicom(4, acquired=None))
    assert probe(path).acquired is None


def test_technical_is_allow_listed_and_phi_free(tmp_path):
    path = tmp_path / "t.dcm"
    path.write_bytes(corrupt.make_dicom(6, n=6, codec="jpeg"))
    info = probe(path)
    assert set(info.technical) <= set(ALLOWED_HEADER_FIELDS)
    text = json.dumps(info.technical)
    assert not [phi for phi in corrupt.PLANTED_PHI if phi in text]
    assert info.technical["Manufacturer"] == "ZQX Sonics" and info.technical["NumberOfFrames"] == 6


# ---------------------------------------------------------------- corrupt corpus

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, corrupt.build_corpus(root)


def test_corpus_is_big_enough(corpus):
    _, cases = corpus
    assert len(cases) >= 50 and sum(c.good for c in cases) >= 10


def test_readers_classify_every_corrupt_file(corpus):
    """Readers raise only UnreadableInput, with an expected reason; readable files decode to n_frames."""
    root, cases = corpus
    for case in cases:
        path = root / case.relpath
        reader_level = None if case.expect is None else case.expect - {"missing_identity"}
        try:
            info = probe(path)
            count = decode_count(path, info)
        except UnreadableInput as err:
            assert not case.good and (reader_level is None or err.reason in reader_level), (case, err.reason)
            assert corrupt.PATIENT_ID not in str(err) and str(root) not in str(err)
            assert not [phi for phi in corrupt.PLANTED_PHI if phi in str(err)]
            continue
        assert case.good or not reader_level, case  # only undetectable damage may read
        assert count == info.n_frames and info.fps > 0


def test_unknown_reason_is_rejected():
    with pytest.raises(ValueError):
        UnreadableInput("something_else")
    assert "truncated" in REASONS and str(UnreadableInput("truncated", "x")).startswith("truncated: ")


def test_malformed_header_values_are_never_echoed(tmp_path, capfd, caplog, recwarn):
    """pydicom warns/logs with element values; readers must keep that quiet (values can be PHI)."""
    def mutate(ds):
        ds.add_new(0x00101030, "DS", "1")  # Patient's Weight, patched below to a non-number
        ds.AcquisitionDate = "QUIXOTE-DAY"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = corrupt.make_dicom(14, acquired=None, mutate=mutate)
    path = tmp_path / "m.dcm"
    path.write_bytes(data.replace(b"\x10\x00\x30\x10DS\x02\x001 ", b"\x10\x00\x30\x10DS\x02\x00ZQ"))
    caplog.clear()  # building the file logged the bad value itself
    capfd.readouterr()
    recwarn.clear()
    with caplog.at_level(logging.DEBUG):
        info = probe(path)
        assert sum(1 for _ in iter_frames(path, info)) == 4 and info.acquired is None
    said = caplog.text + "".join(capfd.readouterr()) + " ".join(str(w.message) for w in recwarn)
    assert "QUIXOTE" not in said and "ZQ" not in said
