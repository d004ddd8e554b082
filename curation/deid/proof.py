"""Evidence that de-identification worked, for a person and for CI (the accepted kinds, field-references D):

1. planted-PHI search: every string the demo generator planted (data/raw/planted_phi.json), looked for in
   OCR text, MP4 bytes and tags, artifact tables and the QC contact sheets;
2. the text search of every output frame (text_search.py): no word outside the allow-list, coverage 1.0;
3. header allow-list scan: MP4 container/stream tags and the `technical` header JSON of artifact tables;
4. human QC: contact sheets, first/middle/last frame of every video before and after.

Findings name the video or artifact and the KIND of PHI ("names", "ids", ...), never the string itself:
the report is an artifact and must not become a PHI carrier.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Tags the MP4 muxer writes by itself and that carry nothing about the patient or the software.
ALLOWED_MP4_TAGS = frozenset({"format.major_brand", "format.minor_version", "format.compatible_brands",
                              "stream.language", "stream.handler_name", "stream.vendor_id"})
MIN_OCR_NEEDLE = 4  # shorter planted strings would match OCR noise (3-letter names are covered by full names)
MIN_BYTE_NEEDLE = 5  # in compressed bytes a 4-byte match is a coincidence a few times per gigabyte
_OCR_SMALL = 300  # frames with a smaller side than this are read at 2x: tesseract misses tiny glyphs


def allowed_header_fields() -> frozenset[str]:
    """The ingest allow-list of header fields that may appear in artifacts (one list: the readers'); fields
    of the nested Sequence of Ultrasound Regions items appear as "Regions.<keyword>"."""
    from curation.readers import ALLOWED_HEADER_FIELDS, REGION_FIELDS

    return frozenset(ALLOWED_HEADER_FIELDS) | {f"Regions.{k}" for k in REGION_FIELDS}


def normalize(text: str) -> str:
    """Upper-case letters and digits only: '1950-01-02' and 'DOB 19500102' compare equal inside OCR text."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def _pieces(text: str, single_words: bool) -> set[str]:
    """Sub-strings that betray `text` on their own: a name's parts ("KIM", "MINJI" of "KIM^MINJI"); for
    other multi-word strings (a hospital) pairs of neighbouring words, since single words like "DEMO" or
    "GENERAL" also occur innocently (a device called "DemoSonics")."""
    words = [w for w in re.split(r"[\s^]+", text) if w]
    if single_words:
        return set(words)
    return {f"{a} {b}" for a, b in zip(words, words[1:])}


@dataclass(frozen=True, repr=False)
class PlantedPhi:
    """The planted strings by kind, prepared for matching. Never print or store `needles`/`raw` (the repr
    shows counts only, so a test failure or a log line cannot spill them)."""

    needles: tuple[tuple[str, str], ...]  # (kind, normalized string) for OCR text
    raw: tuple[tuple[str, bytes], ...]  # (kind, exact bytes) for files
    unchecked: int  # planted strings too short to search for safely

    @classmethod
    def from_mapping(cls, planted: Mapping[str, Iterable[str]]) -> PlantedPhi:
        needles, raw, unchecked = set(), set(), 0
        for kind, strings in planted.items():
            for s in strings:
                parts = {s, *_pieces(s, single_words=kind == "names")}
                found = False
                for part in parts:
                    if len(normalize(part)) >= MIN_OCR_NEEDLE:
                        needles.add((kind, normalize(part)))
                        found = True
                    for variant in {part, part.upper(), part.replace("^", " ")}:
                        if len(variant.encode()) >= MIN_BYTE_NEEDLE:
                            raw.add((kind, variant.encode()))
                unchecked += not found
        return cls(tuple(sorted(needles)), tuple(sorted(raw)), unchecked)

    def __repr__(self) -> str:
        return f"PlantedPhi(<{len(self.needles)} text and {len(self.raw)} byte needles>, unchecked={self.unchecked})"

    @classmethod
    def load(cls, path: Path) -> PlantedPhi | None:
        """Read planted_phi.json ({kind: [strings]}); None when the file does not exist (real data)."""
        path = Path(path)
        return cls.from_mapping(json.loads(path.read_text())) if path.exists() else None

    def in_text(self, text: str) -> set[str]:
        """Kinds of planted PHI whose normalized string occurs in `text` (OCR output)."""
        hay = normalize(text)
        return {kind for kind, needle in self.needles if needle in hay}

    def in_bytes(self, data: bytes) -> set[str]:
        """Kinds of planted PHI whose exact bytes occur in `data`."""
        return {kind for kind, needle in self.raw if needle in data}

    def in_file(self, path: Path, chunk: int = 1 << 22) -> set[str]:
        """Kinds found in a file's bytes, read in overlapping chunks (memory stays flat for big videos)."""
        overlap = max((len(n) for _, n in self.raw), default=1)
        found, tail = set(), b""
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                found |= self.in_bytes(tail + block)
                tail = block[-overlap:]
        return found


@dataclass(frozen=True)
class Token:
    """One OCR word: text, tesseract confidence (0-100) and its box (x0, y0, x1, y1) in frame pixels."""

    text: str
    conf: float
    box: tuple[int, int, int, int]


def ocr_tokens(frame: np.ndarray) -> list[Token]:
    """Tesseract words of an (H, W, 3) uint8 RGB frame (sparse-text mode: UI text is scattered)."""
    return ocr_tokens_many([frame])[0]


@contextlib.contextmanager
def _one_thread():
    """OMP_THREAD_LIMIT=1 for the tesseract child only: left in os.environ it would also throttle every later
    child of this process (torch in a training run started from the same Python process, e.g. a test session)."""
    old = os.environ.get("OMP_THREAD_LIMIT")
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)
        else:
            os.environ["OMP_THREAD_LIMIT"] = old


