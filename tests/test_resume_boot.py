"""SIGTERM in the middle of a real run, then --resume: for real, under QEMU.

`kharness run` runs in a subprocess (as CI runs it) with two guests at a
time; once one cell has finished and another guest is in its workload, it
gets SIGTERM. It must be gone within seconds with exit 130, leave no QEMU
behind, keep the finished cell, and `--resume` must run only the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.results import load_run
from harness.run.parallel import qemu_children

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("parallel-boot")]

CONFIG = """
name: resume-boot
defaults:
  memory: 512
  cpus: 1
  workloads: [{name: idle, params: {seconds: 6}}]
  timeouts: {boot: 240, workload: 120, cell: 600}
matrix:
  kernel: [trixie-arm64, bookworm-x86_64, trixie-x86_64, bookworm-arm64]
"""


def qemu_for(run_dir: Path) -> list[int]:
    """Every QEMU on the host whose command line names `run_dir` (its console log is in there)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and any(str(run_dir).encode() in a for a in argv):
            pids.append(int(cmdline.parent.name))
    return pids


def _kharness(*argv: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen([sys.executable, "-m", "harness", *argv], stdout=f, stderr=subprocess.STDOUT)


def _in_workload(out: Path) -> bool:
    """A finished cell, and another whose guest took its after-boot snapshot (so: in its workload)."""
    reps = list(out.glob("cells/*/0"))
    done = [r for r in reps if (r / "cell.json").exists()]
    busy = [r for r in reps if not (r / "cell.json").exists() and (r / "raw" / "boot" / "end").exists()]
    return bool(done and busy)


def _wait_for(proc: subprocess.Popen[bytes], out: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (_in_workload(out) and qemu_children(proc.pid)):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no guest got to its workload in time"
        time.sleep(0.1)


def test_sigterm_mid_run_then_resume_completes_only_what_was_missing(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    out = tmp_path / "out"
    proc = _kharness("run", str(tmp_path / "c.yaml"), "-o", str(out), "--jobs", "2", log=tmp_path / "run.log")
    try:
        _wait_for(proc, out, timeout=400)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = proc.wait(timeout=60)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "run.log").read_text()
    assert rc == 130, log[-3000:]
    assert stopped_in < 15, f"took {stopped_in:.1f}s to stop"
    assert not qemu_for(out), "QEMU left behind"
    assert "continue with: kharness run --resume" in log

    interrupted = load_run(out)
    assert interrupted.run["status"] == "interrupted"
    assert interrupted.run["interruptions"][0]["reason"] == "SIGTERM"
    assert interrupted.run["interruptions"][0]["cut_off"], "no guest was cut off"
    kept = {r.record.cell_id: (r.path / "cell.json").stat() for r in interrupted.reps}
    assert 1 <= len(kept) < 4
    assert all(r.record.status == "pass" for r in interrupted.reps)

    resumed = _kharness("run", "--resume", str(out), "-q", log=tmp_path / "resume.log")
    assert resumed.wait(timeout=600) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    assert not qemu_for(out)
    final = load_run(out)
    assert final.run["status"] == "finished"
    assert final.run["resumed"][0]["repetitions"] == 4 - len(kept)
    assert sorted(r.record.axes["kernel"] for r in final.reps) == sorted(
        ["trixie-arm64", "bookworm-x86_64", "trixie-x86_64", "bookworm-arm64"])
    assert all(r.record.status == "pass" for r in final.reps)
    for rep in final.reps:  # what finished before the SIGTERM was not run again
        if rep.record.cell_id in kept:
            st = (rep.path / "cell.json").stat()
            assert (st.st_ino, st.st_mtime_ns) == (kept[rep.record.cell_id].st_ino,
                                                   kept[rep.record.cell_id].st_mtime_ns)
    suites = list(JUnitXml.fromfile(str(out / "junit.xml")))
    assert len(suites) == 4 and all(s.errors == 0 and s.failures == 0 for s in suites)
    assert os.path.getsize(out / "report.html") > 1000
