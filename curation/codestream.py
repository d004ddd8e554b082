"""Frame size from the header of a compressed frame (JPEG, JPEG-LS, JPEG 2000), without decoding it.

A decoder allocates what the codestream says, not what the DICOM header says: a 2 KB file whose
JPEG 2000 SIZ marker claims 12000x12000 makes the decoder allocate 144 M pixels. readers_dicom reads
each frame's first bytes and checks this size against Rows/Columns and ingest.max_side first.

Layouts (big-endian):
- JPEG / JPEG-LS: SOI (FFD8), then marker segments FFxx + 2-byte length; a start-of-frame segment
  (SOF0-15 except DHT/JPG/DAC, or JPEG-LS SOF55 = FFF7) holds precision(1) height(2) width(2).
- JPEG 2000 codestream: SOC (FF4F) immediately followed by SIZ (FF51): Lsiz(2) Rsiz(2) Xsiz(4)
  Ysiz(4) XOsiz(4) YOsiz(4); the image is (Xsiz - XOsiz) x (Ysiz - YOsiz). A JP2 file wrapper (boxes,
  'jP  ' signature) holds the same codestream in its 'jp2c' box.
"""

from __future__ import annotations

import struct

HEAD_BYTES = 65536  # the start-of-frame segment must lie within a frame's first 64 KB
_SOI = b"\xff\xd8\xff"
_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
# Start-of-frame markers: C0-CF except C4 (DHT), C8 (JPG), CC (DAC); F7 is JPEG-LS SOF55.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}


def kind(head: bytes) -> str | None:
    """"jpeg" | "j2k" | "jp2" when `head` (a fragment's first bytes) starts a codestream, else None."""
    if head.startswith(_SOI):
        return "jpeg"
    if head.startswith(_SOC_SIZ):
        return "j2k"
    if head.startswith(_JP2):
        return "jp2"
    return None


def frame_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) the codestream starting at head[0] declares; None when not found in `head`."""
    found = kind(head)
    if found == "jpeg":
        return _jpeg_size(head)
    if found == "j2k":
        return _siz(head, 0)
    if found == "jp2":
        at = head.find(_SOC_SIZ)
        return _siz(head, at) if at >= 0 else None
    return None


def _siz(head: bytes, at: int) -> tuple[int, int] | None:
    if len(head) < at + 24:
        return None
    xsiz, ysiz, x0, y0 = struct.unpack(">IIII", head[at + 8:at + 24])
    return max(0, xsiz - x0), max(0, ysiz - y0)


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return None  # not at a marker: corrupt header
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            return None
        if marker in _SOF:
            if i + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[i + 5:i + 9])
            return width, height
        i += 2 + struct.unpack(">H", head[i + 2:i + 4])[0]
    return None
