"""Test helpers: frame-numbered H.264 videos, their decoder, and a small snapshot parser.

Each video frame carries its own 1-based frame number as 10 black/white blocks across the top, so a
decoded frame says which frame it is (H.264 at crf 10 keeps 16-px blocks exact).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BITS, BLOCK_W, BLOCK_H = 10, 16, 16
WIDTH, HEIGHT = 160, 128


def write_numbered_video(path: Path, n_frames: int, fps: int) -> Path:
    """Constant-frame-rate H.264 yuv420p MP4 (faststart, GOP 15); frame k (1-based) shows k in binary."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"g": "15", "crf": "10", "bf": "0"}
        for k in range(1, n_frames + 1):
            img = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
            img[40:, :] = (k * 5) % 200 + 30  # a little change per frame, like a real cine loop
            for b in range(BITS):
                if (k >> b) & 1:
                    img[:BLOCK_H, b * BLOCK_W:(b + 1) * BLOCK_W] = 255
                else:
                    img[:BLOCK_H, b * BLOCK_W:(b + 1) * BLOCK_W] = 0
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_frame_numbers(path: Path) -> list[int]:
    """The number each decoded frame shows, in decode order (frame k of a good file shows k)."""
    import av

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            gray = frame.to_ndarray(format="gray")
            bits = [gray[:BLOCK_H, b * BLOCK_W:(b + 1) * BLOCK_W].mean() > 128 for b in range(BITS)]
            out.append(sum(1 << b for b, on in enumerate(bits) if on))
    return out


def ranges_result(ranges: dict[str, list[tuple[int, int]]], quality: str = "usable") -> list[dict]:
    """An annotation `result` with one timeline region per range and the quality choice."""
    result = []
    for pattern, spans in ranges.items():
        for k, (s, e) in enumerate(spans):
            result.append({"id": f"{pattern[:2]}{k}{s}{e}".replace(" ", "").replace("-", ""),
                           "type": "timelinelabels", "from_name": "patterns", "to_name": "video", "origin": "manual",
                           "value": {"ranges": [{"start": s, "end": e}], "timelinelabels": [pattern]}})
    result.append({"id": "quality", "type": "choices", "from_name": "quality", "to_name": "video",
                   "value": {"choices": [quality]}, "origin": "manual"})
    return result


def parse_ranges(tasks: list[dict]) -> set[tuple[str, str, str, int, int]]:
    """{(video_id, annotator email, pattern, start, end)} of the non-cancelled annotations."""
    out = set()
    for task in tasks:
        video_id = task["data"]["video_id"]
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled"):
                continue
            email = ann["completed_by"]["email"]
            for region in ann.get("result") or []:
                if region.get("type") == "timelinelabels" and region.get("from_name") == "patterns":
                    for pattern in region["value"]["timelinelabels"]:
                        for r in region["value"]["ranges"]:
                            out.add((video_id, email, pattern, int(r["start"]), int(r["end"])))
    return out
