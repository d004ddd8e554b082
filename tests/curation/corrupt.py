"""Build a corpus of broken (and a few good) ultrasound inputs for robustness tests.

`build_corpus(root)` writes >= 50 small files under root/<patient>/<YYYYMMDD>/ and returns one
`Case` per file saying what a reader/ingest must conclude: `expect` is the set of acceptable
quarantine reasons, `good` files must come through, and `expect=None` marks damage no reader can
see (flipped bytes inside native pixels or an MPEG stream still decode to *some* picture): those may
be kept or quarantined, but must never crash anything.

Every synthetic DICOM carries planted PHI (PLANTED_PHI) in its header so tests can prove none of it
leaks. Each file has its own SOP Instance UID and pixels, so no case is a duplicate of another by
accident. Reusable by other tests: `make_dicom`, `make_video`, `make_gif`.
"""

from __future__ import annotations

import io
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pydicom
import pydicom.filebase
import pydicom.filereader
import pydicom.filewriter
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless, CTImageStorage, DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage,
)

PATIENT_NAME = "QUIXOTE^ZELDA^MARGARETHE"
PATIENT_ID = "ZQX-MRN-77310"
BIRTH_DATE = "19470312"
STUDY_DATE = "20230614"
INSTITUTION = "SAINT ZQXWELL HOSPITAL"
ACCESSION = "ACC-ZQX-99120"
UID_ROOT = "1.2.826.0.1.3680043.10.5517"  # instance UIDs are PHI-adjacent: tests check none leaks
PLANTED_PHI = (PATIENT_NAME, "QUIXOTE", "ZELDA", PATIENT_ID, BIRTH_DATE, "1947-03-12", STUDY_DATE, "2023-06-14",
               INSTITUTION, ACCESSION, UID_ROOT)
FOLDER = f"{PATIENT_ID}/{STUDY_DATE}"  # <patient>/<YYYYMMDD>: the identity path_pattern expects
BOX = (4, 4, 59, 43)  # tissue region of the default 48x64 frames


@dataclass(frozen=True)
class Case:
    relpath: str  # under the corpus root
    expect: frozenset[str] | None  # acceptable quarantine reasons; None: undetectable damage
    good: bool = False  # must be ingested


