"""`kharness ab` for real: Debian's linux-source-6.1 as the base, a one-line patch, booted under QEMU.

The tree is the linux-source-6.1 package's tarball (setup.sh --test installs
it) unpacked and committed as a git repository; the patch,
tests/data/ab/0001-swiotlb-halve-the-default-pool-size.patch, halves
kernel/dma/swiotlb.c's default_nslabs. Its effect is known in advance: with
`swiotlb=force` an x86_64 6.1 guest gets the default pool of 64 MiB, 32768
slots of 2 KiB; patched, 16384. Both are built as x86_64 tinyconfig plus the
guest's options, the patched one in the base's build lineage (about one
object recompiled), and each booted 3 times, interleaved, two guests at a
time, with the `idle` workload. The verdict must name swiotlb.slots with
p < 0.05 and call nothing regressed.

Cost: the builds are cached in KHARNESS_CACHE (by tree object, patch ids,
config and compiler), and so is the tree made a git repository, so only
the first run on a machine pays for them (unpacking and committing about a
minute, the base build 6 to 11 minutes on 2 cores, the patched one well
under a minute); every run pays the six boots, two at a time (about 1.5
minutes under TCG).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import cache
from harness.cli import main

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("kernel-build")]

SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
PATCH = Path(__file__).parent / "data" / "ab" / "0001-swiotlb-halve-the-default-pool-size.patch"
CONFIG = Path(__file__).parent.parent / "configs" / "ab-swiotlb.yaml"  # swiotlb=force, idle, 1 vCPU
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost"}


def linux_git_tree() -> Path:
    """The tarball unpacked and committed, once per machine: kept in the cache (about a minute saved
    per run), as a user's clone would be. kharness never writes to it (the test checks)."""

    def build(tmp: Path) -> None:
        subprocess.run(["tar", "-xf", str(SOURCE), "-C", str(tmp)], check=True)
        (tree,) = [p for p in tmp.iterdir() if p.name.startswith("linux-source")]
        env = {**os.environ, **GIT_ENV}
        # Debian's .gitignore ignores the whole top level (its packaging): add everything regardless.
        for argv in (["git", "init", "-q"], ["git", "add", "-f", "-A", "."], ["git", "commit", "-q", "-m", "6.1"]):
            subprocess.run(argv, cwd=tree, check=True, env=env)

    stat = SOURCE.stat()
    entry = cache.entry("test-trees", cache.key_of("linux-source-6.1", stat.st_size, stat.st_mtime_ns), build)
    (tree,) = [p for p in entry.iterdir() if p.name.startswith("linux-source")]
    return tree


def test_ab_linux_source_6_1_names_the_halved_swiotlb_pool(tmp_path: Path,
                                                           record_property: Callable[[str, object], None]) -> None:
    assert SOURCE.is_file(), f"{SOURCE} is missing: run ./setup.sh --test (it installs linux-source-6.1)"
    t0 = time.monotonic()
    tree = linux_git_tree()
    prepared = time.monotonic() - t0
    out = tmp_path / "ab"
    rc = main(["ab", str(CONFIG), "--tree", str(tree), "--patch", str(PATCH),
               "--kconfig", "tinyconfig", "--repeat", "3", "-o", str(out)])
    report = (out / "report.txt").read_text()
    doc = json.loads((out / "ab.json").read_text())
    assert rc == 0, report

    found = {f["metric"]: f for f in doc["findings"]}
    slots = found["boot:swiotlb.slots"]
    assert slots["verdict"] == "changed"
    assert slots["base"]["mean"] == 32768 and slots["patched"]["mean"] == 16384
    assert slots["base"]["n"] == slots["patched"]["n"] == 3
    assert slots["p"] is not None and slots["p"] < 0.05
    regressed = [f"{f['metric']}: {f['reason']}" for f in doc["findings"] if f["verdict"] == "regressed"]
    assert not regressed, regressed
    assert "boot:swiotlb.slots" in report and "swiotlb: halve the default pool size" in report
    assert max(len(line) for line in report.splitlines()) <= 72

    builds = doc["builds"]
    assert builds["base"]["release"].startswith("6.1.") and builds["patched"]["release"] == builds["base"]["release"]
    if builds["patched"]["cache"] == "built":  # in the base's lineage: the one file, then the link
        assert builds["patched"]["compiled_objects"] <= 10, builds["patched"]
    # the user's checkout was not touched
    assert subprocess.run(["git", "status", "--porcelain"], cwd=tree, capture_output=True, text=True,
                          check=True).stdout == ""
    wall = time.monotonic() - t0
    figures = {"prepare_s": round(prepared, 1), "wall_s": round(wall, 1),
               "base_build": builds["base"]["cache"], "base_build_s": builds["base"]["build_seconds"],
               "patched_build": builds["patched"]["cache"], "patched_build_s": builds["patched"]["build_seconds"],
               "patched_objects": builds["patched"]["compiled_objects"]}
    for key, value in figures.items():
        record_property(key, value)
    print(f"kharness ab on linux-source-6.1: {figures}\n{report}")
