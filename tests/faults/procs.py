"""Finding QEMU processes from /proc (for tests that check none is left)."""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid_dir: Path) -> tuple[str, int] | None:
    try:
        text = (pid_dir / "stat").read_text()
    except OSError:
        return None
    comm = text.split("(", 1)[1].rsplit(")", 1)[0]
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    if state == "Z":
        return None
    return comm, int(ppid)


def qemu_processes() -> dict[int, int]:
    """pid -> parent pid of every live qemu-system-* process."""
    out = {}
    for d in Path("/proc").glob("[0-9]*"):
        st = _stat(d)
        if st and st[0].startswith("qemu-system"):
            out[int(d.name)] = st[1]
    return out


def qemu_children(parent: int | None = None) -> list[int]:
    parent = os.getpid() if parent is None else parent
    return [pid for pid, ppid in qemu_processes().items() if ppid == parent]
