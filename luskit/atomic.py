"""Atomic, never-overwriting file writes.

Files appear complete or not at all (write to a temporary sibling, fsync, rename), so an
interrupted run never leaves a half-written table or video behind. Under data/ nothing is ever
overwritten: `write_bytes_new` refuses an existing path unless it already holds the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes 0600 files; outputs should get the usual permissions (Label Studio, web servers read them).
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


def write_atomic(path: Path, writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp_path)` and rename the result onto `path` (replacing it) in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        writer(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_bytes_new(path: Path, data: bytes) -> bool:
    """Write `data` to a new file; True if written, False if an identical file was already there.

    Raises FileExistsError if `path` exists with different content: inputs are never overwritten.
    """
    path = Path(path)
    if path.exists():
        if path.read_bytes() == data:
            return False
        raise FileExistsError(
            f"{path} exists with different content; luskit never overwrites inputs. "
            "Move it aside or write to an empty folder."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        tmp.write_bytes(data)
        # link() fails if the target appeared meanwhile, unlike rename(): no silent overwrite.
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def write_parquet_atomic(path: Path, frame) -> Path:
    """Write a pandas DataFrame to Parquet atomically (no index, deterministic bytes)."""
    return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def append_line(path: Path, line: bytes) -> None:
    """Append `line` + newline to an append-only log (created with its folder when missing); never rewrites.

    One os.write of the whole line under an exclusive lock (flock: concurrent appenders on this machine
    queue, so lines never interleave), then fsync of the file and, when it was just created, of its
    folder, so an acknowledged entry survives a crash. A file left without a final newline by an
    interrupted writer gets one first, so the new entry starts on its own line.
    """
    import fcntl

    if b"\n" in line:
        raise ValueError("one entry per line: the line must not contain a newline")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        lead = b""
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                lead = b"" if fh.read(1) == b"\n" else b"\n"
        data = lead + line + b"\n"
        if os.write(fd, data) != len(data):
            raise OSError(f"{path.name}: short write while appending; the entry may be incomplete: retry")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
