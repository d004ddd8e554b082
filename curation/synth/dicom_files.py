"""Write synthetic ultrasound DICOM files the way ICU scanners export them, PHI included.

US Multi-frame Image Storage, MONOCHROME2 native or JPEG-baseline YBR_FULL_422 encapsulated, with a
Sequence of Ultrasound Regions describing the tissue box, cine timing (Frame Time, Cine Rate,
Recommended Display Frame Rate), and PHI where real headers carry it: patient, study, device,
UIDs, dates, a private block and nested sequences. Returns bytes so callers control where and how
(atomically) they land.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    PYDICOM_IMPLEMENTATION_UID,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)

PRIVATE_CREATOR = "LUSKIT DEMO VENDOR 1.0"
DEVICE = {"Manufacturer": "DemoSonics", "ManufacturerModelName": "HS-60 DEMO", "SoftwareVersions": "2.1.0"}


@dataclass(frozen=True)
class Identity:
    """Header PHI for one file."""

    name: str
    mrn: str
    birth_date: date
    sex: str
    accession: str
    physician: str
    hospital: str
    address: str
    study_uid: str
    series_uid: str
    sop_uid: str
    frame_of_reference_uid: str
    device_serial: str
    acquired: datetime


def _da(d: date) -> str:
    return d.strftime("%Y%m%d")


def _tm(t: datetime) -> str:
    return t.strftime("%H%M%S")


def _patient_and_study(ds: Dataset, who: Identity) -> None:
    ds.PatientName = who.name
    ds.PatientID = who.mrn
    ds.IssuerOfPatientID = "SDGH"
    ds.PatientBirthDate = _da(who.birth_date)
    ds.PatientSex = who.sex
    ds.PatientAge = f"{who.acquired.year - who.birth_date.year:03d}Y"
    ds.AccessionNumber = who.accession
    ds.ReferringPhysicianName = who.physician
    ds.PerformingPhysicianName = who.physician
    ds.OperatorsName = "SONO^KIM"
    ds.InstitutionName = who.hospital
    ds.InstitutionAddress = who.address
    ds.InstitutionalDepartmentName = "MEDICAL ICU"
    ds.StationName = "MICU-US-02"
    ds.DeviceSerialNumber = who.device_serial
    for prefix in ("Study", "Series", "Acquisition", "Content"):
        setattr(ds, f"{prefix}Date", _da(who.acquired))
        setattr(ds, f"{prefix}Time", _tm(who.acquired))
    ds.AcquisitionDateTime = who.acquired.strftime("%Y%m%d%H%M%S")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = who.study_uid, who.series_uid
    ds.SOPInstanceUID, ds.FrameOfReferenceUID = who.sop_uid, who.frame_of_reference_uid
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, 1
    ds.StudyDescription = "LUNG US ICU"
    ds.Modality = "US"
    for key, value in DEVICE.items():
        setattr(ds, key, value)
    # Nested PHI: scheduling data and other IDs, where naive top-level scrubbing misses it.
    request = Dataset()
    request.RequestedProcedureID = who.accession
    request.ScheduledProcedureStepID = f"SPS{who.mrn}"
    request.AccessionNumber = who.accession
    ds.RequestAttributesSequence = Sequence([request])
    other = Dataset()
    other.PatientID = f"NHI{who.mrn[::-1]}"
    other.IssuerOfPatientID = "NATIONAL HEALTH"
    ds.OtherPatientIDsSequence = Sequence([other])
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", who.name)  # vendors copy names and IDs into private tags
    block.add_new(0x11, "LO", who.mrn)
    inner = Dataset()
    inner.private_block(0x0011, PRIVATE_CREATOR, create=True).add_new(0x01, "LO", f"{who.hospital} {who.mrn}")
    block.add_new(0x12, "SQ", Sequence([inner]))


def _region(box: tuple[int, int, int, int], apex: tuple[float, float], delta_cm: float) -> Dataset:
    x0, y0, x1, y1 = box
    region = Dataset()
    region.RegionSpatialFormat = 1  # 2D
    region.RegionDataType = 1  # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = x0, y0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = x1, y1
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
    region.PhysicalDeltaX = region.PhysicalDeltaY = delta_cm
    region.ReferencePixelX0, region.ReferencePixelY0 = int(round(apex[0])), int(round(apex[1]))
    return region


def _jpeg_frames(frames: np.ndarray) -> list[bytes]:
    out = []
    for frame in frames:
        buf = io.BytesIO()
        # subsampling=1 is 4:2:2 chroma, which is what YBR_FULL_422 declares.
        Image.fromarray(frame, "RGB").save(buf, "JPEG", quality=82, subsampling=1)
        out.append(buf.getvalue())
    return out


def build_dicom(
    frames: np.ndarray,
    who: Identity,
    fps: float,
    box: tuple[int, int, int, int] | None,
    apex: tuple[float, float],
    jpeg: bool,
) -> bytes:
    """Encode frames into a DICOM file.

    frames: (T,H,W) uint8 for native MONOCHROME2 or (T,H,W,3) uint8 RGB when `jpeg` is True.
    box: the tissue region (x0,y0,x1,y1) inclusive, or None for a screen without an ultrasound region.
    A single frame gives Ultrasound Image Storage without cine attributes.
    """
    multi = frames.shape[0] > 1
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = who.sop_uid
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", "0001"]
    _patient_and_study(ds, who)
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.BurnedInAnnotation = "YES"
    ds.LossyImageCompression = "01" if jpeg else "00"
    if jpeg:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    if multi:
        ds.NumberOfFrames = int(frames.shape[0])
        ds.FrameTime = round(1000.0 / fps, 3)
        ds.CineRate = int(round(fps))
        ds.RecommendedDisplayFrameRate = int(round(fps))
        ds.FrameIncrementPointer = 0x00181063  # frames are spaced by Frame Time
    if box is not None:
        ds.SequenceOfUltrasoundRegions = Sequence([_region(box, apex, 0.05)])
    if jpeg:
        ds.PixelData = encapsulate(_jpeg_frames(frames), has_bot=True)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
        ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
