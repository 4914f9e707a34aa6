"""kharness-run.sh on the host, over a fake /sys/block (KH_SYSROOT): a workload's disks by serial.

Under dash and under busybox sh (the guest's shell). Every real boot with a
disk workload runs it in the guest (test_workloads_boot among them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.workloads import BUILTIN_DIR

SCRIPT = BUILTIN_DIR / "kharness-run.sh"
SHELLS = [["sh"]] + [[b, "sh"] for b in filter(None, [shutil.which("busybox")])]
IDS = [" ".join(s) for s in SHELLS]


def launch(shell: list[str], root: Path, tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    workload = tmp / "workload.sh"
    workload.write_text('echo "scratch=${KH_DEV_SCRATCH:-none} data=${KH_DEV_DATA:-none} args=$*"\n')
    full = {"PATH": os.environ["PATH"], "KH_SYSROOT": str(root), **env}
    return subprocess.run([*shell, str(SCRIPT), str(workload), "a1"], env=full, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, serial in (("vda", "scratch\n"), ("vdb", "da ta\n")):  # sysfs may pad with spaces
        (tmp_path / "sys" / "block" / name).mkdir(parents=True)
        (tmp_path / "sys" / "block" / name / "serial").write_text(serial)
    (tmp_path / "sys" / "block" / "nvme0n1" / "device").mkdir(parents=True)
    (tmp_path / "sys" / "block" / "nvme0n1" / "device" / "serial").write_text("other\n")
    return tmp_path


@pytest.mark.parametrize("shell", SHELLS, ids=IDS)
def test_each_disk_is_found_by_its_serial(shell: list[str], root: Path, tmp_path: Path) -> None:
    out = launch(shell, root, tmp_path, KH_SERIAL_SCRATCH="scratch", KH_FIND_SCRATCH="block",
                 KH_SERIAL_DATA="data", KH_FIND_DATA="block")
    assert (out.returncode, out.stdout) == (0, "scratch=/dev/vda data=/dev/vdb args=a1\n"), out.stderr


@pytest.mark.parametrize("shell", SHELLS, ids=IDS)
def test_no_disks_means_no_search(shell: list[str], root: Path, tmp_path: Path) -> None:
    out = launch(shell, root, tmp_path, KH_DISKS="0", KH_SERIAL_SCRATCH="scratch")
    assert (out.returncode, out.stdout) == (0, "scratch=none data=none args=a1\n"), out.stderr


@pytest.mark.parametrize("shell", SHELLS, ids=IDS)
def test_a_value_that_looks_like_a_serial_variable_is_no_disk(shell: list[str], root: Path, tmp_path: Path) -> None:
    """`set` lists a value with a newline over two lines: the second is not a variable of its own,
    and nothing in it is globbed."""
    (tmp_path / "KH_SERIAL_EVIL=x").write_text("")  # what a glob of the line would find
    out = launch(shell, root, tmp_path, KH_SERIAL_SCRATCH="scratch", KH_NOTE="a\nKH_SERIAL_EVIL=* b")
    assert (out.returncode, out.stdout) == (0, "scratch=/dev/vda data=none args=a1\n"), out.stderr
