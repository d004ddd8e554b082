"""A red-team corpus for the de-identification stage, built in the test: burned-in names, MRNs and dates
where a privacy officer would put them (corners, over the moving fan, on a few frames only, small and
large fonts, low contrast, inverted, rotated), DICOM overlay planes, region boxes that include the UI and
screen recordings with banners; as DICOM files and as MP4 videos. Small in pixels so the stage runs in
minutes. Every string is fake.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage

from curation.deid.encode import write_mp4

H, W, N = 168, 224, 16  # screen size and frames per case
FAN = (40, 24, 215, 163)  # x0, y0, x1, y1 of the tissue box on the screen
NAME, MRN, DATE = "DOE JOHN", "4455667", "2023-06-14"
PLANTED = {"names": ["DOE JOHN", "JOHN"], "ids": [MRN], "dates": [DATE, "20230614", "14.06.2023"]}


@dataclass(frozen=True)
class Case:
    """One red-team file: `text` drawn at `org` (screen pixels) on frames `frames` (all when None)."""

    name: str
    kind: str  # "dicom" (region box = FAN or the whole screen), "video" (a screen recording)
    text: str
    org: tuple[int, int]
    scale: float = 0.45
    colour: tuple[int, int, int] = (255, 255, 255)
    thick: int = 1
    angle: float = 0.0  # degrees counter-clockwise about org
    frames: tuple[int, int] | None = None
    whole_region: bool = False  # the DICOM's region box is the whole screen (the UI is inside it)
    box: bool = False  # draw a filled box behind the text (inverted: dark text on a light box)
    banner: bool = False  # a recording's title bar with the name
    overlay_plane: bool = False  # the text only in a DICOM overlay plane (60xx), not in the pixels
    seed: int = 0
    extra: dict = field(default_factory=dict)


def _fan_mask() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    x0, y0, x1, y1 = FAN
    ax, ay = (x0 + x1) / 2, y0 - 30
    r, th = np.hypot(xx - ax, yy - ay), np.degrees(np.arctan2(xx - ax, yy - ay))
    inside = (r >= 36) & (r <= 170) & (np.abs(th) <= 36)
    box = np.zeros((H, W), bool)
    box[y0:y1 + 1, x0:x1 + 1] = True
    return inside & box


def _draw(img: np.ndarray, case: Case) -> np.ndarray:
    """Draw the case's text onto an (H, W, 3) uint8 frame (anti-aliased, rotated about org)."""
    layer = np.zeros((H, W), np.uint8)
    (tw, th), base = cv2.getTextSize(case.text, cv2.FONT_HERSHEY_SIMPLEX, case.scale, case.thick)
    out = img.copy()
    if case.box:
        x, y = case.org
        cv2.rectangle(out, (x - 3, y - th - 4), (x + tw + 3, y + base + 2), (235, 235, 235), -1)
    cv2.putText(layer, case.text, case.org, cv2.FONT_HERSHEY_SIMPLEX, case.scale, 255, case.thick, cv2.LINE_AA)
    if case.angle:
        m = cv2.getRotationMatrix2D(case.org, case.angle, 1.0)
        layer = cv2.warpAffine(layer, m, (W, H))
    a = (layer.astype(np.float32) / 255)[..., None]
    return (out * (1 - a) + np.array(case.colour, np.float32) * a).round().astype(np.uint8)


def frames_of(case: Case) -> np.ndarray:
    """(N, H, W, 3) uint8: a moving speckle fan in its box, depth ticks beside it, the case's text."""
    rng = np.random.default_rng(case.seed)
    fan = _fan_mask()
    base = rng.uniform(30, 150, (H, W))
    out = np.zeros((N, H, W, 3), np.uint8)
    for t in range(N):
        tissue = base + rng.normal(0, 25, base.shape)
        tissue += 70 * (np.abs(((np.arange(H) + 3 * t) % 40) - 20) < 2)[:, None]
        frame = np.where(fan, np.clip(tissue, 10, 230), 0).astype(np.uint8)
        frame = np.repeat(frame[..., None], 3, axis=2)
        for k in range(0, FAN[3] - FAN[1], 20):  # depth ticks: UI, not text
            frame[FAN[1] + k, FAN[0] - 8:FAN[0] - 3] = 180
        if case.frames is None or case.frames[0] <= t <= case.frames[1]:
            if not case.overlay_plane:
                frame = _draw(frame, case)
        out[t] = frame
    return out