def ocr_tokens_many(frames: list[np.ndarray]) -> list[list[Token]]:
    """Tesseract words of each (H, W, 3) uint8 RGB image, read by ONE tesseract process.

    Tesseract reads a list file of images as pages, each page on its own (the same words, confidences
    and boxes as one call per image: tested), and loads its model once: that start-up cost as much as
    reading a stack of 3 frames. Each image goes over as an uncompressed PPM (pytesseract's default PNG
    spent longer in zlib than tesseract in reading), lossless, so tesseract sees the same pixels.
    """
    import tempfile

    import pytesseract
    from PIL import Image

    if not frames:
        return []
    scales = [2 if min(f.shape[:2]) < _OCR_SMALL else 1 for f in frames]
    with tempfile.TemporaryDirectory(prefix="luskit-ocr-") as tmp:
        names = []
        for k, (frame, scale) in enumerate(zip(frames, scales)):
            h, w = frame.shape[:2]
            img = cv2.resize(frame, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC) if scale > 1 else frame
            names.append(os.path.join(tmp, f"page{k:04d}.ppm"))
            Image.fromarray(np.ascontiguousarray(img), "RGB").save(names[-1], format="PPM")
        listing = os.path.join(tmp, "pages.txt")
        with open(listing, "w") as fh:
            fh.write("\n".join(names) + "\n")
        with _one_thread():  # one core per call: the stage runs OCR in a process pool
            d = pytesseract.image_to_data(listing, config="--psm 11", output_type=pytesseract.Output.DICT)
    out: list[list[Token]] = [[] for _ in frames]
    for page, text, conf, x, y, bw, bh in zip(d["page_num"], d["text"], d["conf"], d["left"], d["top"],
                                              d["width"], d["height"]):
        if text.strip() and float(conf) >= 0:
            s = scales[page - 1]  # page_num counts from 1, in list order
            out[page - 1].append(Token(text.strip(), float(conf), (x // s, y // s, (x + bw) // s, (y + bh) // s)))
    return out


def is_text_token(token: Token, min_conf: float) -> bool:
    """A confident word: confidence >= min_conf and at least 3 letters/digits (speckle reads as '»', 'ee')."""
    return token.conf >= min_conf and len(re.sub(r"[^0-9A-Za-z]", "", token.text)) >= 3


@dataclass(frozen=True)
class FrameFindings:
    tokens_outside: int  # confident text tokens whose centre lies outside the fan mask
    tokens_inside: int  # confident text tokens inside the fan (speckle misreads, or overlays on the image)
    phi_kinds: frozenset[str]  # kinds of planted PHI read anywhere in the frame


def scan_frame(frame: np.ndarray, fan: np.ndarray, planted: PlantedPhi | None, min_conf: float) -> FrameFindings:
    """OCR one (H, W, 3) uint8 output frame against its (H, W) bool fan mask."""
    return scan_frames([frame], fan, planted, min_conf)


_GAP = 24  # black rows between stacked frames: no word spans two frames


def scan_frames(frames: list[np.ndarray], fan: np.ndarray, planted: PlantedPhi | None,
                min_conf: float) -> FrameFindings:
    """OCR several (H, W, 3) uint8 frames of one video, stacked with black gaps (see scan_videos)."""
    return scan_videos([(frames, fan, planted, min_conf)])[0]


def scan_videos(videos: list[tuple[list[np.ndarray], np.ndarray, PlantedPhi | None, float]]) -> list[FrameFindings]:
    """OCR the sampled frames of several videos in ONE tesseract process; one FrameFindings per video.

    videos: (frames, fan, planted, min_conf) per video: frames (H, W, 3) uint8 of one size, fan the (H, W)
    bool mask. Each video's frames are stacked with black gaps into one page (tesseract's start-up costs
    more than reading a small frame); token boxes map back to (frame, row) of that video.
    """
    stacks = []
    for frames, *_ in videos:
        gap = np.zeros((_GAP, *frames[0].shape[1:]), dtype=np.uint8)
        stacks.append(np.concatenate([part for f in frames for part in (f, gap)][:-1]))
    pages = ocr_tokens_many(stacks)
    return [_findings(tokens, frames[0].shape[0], fan, planted, min_conf)
            for tokens, (frames, fan, planted, min_conf) in zip(pages, videos)]


def _findings(tokens: list[Token], h: int, fan: np.ndarray, planted: PlantedPhi | None,
              min_conf: float) -> FrameFindings:
    """Count the confident tokens of a stack of frames of height h inside/outside the fan; planted PHI."""
    outside = inside = 0
    for t in tokens:
        if not is_text_token(t, min_conf):
            continue
        cx = min(max((t.box[0] + t.box[2]) // 2, 0), fan.shape[1] - 1)
        cy = min(max((t.box[1] + t.box[3]) // 2 % (h + _GAP), 0), fan.shape[0] - 1)
        if fan[cy, cx]:
            inside += 1
        else:
            outside += 1
    kinds = planted.in_text(" ".join(t.text for t in tokens)) if planted else set()
    # Word by word too: joining can hide a needle split by a neighbour's misread characters.
    if planted:
        for t in tokens:
            kinds |= planted.in_text(t.text)
    return FrameFindings(outside, inside, frozenset(kinds))


def scan_mp4(path: Path, planted: PlantedPhi | None) -> dict:
    """Header scan of one output MP4: is it DICOM (must not be), tags outside ALLOWED_MP4_TAGS, planted PHI
    in the tags or anywhere in the bytes. Returns {"dicom": bool, "tags_outside_allowlist": [names],
    "phi_kinds": [kinds]} (tag names only, never values)."""
    import av

    with open(path, "rb") as fh:
        head = fh.read(132)
    dicom = head[128:132] == b"DICM"
    with av.open(str(path)) as container:
        tags = {f"format.{k}": v for k, v in container.metadata.items()}
        for stream in container.streams:
            tags.update({f"stream.{k}": v for k, v in stream.metadata.items()})
    kinds = set()
    if planted:
        kinds = planted.in_file(path)
        for value in tags.values():
            kinds |= planted.in_text(str(value))
    return {"dicom": dicom, "tags_outside_allowlist": sorted(set(tags) - ALLOWED_MP4_TAGS),
            "phi_kinds": sorted(kinds)}


def scan_table(frame, planted: PlantedPhi | None, allowed: frozenset[str]) -> dict:
    """Scan a pandas DataFrame: planted PHI in any text cell or column name, and header fields (keys of the
    `technical` JSON column) outside `allowed`. Returns {"phi": [(column, kind)], "fields_outside_allowlist":
    [field names]}."""
    phi, outside = set(), set()
    for column in frame.columns:
        values = frame[column]
        if planted:
            phi |= {(str(column), k) for k in planted.in_text(str(column))}
        if values.dtype != object and not str(values.dtype).startswith(("string", "str")):
            continue
        for value in values.dropna().astype(str).unique():
            if planted:
                phi |= {(str(column), k) for k in planted.in_bytes(value.encode()) | planted.in_text(value)}
            if column == "technical":
                outside |= set(_json_keys(value)) - allowed
    return {"phi": sorted(phi), "fields_outside_allowlist": sorted(outside)}


def _json_keys(value: str) -> list[str]:
    """Field names in a `technical` JSON cell: top-level keys, and "Regions.<key>" for region items."""
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return ["<technical is not JSON>"]
    if not isinstance(data, dict):
        return ["<technical is not a JSON object>"]
    keys = list(data)
    for item in data.get("Regions") or []:
        keys += [f"Regions.{k}" for k in item] if isinstance(item, dict) else ["Regions.<not an object>"]
    return keys


def scan_artifact_tables(folders: Iterable[Path], planted: PlantedPhi | None, allowed: frozenset[str]) -> list[dict]:
    """Scan every .parquet/.csv table and .json file in `folders` (I/O edge). Each finding names the
    artifact by folder name and relative path, e.g. {"artifact": "index/videos.parquet", ...}."""
    import pandas as pd

    results = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix not in {".parquet", ".csv", ".json"} or path.name.startswith("."):
                continue
            rel = f"{Path(folder).name}/{path.relative_to(folder).as_posix()}"
            if path.suffix == ".json":
                kinds = planted.in_file(path) if planted else set()
                found = {"phi": [("<file>", k) for k in sorted(kinds)], "fields_outside_allowlist": []}
            else:
                table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
                found = scan_table(table, planted, allowed)
            results.append({"artifact": rel, **found})
    return results


# --- contact sheets ----------------------------------------------------------------------------------

THUMB_H = 112  # thumbnail height in pixels: enough to judge a mask, too small to read burned-in text
_BLOCK = 12  # the "before" frames are pixelated outside the mask in blocks of this size (source pixels)


def obscure_outside(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The "before" view for QC: (H, W, 3) uint8 with everything outside the (H, W) bool mask pixelated,
    darkened and tinted red (the reviewer sees WHERE UI was removed but cannot read it), mask outlined green.

    The contact sheet is an artifact, so burned-in PHI must not survive even in the "before" column.
    """
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (max(1, w // _BLOCK), max(1, h // _BLOCK)), interpolation=cv2.INTER_AREA)
    blocks = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    tinted = (blocks.astype(np.float32) * 0.35).astype(np.uint8)
    tinted[..., 0] = np.maximum(tinted[..., 0], 70)
    out = np.where(mask[..., None], frame, tinted)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (0, 255, 0), max(1, round(min(h, w) / 150)))
    return out


THUMB_W = 150


def thumbnail(frame: np.ndarray, height: int = THUMB_H, width: int = THUMB_W) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 fitting in height x width, aspect kept, area-averaged."""
    h, w = frame.shape[:2]
    scale = min(height / h, width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def contact_sheets(rows: list[tuple[str, list[np.ndarray], list[np.ndarray]]], per_page: int = 20,
                   cell_w: int = THUMB_W) -> list[np.ndarray]:
    """Pages of (H, W, 3) uint8: one row per video, its label then 3 "before" and 3 "after" thumbnails.

    rows: (label, before thumbnails, after thumbnails); label holds only the video_id and action.
    """
    from PIL import Image, ImageDraw

    label_w, pad, cells = 190, 4, 6
    pages = []
    for start in range(0, max(len(rows), 1), per_page):
        chunk = rows[start:start + per_page]
        page_w = label_w + cells * (cell_w + pad) + pad
        header = 22
        img = Image.new("RGB", (page_w, header + max(len(chunk), 1) * (THUMB_H + pad) + pad), (20, 20, 20))
        draw = ImageDraw.Draw(img)
        draw.text((pad, 4), "video / action        before: first  middle  last  |  after: first  middle  last",
                  fill=(230, 230, 230))
        for r, (label, before, after) in enumerate(chunk):
            y = header + r * (THUMB_H + pad)
            for k, line in enumerate(label.split("\n")):
                draw.text((pad, y + 4 + 14 * k), line, fill=(230, 230, 230))
            for c, thumb in enumerate([*before, *after][:cells]):
                if thumb is None:  # a 2-frame video has no separate middle frame: its cell stays empty
                    continue
                tile = thumb[:THUMB_H, :cell_w]
                x = label_w + c * (cell_w + pad) + (cell_w - tile.shape[1]) // 2
                img.paste(Image.fromarray(tile), (x, y + (THUMB_H - tile.shape[0]) // 2))
        pages.append(np.asarray(img))
    return pages


# The report (report.json and the stage's summary lines) lives in report.py; re-exported for callers.
from curation.deid.report import build_report, summary_lines  # noqa: E402,F401
