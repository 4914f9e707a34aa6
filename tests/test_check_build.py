"""`kharness check --tree` on a real kernel tree: Debian's linux-source-6.1, built and booted.

The tree is the linux-source-6.1 package's tarball (setup.sh installs it),
unpacked fresh; the config is x86_64 tinyconfig plus what the guest needs
(harness.kernel.build.GUEST_OPTIONS), all built in. The check boots it in an
x86_64 cell and judges its smallest kmalloc cache (8 on x86_64: good).

Slow: measured on this 2-core host, unpacking 20 s, the build 342 s (360 s
of CPU), the boot 20 s; under a load average of 10 the same build took
1192 s. The figures go into the JUnit properties of this test.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli import main

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("kernel-build")]

SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
CELL = """
name: tiny-x86
defaults:
  kernel: trixie-x86_64       # replaced by the tree's build
  workloads: [idle]
  timeouts: {boot: 300, workload: 120, cell: 600}
include: [{}]
"""


def test_build_linux_source_tinyconfig_and_boot_it(tmp_path: Path,
                                                   record_property: Callable[[str, object], None]) -> None:
    assert SOURCE.is_file(), f"{SOURCE} is missing: run ./setup.sh --test (it installs linux-source-6.1)"
    t0 = time.monotonic()
    subprocess.run(["tar", "-xf", str(SOURCE), "-C", str(tmp_path)], check=True)
    (tree,) = [p for p in tmp_path.iterdir() if p.name.startswith("linux-source")]
    unpacked = time.monotonic() - t0
    (tmp_path / "cell.yaml").write_text(CELL)
    rc = main(["check", "-q", "--config", str(tmp_path / "cell.yaml"), "--tree", str(tree), "--kconfig", "tinyconfig",
               "--bad-if", "idle:slab.minalign != 8", "-o", str(tmp_path / "checks")])
    (check_dir,) = (tmp_path / "checks").iterdir()
    doc = json.loads((check_dir / "check.json").read_text())
    assert doc["build"]["ok"], (check_dir / "build.log").read_text()[-3000:]
    assert rc == 0, doc["reason"]
    build = doc["build"]
    figures = {"unpack_s": round(unpacked, 1), "build_s": build["seconds"], "build_cpu_s": build["cpu_seconds"]}
    for key, value in figures.items():
        record_property(key, value)
    print(f"linux-source-6.1 tinyconfig x86_64: {figures}")
    rep = next((check_dir / "run" / "cells").iterdir()) / "0" / "cell.json"
    assert json.loads(rep.read_text())["kernel"]["release"].startswith("6.1.")