def _dicom(case: Case, frames: np.ndarray, uid: str) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JOHN", MRN, "19500102"
    ds.Modality, ds.StudyDate = "US", "20230614"
    ds.Manufacturer, ds.ManufacturerModelName = "RedTeam", "RT-1"
    ds.Rows, ds.Columns, ds.NumberOfFrames = H, W, len(frames)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime, ds.BurnedInAnnotation = 40.0, "YES"
    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
    box = (0, 0, W - 1, H - 1) if case.whole_region else FAN
    (region.RegionLocationMinX0, region.RegionLocationMinY0,
     region.RegionLocationMaxX1, region.RegionLocationMaxY1) = box
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    ds["PixelData"].VR = "OB"
    if case.overlay_plane:  # the name as a 1-bit overlay (60xx): a viewer shows it, the pixels do not hold it
        layer = np.zeros((H, W), np.uint8)
        cv2.putText(layer, case.text, case.org, cv2.FONT_HERSHEY_SIMPLEX, case.scale, 1, case.thick)
        ds.add_new(0x60000010, "US", H)
        ds.add_new(0x60000011, "US", W)
        ds.add_new(0x60000040, "CS", "G")
        ds.add_new(0x60000050, "SS", [1, 1])
        ds.add_new(0x60000100, "US", 1)
        ds.add_new(0x60000102, "US", 0)
        ds.add_new(0x60003000, "OW", np.packbits(layer.ravel(), bitorder="little").tobytes())
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _recording(case: Case, frames: np.ndarray) -> np.ndarray:
    """A screen capture: the screen inside a grey desktop, a title bar with the name when case.banner."""
    out = np.full((len(frames), H + 40, W + 32, 3), 28, np.uint8)
    out[:, 32:32 + H, 16:16 + W] = frames
    if case.banner:
        bar = np.full((24, W + 32, 3), (52, 58, 70), np.uint8)
        cv2.putText(bar, f"US Capture - {NAME} {MRN}", (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (240, 240, 240), 1, cv2.LINE_AA)
        out[:, :24] = bar
    return out


def cases() -> list[Case]:
    """The corpus: 44 cases, half DICOM, half recordings."""
    full = f"{NAME} {MRN}"
    where = {"corner": (4, 14), "fan_top": (60, 60), "fan_mid": (56, 110), "fan_low": (70, 150)}
    out: list[Case] = []
    for kind in ("dicom", "video"):
        k = len(out)
        whole = kind == "dicom"  # the DICOM variants trust a region box that includes the UI corner
        out += [
            Case(f"{kind}-corner-name", kind, full, where["corner"], whole_region=whole, seed=k),
            Case(f"{kind}-corner-date", kind, DATE, (W - 96, 14), whole_region=whole, seed=k + 1),
            Case(f"{kind}-corner-mrn-small", kind, f"MRN {MRN}", where["corner"], scale=0.33,
                 whole_region=whole, seed=k + 2),
            Case(f"{kind}-fan-name", kind, full, where["fan_mid"], seed=k + 3),
            Case(f"{kind}-fan-large", kind, "DOE JOHN", where["fan_mid"], scale=0.9, thick=2, seed=k + 4),
            Case(f"{kind}-fan-small", kind, full, where["fan_mid"], scale=0.32, seed=k + 5),
            Case(f"{kind}-fan-date", kind, DATE, where["fan_low"], seed=k + 6),
            Case(f"{kind}-frames-5-9", kind, full, where["fan_mid"], frames=(5, 9), seed=k + 7),
            Case(f"{kind}-frame-7-only", kind, full, where["fan_top"], frames=(7, 7), seed=k + 8),
            Case(f"{kind}-frames-12-15", kind, DATE, where["fan_low"], frames=(12, 15), seed=k + 9),
            Case(f"{kind}-low-contrast", kind, full, where["fan_mid"], colour=(170, 170, 170), seed=k + 10),
            Case(f"{kind}-low-contrast-dark", kind, full, where["fan_mid"], colour=(60, 60, 60), thick=2, seed=k + 11),
            Case(f"{kind}-yellow", kind, full, where["fan_top"], colour=(255, 230, 0), seed=k + 12),
            Case(f"{kind}-inverted", kind, full, where["fan_mid"], colour=(0, 0, 0), box=True, seed=k + 13),
            Case(f"{kind}-rotated-90", kind, full, (120, 160), angle=90, seed=k + 14),
            Case(f"{kind}-rotated-20", kind, full, (60, 140), angle=20, seed=k + 15),
            Case(f"{kind}-rotated-minus-15", kind, DATE, (70, 80), angle=-15, seed=k + 16),
            Case(f"{kind}-two-lines", kind, NAME, where["fan_top"], extra={"second": MRN}, seed=k + 17),
            Case(f"{kind}-bold-corner-inside", kind, MRN, (150, 40), scale=0.6, thick=2, seed=k + 18),
            Case(f"{kind}-name-lower", kind, "Doe John", where["fan_mid"], seed=k + 19),
        ]
    out += [
        Case("dicom-overlay-plane", "dicom", full, where["fan_mid"], overlay_plane=True, seed=90),
        Case("dicom-overlay-plane-corner", "dicom", full, where["corner"], overlay_plane=True, seed=91),
        Case("video-banner", "video", "L 12cm", (150, 150), banner=True, seed=92),
        Case("video-banner-and-fan", "video", full, where["fan_mid"], banner=True, seed=93),
    ]
    return out


def write_case(raw: Path, case: Case, k: int) -> Path:
    """Write one case under raw/<patient>/<date>/ (recordings need the folder's identity); returns its path."""
    frames = frames_of(case)
    if "second" in case.extra:
        second = Case(case.name, case.kind, case.extra["second"], (case.org[0], case.org[1] + 18), seed=case.seed)
        frames = np.stack([_draw(f, second) for f in frames])
    folder = raw / f"RT{k:03d}" / "20230614"
    folder.mkdir(parents=True, exist_ok=True)
    if case.kind == "dicom":
        path = folder / f"{case.name}.dcm"
        path.write_bytes(_dicom(case, frames, f"1.2.826.0.1.3680043.8.498.77{k:03d}"))
    else:
        path = folder / f"{case.name}.mp4"
        write_mp4(path, _recording(case, frames), 25.0, crf=18, gop=250)
    return path
