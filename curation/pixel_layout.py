"""The layout of a DICOM file's Pixel Data element, checked without decoding anything.

Native data must hold the bytes the header implies; encapsulated (JPEG, JPEG 2000, RLE) data is walked
item by item, seeking over fragment bodies, so a file cut short by an interrupted transfer is found
before any decoder sees it. For JPEG / JPEG-LS / JPEG 2000 every frame's codestream header is read too
(curation/codestream.py): a decoder allocates the size the codestream declares, so it must equal
Rows x Columns and lie within ingest.max_side before the first decode.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from pydicom.uid import UID, JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes

from curation import codestream
from curation.readers import UnreadableInput

UNDEFINED_LENGTH = 0xFFFFFFFF
# Encapsulated syntaxes whose frames declare their own size in a header. RLE frames do not: the decoder
# sizes them from Rows/Columns, which readers_dicom has checked against max_side.
_SIZED_CODESTREAMS = frozenset(JPEGTransferSyntaxes) | frozenset(JPEGLSTransferSyntaxes) | frozenset(
    JPEG2000TransferSyntaxes)


def check_pixel_data(path: Path, pos: int, size: int, tsyntax: UID, n: int, rows: int, cols: int, max_side: int,
                     native_bytes: int) -> None:
    """Check the Pixel Data element at byte `pos` against the header without decoding (little endian).

    native_bytes: what the header implies uncompressed frames take (native data must hold that much).

    For JPEG / JPEG-LS / JPEG 2000 data also every frame's codestream header: the size it declares must
    be the header's and within max_side, because the decoder allocates what the codestream says.
    """
    if not tsyntax.is_little_endian:
        return  # retired big-endian syntax: leave the checks to the decoder
    explicit = not tsyntax.is_implicit_VR
    with open(path, "rb") as fh:
        fh.seek(pos)
        head = fh.read(12 if explicit else 8)
        if len(head) < (12 if explicit else 8):
            raise UnreadableInput("truncated", "file ends inside the Pixel Data element header")
        group, elem = struct.unpack("<HH", head[:4])
        if (group, elem) != (0x7FE0, 0x0010):
            raise UnreadableInput("unsupported_codec", "float or double-float pixel data")
        if explicit and head[4:6] not in (b"OB", b"OW", b"UN"):
            raise UnreadableInput("decode_error", "Pixel Data element has an invalid value representation")
        length = struct.unpack("<L", head[8:12] if explicit else head[4:8])[0]
        start = fh.tell()
        if not tsyntax.is_encapsulated:
            _check_native(length, start, size, native_bytes)
            return
        if length != UNDEFINED_LENGTH:
            raise UnreadableInput("decode_error",
                                  f"transfer syntax says {tsyntax.name} but pixel data is not encapsulated")
        sized = tsyntax in _SIZED_CODESTREAMS
        fragments, starts = _count_fragments(fh, size, (cols, rows, max_side) if sized else None)
    if fragments == 0:
        raise UnreadableInput("zero_frames", "encapsulated pixel data holds no fragments")
    if fragments < n:
        raise UnreadableInput("truncated", f"{fragments} compressed fragments for {n} frames")
    if sized and starts < n:
        raise UnreadableInput("truncated", f"{starts} compressed frames for {n} frames")


def _check_native(length: int, start: int, size: int, expected: int) -> None:
    if length == UNDEFINED_LENGTH:
        raise UnreadableInput("decode_error", "pixel data is encapsulated but the transfer syntax says native")
    if start + length > size:
        raise UnreadableInput("truncated", f"pixel data ends {start + length - size} bytes past the end of the file")
    if length < expected:
        raise UnreadableInput("truncated", f"pixel data holds {length} of the {expected} bytes the header implies")


def _count_fragments(fh, size: int, expect: tuple[int, int, int] | None) -> tuple[int, int]:
    """Walk the item tags of encapsulated pixel data, seeking over fragment bodies.

    Returns (fragments after the Basic Offset Table, fragments that start a codestream); raises on a cut or
    malformed list. With `expect` = (columns, rows, max_side), each codestream's declared frame size is
    read from its first bytes (codestream.frame_size) and checked before any decoder sees it. A frame
    always starts at a fragment (BOT and fragment grouping both work on item boundaries).
    """
    count, starts = -1, 0  # the first item is the Basic Offset Table
    while True:
        head = fh.read(8)
        if len(head) < 8:
            raise UnreadableInput("truncated", "file ends inside the compressed fragments")
        group, elem, length = struct.unpack("<HHL", head)
        if (group, elem) == (0xFFFE, 0xE0DD):
            return max(count, 0), starts
        if (group, elem) != (0xFFFE, 0xE000) or length == UNDEFINED_LENGTH:
            raise UnreadableInput("decode_error", "malformed encapsulated pixel data (bad item tag)")
        if fh.tell() + length > size:
            raise UnreadableInput("truncated", "a compressed fragment runs past the end of the file")
        if count >= 0 and expect is not None:
            body = fh.tell()
            if _check_codestream(fh.read(min(length, codestream.HEAD_BYTES)), expect, count, starts):
                starts += 1
            fh.seek(body)
        fh.seek(length, os.SEEK_CUR)
        count += 1


def _check_codestream(head: bytes, expect: tuple[int, int, int], fragment: int, starts: int) -> bool:
    """True when the fragment starts a codestream (then its declared size was checked); raises otherwise
    for a first fragment that starts none, or a size that differs from the header or exceeds max_side."""
    kind = codestream.kind(head)
    if kind is None:
        if fragment == 0:
            raise UnreadableInput("decode_error", "the compressed pixel data does not start with a JPEG or "
                                  "JPEG 2000 codestream")
        return False  # a continuation fragment of the current frame
    cols, rows, max_side = expect
    found = codestream.frame_size(head)
    name = "JPEG 2000" if kind in ("j2k", "jp2") else "JPEG"
    if found is None:
        raise UnreadableInput("decode_error", f"frame {starts + 1}: no {name} frame size in the first "
                              f"{codestream.HEAD_BYTES // 1024} KB of its first fragment")
    width, height = found
    if not (0 < width <= max_side and 0 < height <= max_side):
        raise UnreadableInput("absurd_dimensions", f"the {name} codestream of frame {starts + 1} says {width}x{height}"
                              f", outside 1..{max_side} (ingest.max_side); not decoded")
    if (width, height) != (cols, rows):
        raise UnreadableInput("decode_error", f"the {name} codestream of frame {starts + 1} says {width}x{height}, "
                              f"the header {cols}x{rows}: not decoded")
    return True
