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


# Scratch disks go to memory when they are small: when a long workload's
# random writes sit in the host's page cache as dirty pages of a file on disk,
# deleting the images makes QEMU's exit wait 10-14 s for writeback (seen here).
MEMORY_ROOT = Path("/dev/shm")  # noqa: S108 (mkdtemp below makes a private 0700 directory)


def make(kind: str, in_memory: bool = False) -> Path:
    root = MEMORY_ROOT if in_memory and os.access(MEMORY_ROOT, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=f"kharness-{kind}-{os.getpid()}-", dir=root))


def sweep() -> list[Path]:
    """Remove the temporary directories of kharness processes that no longer exist."""
    removed = []
    roots = {Path(tempfile.gettempdir()), MEMORY_ROOT}
    for path in (p for root in roots for p in root.glob("kharness-*-*-*")):
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
