"""The next run removes what a kharness killed with -9 left in the temp dirs."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from harness import tmpdirs


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sweep_removes_dirs_of_dead_runs_only() -> None:
    root = Path(tempfile.gettempdir())
    dead = root / f"kharness-boot-{_dead_pid()}-abc"
    mine = tmpdirs.make("boot")
    dead.mkdir()
    (dead / "id_ed25519").write_text("secret")
    try:
        removed = tmpdirs.sweep()
        assert dead in removed and not dead.exists()
        assert mine.exists()  # this process is alive: its directory stays
    finally:
        mine.rmdir()


def test_private_temp_dirs_are_0700() -> None:
    d = tmpdirs.make("qemu")
    try:
        assert d.stat().st_mode & 0o777 == 0o700
        assert str(os.getpid()) in d.name
    finally:
        d.rmdir()
