"""Atomic file writes: a temporary name in the same directory, then rename.

A reader (compare, merge, resume, a crash) never sees half a file: either the
old content, the new content, or no file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: Path, mode: str = "w", perm: int = 0o644) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync and rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, perm)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str, perm: int = 0o644) -> None:
    with atomic_open(path, "w", perm) as f:
        f.write(text)


def write_bytes(path: Path, data: bytes, perm: int = 0o644) -> None:
    with atomic_open(path, "wb", perm) as f:
        f.write(data)


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def replace_dir(tmp_dir: Path, final: Path) -> None:
    """Move a fully built directory into place; a concurrent winner is kept."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp_dir, final)
    except OSError:
        if final.is_dir():  # another process built the same content first
            shutil.rmtree(tmp_dir, ignore_errors=True)
        else:
            raise

