"""The content-addressed cache ($KHARNESS_CACHE, default ~/.cache/kharness).

Entries are directories named by a hash of what went into them:
`<root>/<kind>/<key>/`. An entry is built in a temporary directory and
renamed into place, so a half-built entry never exists under its final name.
A per-entry lock keeps two processes (parallel cells, pytest workers) from
building the same entry twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.atomic import replace_dir


def cache_root() -> Path:
    env = os.environ.get("KHARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "kharness"


def key_of(*parts: Any) -> str:
    """A stable short key for JSON-able parts (dict order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def entry(kind: str, key: str, build: Callable[[Path], None], root: Path | None = None) -> Path:
    """Return `<root>/<kind>/<key>`, calling `build(tmpdir)` first if it is absent.

    `build` fills the empty temporary directory it is given; if it raises,
    nothing is left behind under the final name.
    """
    base = (root or cache_root()) / kind
    final = base / key
    if final.is_dir():
        return final
    with locked(base / f".{key}.lock"):
        if final.is_dir():
            return final
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{key}.", suffix=".tmp"))
        try:
            build(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        replace_dir(tmp, final)
    return final
