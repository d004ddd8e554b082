"""Readers refuse crafted DICOMs before they cost memory: codestream sizes checked before any decode, huge
header values skipped (or refused), never loaded. Files are real DICOMs written by pydicom and patched."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.sequence import Sequence

from curation import codestream, readers_dicom
from curation.readers import UnreadableInput, probe
from tests.curation import corrupt

SOC_SIZ = b"\xff\x4f\xff\x51"


def j2k_claiming(width: int, height: int, frames: int = 2) -> bytes:
    """A 64x64 JPEG 2000 DICOM whose every codestream's SIZ marker says width x height (the review's file)."""
    data = bytearray(corrupt.make_dicom(40, n=frames, codec="j2k", rows=64, cols=64))
    at = data.find(SOC_SIZ)
    assert at > 0
    while at >= 0:
        data[at + 8:at + 24] = struct.pack(">IIII", width, height, 0, 0)  # Xsiz Ysiz XOsiz YOsiz
        at = data.find(SOC_SIZ, at + 4)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A 48x64 JPEG baseline DICOM whose SOF0 segments say width x height."""
    data = bytearray(corrupt.make_dicom(41, codec="jpeg"))
    at = data.find(b"\xff\xc0")
    assert at > 0
    while at >= 0:
        data[at + 5:at + 9] = struct.pack(">HH", height, width)
        at = data.find(b"\xff\xc0", at + 2)
    return bytes(data)


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def test_a_j2k_codestream_claiming_12000_pixels_is_refused_before_decoding(tmp_path):
    path = write(tmp_path, "crafted.dcm", j2k_claiming(12000, 12000))
    assert path.stat().st_size < 16_000  # a few KB claiming 144 M pixels per frame
    with pytest.raises(UnreadableInput) as err:
        probe(path)  # probe decodes nothing: the refusal comes before any decoder runs
    assert err.value.reason == "absurd_dimensions"
    assert "JPEG 2000 codestream of frame 1 says 12000x12000" in str(err.value) and "ingest.max_side" in str(err.value)


def test_codestream_sizes_that_differ_from_the_header_are_refused(tmp_path):
    with pytest.raises(UnreadableInput, match="says 32x32, the header 64x64") as err:
        probe(write(tmp_path, "small.dcm", j2k_claiming(32, 32)))
    assert err.value.reason == "decode_error"
    with pytest.raises(UnreadableInput, match="JPEG codestream of frame 1 says 9000x9000") as err:
        probe(write(tmp_path, "jpeg_big.dcm", jpeg_claiming(9000, 9000)))
    assert err.value.reason == "absurd_dimensions"
    with pytest.raises(UnreadableInput, match="says 32x48, the header 64x48"):
        probe(write(tmp_path, "jpeg_small.dcm", jpeg_claiming(32, 48)))


def test_compressed_data_that_is_no_codestream_is_refused(tmp_path):
    data = bytearray(corrupt.make_dicom(42, codec="j2k", rows=64, cols=64))
    at = data.find(SOC_SIZ)
    data[at:at + 4] = b"\x00\x01\x02\x03"  # the first frame no longer starts with SOC + SIZ
    with pytest.raises(UnreadableInput, match="does not start with a JPEG or JPEG 2000 codestream"):
        probe(write(tmp_path, "garbage.dcm", bytes(data)))


def test_honest_compressed_files_still_read(tmp_path):
    for codec, rows, cols in (("j2k", 64, 64), ("jpeg", 48, 64), ("rle", 48, 64)):
        info = probe(write(tmp_path, f"{codec}.dcm", corrupt.make_dicom(43, codec=codec, rows=rows, cols=cols)))
        assert (info.width, info.height) == (cols, rows)


def test_codestream_sizes_of_real_files(external_dir):
    """The parser against frames other software encoded (pydicom-data, deid-data), JPEG and JPEG 2000."""
    checked = 0
    for path in sorted((external_dir / "dicom").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        if not ds.file_meta.TransferSyntaxUID.is_encapsulated:
            continue
        n = int(ds.get("NumberOfFrames", 1) or 1)
        for frame in generate_frames(ds.PixelData, number_of_frames=n):
            assert codestream.frame_size(frame[:codestream.HEAD_BYTES]) == (ds.Columns, ds.Rows), path.name
            checked += 1
    assert checked >= 121  # 120 JPEG frames + the J2K image
    jp2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x14ftypjp2 " + SOC_SIZ + b"\x00\x29\x00\x00" + \
        struct.pack(">IIII", 300, 200, 0, 0)
    assert codestream.frame_size(jp2) == (300, 200)
    assert codestream.frame_size(b"\xff\xd8\xff\xda") is None and codestream.kind(b"RIFF") is None


def _with_private_blob(size: int, nested: bool) -> bytes:
    def mutate(ds: Dataset) -> None:
        block = ds.private_block(0x0029, "LUSKIT TEST BLOB", create=True)
        if nested:
            item = Dataset()
            item.add_new(0x00291010, "OB", b"\x00" * size)
            ds.add_new(0x00291020, "SQ", Sequence([item]))
            ds[0x00291020].is_undefined_length = True  # pydicom cannot defer anything inside it
        else:
            block.add_new(0x10, "OB", b"\x00" * size)

    buf = io.BytesIO(corrupt.make_dicom(44, mutate=mutate))
    return buf.getvalue()


def _peak_during(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_header_element_is_skipped_not_loaded(tmp_path):
    path = write(tmp_path, "blob.dcm", _with_private_blob(24 << 20, nested=False))
    peak = _peak_during(lambda: probe(path))
    assert peak < 8 << 20, peak  # the 24 MB value was never read into memory
    header, _, _ = readers_dicom.read_header(path)
    assert 0x00291010 not in header and "PatientID" in header  # dropped, the rest intact


def test_huge_values_nested_where_they_cannot_be_deferred_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(readers_dicom, "MAX_HEADER_BYTES", 4 << 20)  # the cap at test scale (64 MB in use)
    path = write(tmp_path, "nested.dcm", _with_private_blob(6 << 20, nested=True))
    with pytest.raises(UnreadableInput) as err:
        probe(path)
    assert err.value.reason == "oversized_header" and "4 MB" in str(err.value)
    ok = write(tmp_path, "nested_small.dcm", _with_private_blob(1 << 20, nested=True))
    assert probe(ok).n_frames == 4
    peak = _peak_during(lambda: pytest.raises(UnreadableInput, probe, path))
    assert peak < 6 << 20, peak
