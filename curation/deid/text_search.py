"""Search EVERY output frame of a video for burned-in text, at far less than OCR-ing each frame.

The search streams over the decoded output frames once (the proof's verification decode) and plans a few
images for tesseract (`Probe`s); `judge` turns what tesseract read in them into findings. Coverage rule:

- every frame belongs to a WINDOW of `window` consecutive frames. The window's per-pixel max and min
  (brightest channel) hold every bright and every dark overlay drawn on any of its frames, at its own
  grey level, over a changed background. A cheap text detector (no model: strong edges closed into
  elongated, densely edged blobs of text-line shape, any angle) runs on both;
- where it fires, the detections of consecutive windows that overlap form a RUN (the overlay did not
  change); each run's box is cut from the run's max and min composites, deskewed, enlarged and OCR'd;
- every frame belongs to a SEGMENT of `segment` frames; the segment's max and min composites and binary
  views of them, of its mean and of its 3-frame persistence are OCR'd whole (`extreme_views`), and the
  text lines the detector finds in the binary views are cut out and read enlarged.

A frame is covered when its window was searched by the detector and its segment's views were read; the
detector's runs are read up to the `max_runs` budget (beyond it, in a video full of text-like speckle,
their frames are read in the segment views only: `runs_skipped` counts them). Coverage = covered frames /
frames; the stage withholds a video below 1.0 (fail closed).

Known gap (red-team test, strict xfail): thin text on only a few frames over very noisy speckle can stay
below tesseract's confidence bar after H.264, and is then published.

Pure: arrays in, arrays and dataclasses out. Frames are (h, w, 3) uint8 RGB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from curation.deid import masking

_K3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_KCLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))  # joins glyphs of one line in any direction
_TEXT_PX = 36  # crops are enlarged until their text line is about this tall (tesseract's comfortable size)


@dataclass(frozen=True)
class TextRules:
    """The text-search part of the `deidentify:` params (see params.yaml for each key's meaning)."""

    window: int = 4
    segment: int = 96
    contrast: int = 64
    max_runs: int = 24
    min_conf: float = 75.0
    min_chars: int = 3
    allow: tuple[str, ...] = ()
    low_conf: float = 60.0
    digits_conf: float = 40.0

    def allowed(self, text: str) -> bool:
        """Whether a token is an allow-listed technical token (whole-token, case-insensitive match)."""
        core = re.sub(r"^[^0-9A-Za-z]+|[^0-9A-Za-z%]+$", "", text)
        return any(re.fullmatch(p, core, flags=re.IGNORECASE) for p in self.allow)


@dataclass(frozen=True)
class Line:
    """A detected text-line candidate: rotated rectangle ((cx, cy), (w, h), angle) as cv2.minAreaRect,
    and its inclusive axis-aligned box (x0, y0, x1, y1) in frame pixels."""

    rect: tuple
    box: tuple[int, int, int, int]


def brightness(frame: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h, w) uint8 brightest channel (coloured text stays bright)."""
    return masking.channel_max(frame)


def detect_lines(gray: np.ndarray, contrast: int) -> list[Line]:
    """Text-line candidates in an (h, w) uint8 image.

    Glyph strokes have sharp, strong edges (a 3x3 morphological gradient >= `contrast`); closing them
    with a 7x7 disc joins the glyphs of one line into an elongated blob. A blob counts when its rotated
    rectangle is 5-64 px thick, at least 2.5x as long as thick, mostly filled, and 25-85 % of it is edge
    (speckle fields close into big ragged blobs; pleural lines are long but sparsely edged inside).
    """
    edges = (cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, _K3) >= contrast).astype(np.uint8)
    closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, _KCLOSE)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < 60 or max(w, h) < 16 or min(w, h) > 2 * 64:
            continue
        comp = labels[y:y + h, x:x + w] == i
        rect = cv2.minAreaRect(cv2.findNonZero(comp.astype(np.uint8)) + np.array([x, y], np.int32))
        thin, long_ = sorted(rect[1])
        if not (5 <= thin <= 64 and long_ >= 2.5 * thin and area >= 0.55 * thin * long_):
            continue
        density = float(edges[y:y + h, x:x + w][comp].mean())
        if 0.25 <= density <= 0.85:
            out.append(Line(rect, (x, y, x + w - 1, y + h - 1)))
    return out


@dataclass(frozen=True)
class Probe:
    """One image for tesseract: (H, W) uint8 `image`; the inclusive output `frames` it stands for;
    `kind` ("segment-max", "segment-min", "run-max", "run-min"); `box` the output pixels it shows, and
    `origin`/`scale` map an unrotated probe pixel (u, v) back to output (x0 + u / scale, y0 + v / scale);
    rotated crops (`rotated`) map every token to the box centre."""

    image: np.ndarray
    frames: tuple[int, int]
    kind: str
    box: tuple[int, int, int, int]
    scale: float = 1.0
    rotated: bool = False

    def to_output(self, u: float, v: float) -> tuple[int, int]:
        x0, y0, x1, y1 = self.box
        if self.rotated:
            return (x0 + x1) // 2, (y0 + y1) // 2
        return int(x0 + u / self.scale), int(y0 + v / self.scale)


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@dataclass
class _Run:
    """Detections of consecutive windows at one place: the frames and the composites of those frames."""

    box: tuple[int, int, int, int]
    rect: tuple
    first: int
    last: int
    hi: np.ndarray
    lo: np.ndarray
    seen: int = 0  # the last window index that extended the run
    grown: bool = False  # its box is the union of several detections' boxes


def crop_probes(images: list[tuple[np.ndarray, str]], rect, box, frames, pad: int = 6,
                bright: bool | None = None) -> list[Probe]:
    """Probes for one text-line candidate: its box cut from each (image, kind), deskewed and enlarged;
    with `bright` set, also split at the crop's own Otsu level (text, bright or dark, fills much of a
    line's box, so the local level separates it from the speckle around it), drawn black on white.

    A nearly horizontal line is cut straight; a tilted or vertical one is rotated level (both ways up,
    since a rectangle's angle does not say which way the text reads)."""
    (cx, cy), (rw, rh), angle = rect
    if rw < rh:  # make the rectangle's long side its width
        rw, rh, angle = rh, rw, angle - 90
    angle = (angle + 90) % 180 - 90
    thin = max(rh, 1.0)
    scale = float(np.clip(_TEXT_PX / thin, 1.0, 4.0))
    out = []
    h, w = images[0][0].shape
    for image, kind in images:
        if abs(angle) <= 5:
            x0, y0 = max(box[0] - pad, 0), max(box[1] - pad, 0)
            x1, y1 = min(box[2] + pad, w - 1), min(box[3] + pad, h - 1)
            crop = image[y0:y1 + 1, x0:x1 + 1]
            big = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            out += [Probe(v, frames, kind, (x0, y0, x1, y1), scale) for v in _with_split(big, bright)]
            continue
        m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
        size = (int((rw + 2 * pad) * scale), int((rh + 2 * pad) * scale))
        m[0, 2] += size[0] / 2 - cx
        m[1, 2] += size[1] / 2 - cy
        level = cv2.warpAffine(image, m, size, flags=cv2.INTER_CUBIC)
        for turned in (level, cv2.rotate(level, cv2.ROTATE_180)):
            out += [Probe(v, frames, kind, box, scale, rotated=True) for v in _with_split(turned, bright)]
    return out


def _with_split(crop: np.ndarray, bright: bool | None) -> list[np.ndarray]:
    if bright is None:
        return [crop]
    flag = cv2.THRESH_BINARY_INV if bright else cv2.THRESH_BINARY
    return [cv2.threshold(cv2.GaussianBlur(crop, (3, 3), 0), 0, 255, flag | cv2.THRESH_OTSU)[1]]


SATURATED = 250  # burned-in text is drawn at full white; B-mode tissue rarely saturates in glyph shapes


def extreme_views(hi: np.ndarray, lo: np.ndarray, persist=None, mean=None) -> list[tuple[np.ndarray, str, np.ndarray]]:
    """The images OCR'd for one segment, from its (h, w) uint8 max and min composites: both as they are;
    the min split at Otsu's level (static bright text, however faint, on the dark min of a moving fan);
    the max split the same way, dark side up (static dark text); the max's saturated pixels (white text on
    ANY frame of the segment, however briefly); the brightest 2 % of the segment `mean` (static text under
    codec noise, which lowers the min); and the brightest 1 % of `persist` = the max over the segment of
    the min of each 3 consecutive frames: text shown on only a few frames (3 or more in a row) keeps its
    level through those frames while moving speckle does not. Binary views are drawn black on white for
    tesseract. Returns (view, kind, the grey image it was made from)."""
    otsu = lambda img, flag: cv2.threshold(img, 0, 255, flag | cv2.THRESH_OTSU)[1]  # noqa: E731
    views = [(hi, "segment-max", hi), (lo, "segment-min", lo),
             (otsu(lo, cv2.THRESH_BINARY_INV), "segment-min-bright", lo),
             (otsu(hi, cv2.THRESH_BINARY), "segment-max-dark", hi),
             (np.where(hi >= SATURATED, 0, 255).astype(np.uint8), "segment-saturated", hi)]
    if mean is not None:  # the codec's noise on glyph edges lowers the min; the mean keeps static text
        views.append((_top(mean, True, 2.0), "segment-mean-bright", mean))
    if persist is not None:
        # (the darkest 1 % views were left out: in B-mode they are anechoic speckle, which read as words)
        views.append((_top(persist, True), "segment-persist-bright", persist))
    return views


def _top(img: np.ndarray, bright: bool, share: float = 1.0) -> np.ndarray:
    """The brightest (or darkest) `share` % of the image's content pixels (not black) in black on white:
    a few frames' text is a small, extreme part of the persistence image (Otsu's level splits the speckle)."""
    content = img[img > masking.NONBLACK]
    if not content.size:
        return np.full(img.shape, 255, np.uint8)
    if bright:
        level = max(np.percentile(content, 100 - share), masking.NONBLACK + 1)
        return np.where(img >= level, 0, 255).astype(np.uint8)
    level = np.percentile(content, share)
    return np.where((img <= level) & (img > masking.NONBLACK), 0, 255).astype(np.uint8)


@dataclass
class TextSearch:
    """Streaming search over one video's output frames: `add` each (h, w, 3) uint8 frame in order, then
    `finish` for the probes to OCR and the per-frame coverage (see the module docstring)."""

    rules: TextRules
    n_frames: int = 0
    probes: list[Probe] = field(default_factory=list)
    windows_searched: int = 0
    detections: int = 0
    runs_read: int = 0
    runs_skipped: int = 0
    _segments_read: list[tuple[int, int]] = field(default_factory=list)
    _win: list[np.ndarray] = field(default_factory=list)
    _seg_hi: np.ndarray | None = None
    _seg_lo: np.ndarray | None = None
    _seg_persist_hi: np.ndarray | None = None  # max over the segment of the min of 3 consecutive frames
    _recent: list[np.ndarray] = field(default_factory=list)  # the segment's last two frames
    _seg_sum: np.ndarray | None = None  # per-pixel sum over the segment (its mean: static text, codec noise averaged)
    _seg_first: int = 0
    _runs: list[_Run] = field(default_factory=list)

    def add(self, frame: np.ndarray) -> None:
        gray = brightness(frame)
        if self._seg_hi is None:
            self._seg_hi, self._seg_lo, self._seg_first = gray.copy(), gray.copy(), self.n_frames
            self._recent, self._seg_sum = [], gray.astype(np.uint32)
        else:
            self._seg_sum += gray
            np.maximum(self._seg_hi, gray, out=self._seg_hi)
            np.minimum(self._seg_lo, gray, out=self._seg_lo)
        if len(self._recent) == 2:  # text drawn on 3+ consecutive frames persists through their min
            low3 = np.minimum(np.minimum(self._recent[0], self._recent[1]), gray)
            if self._seg_persist_hi is None:
                self._seg_persist_hi = low3
            else:
                np.maximum(self._seg_persist_hi, low3, out=self._seg_persist_hi)
        self._recent = [*self._recent[-1:], gray]
        self._win.append(gray)
        self.n_frames += 1
        if len(self._win) == self.rules.window:
            self._search_window()
        if self.n_frames - self._seg_first == self.rules.segment:
            self._close_segment()

    def _search_window(self) -> None:
        first = self.n_frames - len(self._win)
        hi, lo = np.max(self._win, axis=0), np.min(self._win, axis=0)
        self._win = []
        index = self.windows_searched
        self.windows_searched += 1
        lines = detect_lines(hi, self.rules.contrast) + detect_lines(lo, self.rules.contrast)
        self.detections += len(lines)
        for line in lines:
            run = next((r for r in self._runs if r.seen >= index - 1 and _iou(r.box, line.box) >= 0.3), None)
            if run is None:
                self._runs.append(_Run(line.box, line.rect, first, self.n_frames - 1, hi.copy(), lo.copy(), index))
                continue
            if run.seen < index:  # the first detection of this window extends the run's composites
                np.maximum(run.hi, hi, out=run.hi)
                np.minimum(run.lo, lo, out=run.lo)
            b = run.box
            run.grown = run.grown or _iou(b, line.box) < 0.9
            run.box = (min(b[0], line.box[0]), min(b[1], line.box[1]), max(b[2], line.box[2]), max(b[3], line.box[3]))
            run.last, run.seen = self.n_frames - 1, index
        for run in [r for r in self._runs if r.seen < index]:  # not seen in this window: the overlay changed
            self._close_run(run)

    def _close_run(self, run: _Run) -> None:
        self._runs.remove(run)
        if self.runs_read >= self.rules.max_runs:
            self.runs_skipped += 1
            return
        self.runs_read += 1
        rect = run.rect
        if run.grown:  # several detections: read the union box straight (a tilted line keeps one rect)
            x0, y0, x1, y1 = run.box
            rect = (((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0 + 1, y1 - y0 + 1), 0.0)
        self.probes += crop_probes([(run.hi, "run-max"), (run.lo, "run-min")], rect, run.box, (run.first, run.last))

    def _close_segment(self) -> None:
        h, w = self._seg_hi.shape
        frames = (self._seg_first, self.n_frames - 1)
        persist = self._seg_persist_hi
        self._segments_read.append(frames)
        mean = (self._seg_sum / (frames[1] - frames[0] + 1)).round().astype(np.uint8)
        for image, kind, grey in extreme_views(self._seg_hi, self._seg_lo, persist, mean):
            self.probes.append(Probe(image, frames, kind, (0, 0, w - 1, h - 1)))
            if image is not grey:
                # A binary view is clean enough for the line detector: each line it finds is cut from the grey
                # image the view was made from (the view cuts anti-aliased strokes) and read enlarged
                # (tesseract misses glyphs under ~20 px on a whole, speckled page).
                for line in detect_lines(image, 128)[: self.rules.max_runs]:
                    self.probes += crop_probes([(grey, kind + "-line")], line.rect, line.box, frames,
                                               bright=kind in ("segment-min-bright", "segment-saturated",
                                                               "segment-persist-bright"))
        self._seg_hi = self._seg_lo = self._seg_persist_hi = None

    def finish(self) -> tuple[list[Probe], np.ndarray]:
        """(probes, (n_frames,) bool covered) after the last frame."""
        if self._win:
            self._search_window()
        for run in list(self._runs):
            self._close_run(run)
        if self._seg_hi is not None:
            self._close_segment()
        covered = np.zeros(self.n_frames, bool)  # windows tile the frames: a frame is covered by its segment
        for first, last in self._segments_read:
            covered[first:last + 1] = True
        return self.probes, covered


def rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) uint8 (tesseract's page format in proof.ocr_tokens_many)."""
    return np.repeat(image[..., None], 3, axis=2)


@dataclass(frozen=True)
class TextFindings:
    """What the text search found in one video. Counts and frame ranges only: never the text read."""

    tokens: int  # confident tokens read (allowed or not)
    unexplained: int  # ... of which not on the allow-list: any of these withholds the video
    inside_fan: int  # unexplained tokens over the image
    outside_fan: int  # unexplained tokens outside it (should be black)
    frames: tuple[tuple[int, int], ...]  # output frame ranges of the probes in which unexplained text was read
    texts: tuple[str, ...] = field(default=(), repr=False)  # for the planted-PHI check only; never stored

    def summary(self) -> dict:
        return {"tokens": self.tokens, "unexplained": self.unexplained, "inside_fan": self.inside_fan,
                "outside_fan": self.outside_fan, "frames": [list(f) for f in self.frames]}


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def judge(probes: list[Probe], tokens: list[list], fan: np.ndarray, rules: TextRules) -> TextFindings:
    """Findings from the OCR tokens of each probe (tokens[k]: proof.Token list of probes[k], probe pixels).

    fan: (h, w) bool output fan mask. A word (>= rules.min_chars letters/digits) counts when tesseract is
    confident (>= rules.min_conf), or fairly confident (>= rules.low_conf) and CORROBORATED: another probe
    (another view of the same frames) read a word at the same place of the output too. Real text reads in
    several views; speckle misread as a word rarely reads twice at one place. A word with 4 or more digits
    (an ID, a date, a year) counts from rules.digits_conf on: speckle is rarely read as digits. A counted
    word is explained when it is on the allow-list.
    """
    found = []  # (probe index, token, output x, y, output radius)
    texts = []
    for k, (probe, read) in enumerate(zip(probes, tokens)):
        for t in read:
            texts.append(t.text)
            if len(re.sub(r"[^0-9A-Za-z]", "", t.text)) < rules.min_chars or t.conf < min(rules.low_conf, (
                    rules.digits_conf if _digits(t.text) >= 4 else 100)):
                continue
            x, y = probe.to_output((t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2)
            found.append((k, t, x, y, max(6.0, (t.box[3] - t.box[1]) / probe.scale)))
    count = unexplained = inside = outside = 0
    frames: set[tuple[int, int]] = set()
    for k, t, x, y, r in found:
        if t.conf < rules.min_conf and _digits(t.text) < 4 and not any(j != k and abs(x - u) <= r and abs(y - v) <= r
                                               and _overlap(probes[j].frames, probes[k].frames)
                                               for j, _, u, v, _ in found):
            continue
        count += 1
        if rules.allowed(t.text):
            continue
        unexplained += 1
        x, y = min(max(x, 0), fan.shape[1] - 1), min(max(y, 0), fan.shape[0] - 1)
        inside += bool(fan[y, x])
        outside += not fan[y, x]
        frames.add(probes[k].frames)
    return TextFindings(count, unexplained, inside, outside, tuple(sorted(frames)), tuple(texts))
