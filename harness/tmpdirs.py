"""Per-process temporary directories, and sweeping those of dead processes.

Boots keep throwaway disks, keys and sockets in `$TMPDIR/kharness-<kind>-<pid>-*`.
A kharness killed with -9 cannot remove its own; the next run removes every
such directory whose process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_NAME = re.compile(r"^kharness-[a-z]+-(\d+)-")


def make(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"kharness-{kind}-{os.getpid()}-"))


def sweep() -> list[Path]:
    """Remove the temporary directories of kharness processes that no longer exist."""
    removed = []
    root = Path(tempfile.gettempdir())
    for path in root.glob("kharness-*-*-*"):
        m = _NAME.match(path.name)
        if m is None or not path.is_dir() or _alive(int(m.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
