"""kharness-setup.sh on the host, over a fake /run (KH_SYSROOT): waiting for init's word.

It runs under dash (no `read -t`: it sleeps between looks) and under busybox
sh, the guest's shell (it waits with `read -t` on a FIFO, no process). The
real boots (every test that boots a guest) run it in the guest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.collect import snapshot
from harness.machine.ssh import sourced
from harness.workloads import BUILTIN_DIR

SCRIPT = BUILTIN_DIR / "kharness-setup.sh"
SHELLS = [["sh"]] + [[b, "sh"] for b in filter(None, [shutil.which("busybox")])]
TRACE_OK = "kharness-trace: ok\n"


def setup(root: Path, shell: list[str], wait: int = 5) -> snapshot.Sections:
    env = {**os.environ, "KH_SYSROOT": str(root), "KH_INIT_WAIT": str(wait), "KH_DISKS": "0"}
    out = subprocess.run([*shell, str(SCRIPT)], env=env, capture_output=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return snapshot.split(out.stdout)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "kharness-trace.txt").write_text(TRACE_OK)
    (run / "slabinfo-before-trace").write_text("slabinfo - version: 2.1\nkmalloc-8 1 1 8 512 1\n")
    (run / "slabinfo-after-trace").write_text("slabinfo - version: 2.1\nkmalloc-8 2 2 8 512 1\n")
    return tmp_path


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_init_word_written_while_waiting_is_read(root: Path, shell: list[str]) -> None:
    def late() -> None:
        time.sleep(0.5)
        (root / "run" / "kharness-init.done").write_text("ok modules=3\n")

    writer = threading.Thread(target=late)
    writer.start()
    sections = setup(root, shell)
    writer.join()
    assert sections["init"].strip() == "ok modules=3"
    assert sections["trace"] == TRACE_OK
    assert sections["slabinfo-after-trace"].endswith("kmalloc-8 2 2 8 512 1\n")
    assert sections["disks"].strip() == "ok"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_no_word_from_init_is_a_timeout(root: Path, shell: list[str]) -> None:
    assert setup(root, shell, wait=1)["init"].strip() == "timeout"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_init_error_is_passed_on(root: Path, shell: list[str]) -> None:
    (root / "run" / "kharness-init.done").write_text("error: insmod virtio_blk.ko\n")
    assert setup(root, shell)["init"].strip() == "error: insmod virtio_blk.ko"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_sourced_as_the_host_runs_it_it_finds_the_other_scripts(root: Path, shell: list[str]) -> None:
    """The host sources it into a batch's step (ssh.sourced), where $0 is the shell's: the
    folder of kharness-run.sh (the disks' check) and kharness-trace.sh comes from KH_SCRIPTS.
    (Taking it from $0 once made every disk "not found" and the boot snapshot not wait.)"""
    (root / "run" / "kharness-init.done").write_text("ok modules=3\n")
    (root / "run" / "kharness-trace.txt").write_text("")  # init did not arm: setup arms them itself
    env = {**os.environ, "KH_SYSROOT": str(root), "KH_INIT_WAIT": "5", "KH_DISKS": "1",
           "KH_SCRIPTS": str(BUILTIN_DIR)}
    out = subprocess.run([*shell, "-c", sourced(str(SCRIPT))], env=env, capture_output=True, timeout=60,
                         check=False)
    sections = snapshot.split(out.stdout)
    assert out.returncode == 0 and sections["disks"].strip() == "ok", out.stdout.decode()
    assert "can't open" not in sections["trace"] and "No such file" not in sections["trace"], sections["trace"]