def frames_for(seed: int, n: int, rows: int = 48, cols: int = 64, rgb: bool = False) -> np.ndarray:
    """(n, rows, cols[, 3]) uint8 smooth-ish random frames, distinct per seed (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, rows // 8 + 1, cols // 8 + 1) + ((3,) if rgb else ()), dtype=np.uint8)
    big = base.repeat(8, axis=1).repeat(8, axis=2)[:, :rows, :cols]
    return np.ascontiguousarray(big)


def _region(box=BOX, data_type: int = 1) -> Dataset:
    item = Dataset()
    item.RegionSpatialFormat, item.RegionDataType, item.RegionFlags = 1, data_type, 0
    item.RegionLocationMinX0, item.RegionLocationMinY0, item.RegionLocationMaxX1, item.RegionLocationMaxY1 = box
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = item.PhysicalDeltaY = 0.05
    return item


def make_dicom(seed: int, *, n: int = 4, codec: str = "native", rows: int = 48, cols: int = 64,
               patient_id: str = PATIENT_ID, acquired: str | None = STUDY_DATE, uid: str | None = None,
               regions: list[Dataset] | None = None, frame_time: float | None = 100.0,
               mutate: Callable[[Dataset], None] | None = None) -> bytes:
    """A small US Multi-frame DICOM with planted PHI.

    codec: native (MONOCHROME2) | rgb (native RGB) | jpeg (YBR_FULL_422) | rle | j2k | palette.
    `regions` None gives one tissue region; [] gives none. `mutate` edits the dataset before saving.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid or f"{UID_ROOT}.{seed}"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{UID_ROOT}.9.{seed}", f"{UID_ROOT}.8.{seed}"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PATIENT_NAME, patient_id, BIRTH_DATE
    ds.InstitutionName, ds.AccessionNumber, ds.Modality = INSTITUTION, ACCESSION, "US"
    ds.Manufacturer, ds.ManufacturerModelName = "ZQX Sonics", "Corrupt-O-Scan 1"
    if acquired:
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = acquired
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, n
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frame_time is not None:
        ds.FrameTime = frame_time
    ds.SequenceOfUltrasoundRegions = Sequence([_region()] if regions is None else regions)
    _pixels(ds, seed, n, rows, cols, codec)
    if mutate is not None:
        mutate(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _pixels(ds: Dataset, seed: int, n: int, rows: int, cols: int, codec: str) -> None:
    rgb = codec in ("rgb", "jpeg")
    arr = frames_for(seed, n, rows, cols, rgb=rgb)
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    if codec == "jpeg":
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PixelData = encapsulate([_jpeg(f) for f in arr], has_bot=True)
        ds["PixelData"].VR = "OB"
        return
    if codec == "palette":
        ds.PhotometricInterpretation = "PALETTE COLOR"
        ramp = np.arange(256, dtype=np.uint16)
        for colour, lut in (("Red", ramp * 257), ("Green", (255 - ramp) * 257), ("Blue", (ramp // 2) * 257)):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
            setattr(ds, f"{colour}PaletteColorLookupTableData", lut.astype("<u2").tobytes())
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OB"
    if codec == "rle":
        ds.compress(RLELossless, arr, generate_instance_uid=False)
    elif codec == "j2k":
        ds.compress(JPEG2000Lossless, arr, generate_instance_uid=False)


def _jpeg(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buf, "JPEG", quality=90, subsampling=1)  # 4:2:2 = YBR_FULL_422
    return buf.getvalue()


def make_video(seed: int, *, fmt: str = "mp4", codec: str = "libx264", n: int = 8, rate: int = 10,
               pix_fmt: str = "yuv420p", pts: list[int] | None = None, faststart: bool = False) -> bytes:
    """A tiny (48x64) video; `pts` in units of 1/(10*rate) s makes it variable-frame-rate."""
    if faststart:  # the muxer rewrites the file to move the index first: it needs a real file
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / f"v.{fmt}"
            _encode(str(target), fmt, codec, seed, n, rate, pix_fmt, pts, {"movflags": "faststart"})
            return target.read_bytes()
    buf = io.BytesIO()
    _encode(buf, fmt, codec, seed, n, rate, pix_fmt, pts, {})
    return buf.getvalue()


def _encode(target, fmt: str, codec: str, seed: int, n: int, rate: int, pix_fmt: str, pts, options: dict) -> None:
    with av.open(target, "w", format=fmt, options=options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        if codec == "libx264":
            stream.codec_context.options = {"threads": "1"}
        if pts is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, rate * 10)
        for i, frame in enumerate(frames_for(seed, n, rgb=True)):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if pts is not None:
                vf.pts, vf.time_base = pts[i], Fraction(1, rate * 10)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_gif(seed: int, durations_ms: list[int]) -> bytes:
    """An animated palette GIF; unequal `durations_ms` make it variable-frame-rate."""
    frames = [Image.fromarray(f, "RGB") for f in frames_for(seed, len(durations_ms), rgb=True)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=durations_ms, loop=0,
                   disposal=1, optimize=False)
    return buf.getvalue()


def pixel_offset(data: bytes) -> int:
    """Byte offset of the first pixel byte (after the Pixel Data element header) in a DICOM file."""
    return data.rindex(b"\xe0\x7f\x10\x00") + 12


def flip(data: bytes, offsets, mask: int = 0xFF) -> bytes:
    out = bytearray(data)
    for off in offsets:
        out[off] ^= mask
    return bytes(out)


def relabel(data: bytes, transfer_syntax: str) -> bytes:
    """The same file with only the File Meta's Transfer Syntax UID changed (the dataset bytes untouched)."""
    meta_end = 144 + struct.unpack("<L", data[140:144])[0]  # (0002,0000) group length value ends at 144
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = transfer_syntax
    buf = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(pydicom.filebase.DicomFileLike(buf), meta, enforce_standard=True)
    return data[:132] + buf.getvalue() + data[meta_end:]


def _set(**values) -> Callable[[Dataset], None]:
    def mutate(ds: Dataset) -> None:
        for key, value in values.items():
            if value is None:
                delattr(ds, key)
            else:
                setattr(ds, key, value)
    return mutate


TRUNC = frozenset({"truncated", "decode_error"})
HEADER_CUT = frozenset({"truncated", "decode_error", "not_media"})


def cases(seed: int = 0) -> dict[str, tuple[bytes, frozenset[str] | None, bool]]:
    """name -> (bytes, expected reasons or None, good)."""
    s = iter(range(seed * 1000 + 1, seed * 1000 + 1000))
    out: dict[str, tuple[bytes, frozenset[str] | None, bool]] = {}
    for codec in ("native", "rgb", "jpeg", "rle", "j2k", "palette"):
        out[f"good_{codec}.dcm"] = (make_dicom(next(s), codec=codec), None, True)
    out["GOOD_NOEXT"] = (make_dicom(next(s)), None, True)
    out["good_h264.mp4"] = (make_video(next(s)), None, True)
    out["good_h264_444.mp4"] = (make_video(next(s), pix_fmt="yuv444p", codec="libx264"), None, True)
    out["good_mpeg4.avi"] = (make_video(next(s), fmt="avi", codec="mpeg4"), None, True)
    out["good_mpeg2.mpeg"] = (make_video(next(s), fmt="mpeg", codec="mpeg2video", rate=25), None, True)
    out["good_vfr.gif"] = (make_gif(next(s), [100, 100, 300, 100, 200, 100]), None, True)
    out["good_vfr.mp4"] = (make_video(next(s), pts=[0, 10, 20, 50, 60, 70, 100, 110]), None, True)
    vector = _set(FrameTimeVector=[0, 100, 100, 300, 100, 100])
    out["good_ftv_vfr.dcm"] = (make_dicom(next(s), n=6, frame_time=None, mutate=vector), None, True)
    _truncations(out, s)
    _flips(out, s)
    _headers(out, s)
    _not_media(out, s)
    return out


def _truncations(out: dict, s) -> None:
    native = make_dicom(next(s), n=6)
    header_end = pixel_offset(native) - 12
    for cut in (60, 131, 200, header_end // 2, header_end - 1, header_end + 6, header_end + 13):
        out[f"trunc_native_hdr_{cut:05d}.dcm"] = (make_dicom(next(s), n=6)[:cut], HEADER_CUT, False)
    for frac in (0.55, 0.7, 0.85, 0.95, 0.999):
        data = make_dicom(next(s), n=6)
        out[f"trunc_native_px_{int(frac * 1000):03d}.dcm"] = (data[:int(len(data) * frac)], TRUNC, False)
    for codec in ("jpeg", "rle", "j2k"):
        for frac in (0.5, 0.9):
            data = make_dicom(next(s), n=6, codec=codec)
            out[f"trunc_{codec}_{int(frac * 100)}.dcm"] = (data[:int(len(data) * frac)], TRUNC, False)
    data = make_dicom(next(s), n=6, codec="jpeg")
    out["trunc_jpeg_no_delimiter.dcm"] = (data[:-8], TRUNC, False)
    for frac in (0.3, 0.6, 0.9):
        data = make_video(next(s), n=12)
        out[f"trunc_mp4_{int(frac * 100)}.mp4"] = (data[:int(len(data) * frac)], frozenset({"truncated"}), False)
        data = make_video(next(s), n=12, faststart=True)
        out[f"trunc_mp4_faststart_{int(frac * 100)}.mp4"] = (data[:int(len(data) * frac)], TRUNC, False)
    data = make_video(next(s), fmt="avi", codec="mpeg4", n=12)
    out["trunc_avi_60.avi"] = (data[:int(len(data) * 0.6)], TRUNC, False)
    data = make_video(next(s), fmt="mpeg", codec="mpeg2video", rate=25, n=12)
    out["trunc_mpeg_60.mpeg"] = (data[:int(len(data) * 0.6)], None, False)


def _flips(out: dict, s) -> None:
    data = make_dicom(next(s))
    start = pixel_offset(data)
    out["flip_native_pixels.dcm"] = (flip(data, range(start + 5, start + 400, 37)), None, False)
    data = make_dicom(next(s), codec="jpeg")
    soi = [i for i in range(pixel_offset(data), len(data) - 1) if data[i:i + 2] == b"\xff\xd8"]
    out["flip_jpeg_markers.dcm"] = (flip(data, soi), frozenset({"decode_error"}), False)
    data = make_dicom(next(s), codec="jpeg")
    out["flip_jpeg_body.dcm"] = (flip(data, range(pixel_offset(data) + 700, len(data) - 20, 97)), None, False)
    data = make_video(next(s), n=12)
    mdat = data.index(b"mdat") + 64
    out["flip_mp4_mdat.mp4"] = (flip(data, range(mdat, mdat + 2000, 53)), None, False)
    data = make_dicom(next(s), codec="rle")
    out["flip_rle_header.dcm"] = (flip(data, [pixel_offset(data) + 8 + 8]), None, False)


def _headers(out: dict, s) -> None:
    bad = {
        "ts_native_says_jpeg.dcm": (dict(TransferSyntaxUID=JPEGBaseline8Bit), "native", {"decode_error"}),
        "ts_jpeg_says_native.dcm": (dict(TransferSyntaxUID=ExplicitVRLittleEndian), "jpeg", {"decode_error"}),
        "ts_unknown.dcm": (dict(TransferSyntaxUID="1.2.3.4.5.6.7"), "native", {"unsupported_codec", "decode_error"}),
        "ts_jpegls.dcm": (dict(TransferSyntaxUID=JPEGLSLossless), "jpeg", {"unsupported_codec"}),
        "ts_deflated.dcm": (dict(TransferSyntaxUID=DeflatedExplicitVRLittleEndian), "native",
                            {"unsupported_codec", "decode_error", "truncated"}),
        "zero_frames.dcm": (dict(NumberOfFrames=0), "native", {"zero_frames"}),
        "absurd_rows.dcm": (dict(Rows=60000), "native", {"absurd_dimensions"}),
        "absurd_cols_zero.dcm": (dict(Columns=0), "native", {"absurd_dimensions"}),
        "absurd_frames.dcm": (dict(NumberOfFrames=10_000_000), "native", {"absurd_dimensions"}),
        "more_frames_than_data.dcm": (dict(NumberOfFrames=9), "native", {"truncated"}),
        "more_frames_than_fragments.dcm": (dict(NumberOfFrames=9), "jpeg", {"truncated"}),
        "bits_12.dcm": (dict(BitsAllocated=12, BitsStored=12), "native", {"unsupported_codec"}),
        "photometric_hsv.dcm": (dict(PhotometricInterpretation="HSV"), "native", {"unsupported_codec"}),
        "header_only.dcm": (dict(PixelData=None), "native", {"truncated"}),
        "single_frame.dcm": (dict(NumberOfFrames=None), "native", {"single_frame_image"}),
        "one_frame.dcm": (dict(NumberOfFrames=1), "native", {"single_frame_image"}),
        "no_regions.dcm": (dict(SequenceOfUltrasoundRegions=None), "native", {"no_ultrasound_region"}),
        "ct_modality.dcm": (dict(Modality="CT", SOPClassUID=CTImageStorage), "native", {"not_ultrasound"}),
        "palette_without_lut.dcm": (dict(RedPaletteColorLookupTableData=None), "palette", {"decode_error"}),
    }
    for name, (values, codec, expect) in bad.items():
        tsyntax = values.pop("TransferSyntaxUID", None)
        data = make_dicom(next(s), codec=codec, mutate=_set(**values))
        out[name] = (relabel(data, tsyntax) if tsyntax else data, frozenset(expect), False)
    data = make_dicom(next(s))  # NumberOfFrames "4 " -> "x4": not a number (pydicom refuses to write it)
    element = b"\x28\x00\x08\x00IS\x02\x004 "
    out["frames_not_number.dcm"] = (data.replace(element, element[:-2] + b"x4"), frozenset({"absurd_dimensions"}),
                                    False)
    colour = make_dicom(next(s), regions=[_region(data_type=2)])
    out["region_not_tissue.dcm"] = (colour, frozenset({"no_ultrasound_region"}), False)
    out["no_patient_id.dcm"] = (make_dicom(next(s), patient_id=""), frozenset({"missing_identity"}), False)
    out["preamble_then_garbage.dcm"] = (b"\0" * 128 + b"DICM" + bytes(range(256)) * 4, HEADER_CUT, False)
    out["one_frame.mp4"] = (make_video(next(s), n=1), frozenset({"single_frame_image"}), False)
    out["one_frame.gif"] = (make_gif(next(s), [100]), frozenset({"single_frame_image"}), False)


def _not_media(out: dict, s) -> None:
    rng = np.random.default_rng(next(s))
    not_media = frozenset({"not_media"})
    for i in range(4):
        out[f"random_{i}.mp4"] = (rng.integers(0, 256, 4096 + 997 * i, dtype=np.uint8).tobytes(), not_media, False)
    out["random.dcm"] = (rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), not_media, False)
    out["empty.dcm"] = (b"", not_media, False)
    out["empty.mp4"] = (b"", not_media, False)
    out["EMPTY_NOEXT"] = (b"", not_media, False)
    out["text.dcm"] = (b"Patient list exported from the ward system\n" * 20, not_media, False)
    out["playlist.mp4"] = (b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
                           not_media, False)
    png = io.BytesIO()
    Image.fromarray(frames_for(next(s), 1, rgb=True)[0]).save(png, "PNG")
    out["screenshot.dcm"] = (png.getvalue(), frozenset({"single_frame_image"}), False)


def build_corpus(root: Path, seed: int = 0) -> list[Case]:
    """Write every case under root/<patient>/<YYYYMMDD>/ and return the cases (sorted by path)."""
    out = []
    for name, (data, expect, good) in cases(seed).items():
        path = Path(root) / FOLDER / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(Case(f"{FOLDER}/{name}", expect, good))
    return sorted(out, key=lambda c: c.relpath)
