"""The workload scripts on the host: syntax, and the fio command lines they build.

A fake `fio` first on PATH prints its arguments, so the test sees exactly
what the guest would run; the real runs are in test_workloads_boot.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.workloads import BUILTIN_DIR

SCRIPTS = ("fio-nvme.sh", "fio-virtio-blk.sh", "net-virtio.sh", "kharness-sample.sh")


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_syntax(script: str) -> None:
    subprocess.run(["sh", "-n", str(BUILTIN_DIR / script)], check=True, timeout=10)


def run_with_fake_fio(tmp_path: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin" / "fio"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    full = {"PATH": f"{fake.parent}:/usr/bin:/bin", **env}
    return subprocess.run(["sh", str(BUILTIN_DIR / script)], capture_output=True, text=True, env=full,
                          timeout=10, check=False)


@pytest.mark.parametrize(("script", "var", "dev"), [
    ("fio-nvme.sh", "KH_DEV_NVME", "/dev/nvme0n1"), ("fio-virtio-blk.sh", "KH_DEV_VBLK", "/dev/vda"),
])
def test_fio_scripts_run_small_random_direct_io(tmp_path: Path, script: str, var: str, dev: str) -> None:
    out = run_with_fake_fio(tmp_path, script, **{var: dev, "KH_BLOCK_SIZE": "512", "KH_RUNTIME": "3"})
    assert out.returncode == 0, out.stderr
    args = out.stdout.split()
    assert {"--output-format=json", f"--filename={dev}", "--direct=1", "--bs=512", "--runtime=3",
            "--time_based"} <= set(args)
    assert [a for a in args if a.startswith("--name=")] == ["--name=randread", "--name=randwrite", "--name=randrw"]
    assert args.count("--stonewall") == 2  # one job after the other, not at once


@pytest.mark.parametrize(("script", "needs"), [
    ("fio-nvme.sh", "no NVMe"), ("fio-virtio-blk.sh", "no virtio-blk"), ("net-virtio.sh", "no traffic NIC"),
])
def test_scripts_refuse_to_run_without_their_device(tmp_path: Path, script: str, needs: str) -> None:
    out = run_with_fake_fio(tmp_path, script)  # no KH_DEV_* / KH_NET_*: nothing resolved
    assert out.returncode != 0 and needs in out.stderr
