"""The LAVA loop, for real: a job kharness writes runs in Debian's lava-dispatcher, and its log reads back.

`kharness lava ramdisk` and `kharness lava job` write the artefacts and the
job for tests/data/lava/cell.yaml on LAVA's qemu device type; `lava-run`
(Debian's lava-dispatcher, installed by ./setup.sh --test) runs it on this
machine, booting QEMU, waiting for the ramdisk's prompt and running the test
shell; `kharness lava ingest` turns its log into a result directory. The same
cell run by kharness itself must give the same figures: exactly for
slab.minalign and swiotlb.slots (and here the bounce and request counts),
within 10% for the slab sizes (LAVA's guest also carries its test shell and
the disk its overlay comes on).

KHARNESS_RECORD_LAVA_LOG=1 copies the log over tests/data/lava/'s recording.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import results
from harness.config.load import load
from harness.initramfs import cpio
from harness.kernel.resolve import resolve
from tests import lava_local

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("lava-run")]
ROOT = Path(__file__).parent.parent
CELL = ROOT / "tests" / "data" / "lava" / "cell.yaml"
RECORDED = ROOT / "tests" / "data" / "lava" / "qemu-trixie-arm64-lava-run.log"
EXACT = ("slab.minalign", "swiotlb.slots", "swiotlb.present", "swiotlb.bounces", "dd.requests", "mm.page_size")
CLOSE = ("slab.kmalloc.bytes", "meminfo.slab")


def kharness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=1800, check=False)


def test_a_generated_job_runs_in_lava_and_gives_kharness_figures(tmp_path: Path) -> None:
    missing = lava_local.lava_run_missing()
    assert not missing, missing
    arts, jobs = tmp_path / "artefacts", tmp_path / "jobs"
    r = kharness("lava", "ramdisk", CELL, "--device-type", "qemu", "-o", arts)
    assert r.returncode == 0, r.stderr
    (cell_dir,) = arts.iterdir()
    blob = (cell_dir / "ramdisk.cpio.gz").read_bytes()
    # one archive (one trailer entry; busybox's own cpio applet holds the word too): LAVA's cpio reads no further
    assert gzip.decompress(blob).count(b"0000000B00000000TRAILER!!!") == 1
    entries = {e.name: e for e in cpio.read(blob)}
    assert entries["init"].data == (ROOT / "harness" / "lava" / "init.sh").read_bytes()  # the console's shell
    assert {"kharness/scripts/kharness-snapshot.sh", "kharness/scripts/kharness-lava.sh",
            "kharness/scripts/dd-direct.sh", "etc/kharness/modules"} <= set(entries)
    assert not {"root/.ssh/authorized_keys", "etc/dropbear/dropbear_ed25519_host_key"} & set(entries)  # no SSH
    r = kharness("lava", "job", CELL, "--device-type", "qemu", "--url", f"file://{arts}", "-o", jobs)
    assert r.returncode == 0, r.stderr
    (job_file,) = jobs.glob("*.yaml")
    job = yaml.safe_load(job_file.read_text())
    assert lava_local.validate(job) == ""

    host = resolve(next(c for c in load(ROOT / "configs" / "quick.yaml").cells if c.arch == "x86_64").kernel)
    rc, log = lava_local.lava_run(job, tmp_path / "lava", env=lava_local.guestfs_env(host.image, host.modules_dir))
    assert rc == 0, log.read_text()[-3000:]
    if os.environ.get("KHARNESS_RECORD_LAVA_LOG"):
        shutil.copyfile(log, RECORDED)

    lava_run = tmp_path / "from-lava"
    r = kharness("lava", "ingest", log, "-o", lava_run, "-q")
    assert r.returncode == 0, r.stderr
    own = tmp_path / "from-kharness"
    r = kharness("run", CELL, "-o", own, "--accel", "tcg", "-q")
    assert r.returncode == 0, r.stderr

    (theirs,) = results.load_run(lava_run).reps
    (ours,) = results.load_run(own).reps
    assert theirs.record.cell_id == ours.record.cell_id
    assert [t.name for t in theirs.record.tests] == [t.name for t in ours.record.tests]
    a = {m.key: m.value for m in ours.metrics}
    b = {m.key: m.value for m in theirs.metrics}
    print("figure                          kharness        LAVA")
    for wl in ("boot", "idle", "dd-direct"):
        for name in EXACT + CLOSE:
            key = f"{wl}:{name}"
            if key in a or key in b:
                print(f"{key:32} {a.get(key)!s:>12} {b.get(key)!s:>12}")
    for wl in ("boot", "idle", "dd-direct"):
        for name in EXACT:
            key = f"{wl}:{name}"
            assert (key in a) == (key in b), key
            assert a.get(key) == b.get(key), key
        for name in CLOSE:
            key = f"{wl}:{name}"
            assert abs(a[key] - b[key]) <= 0.10 * a[key], (key, a[key], b[key])
    r = kharness("compare", own, lava_run, "--metric", "slab.minalign", "--metric", "swiotlb.slots")
    assert r.returncode == 0, r.stdout + r.stderr
